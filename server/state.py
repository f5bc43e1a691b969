"""The embedded state store: one SQLite database (WAL) in the data directory.

The store fails closed: it is checked when it opens (`PRAGMA quick_check`, about 1.4 ms per MB),
and a damaged file raises `StateDamaged` instead of being used or silently replaced. Nothing
here ever deletes a store: `move_aside` keeps a damaged file under a timestamped name for
inspection, and `quantdesk state check` / `quantdesk state recover` are the operator's tools.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from quantdesk.server.errors import Unavailable

CheckLevel = Literal["quick", "full", "none"]
# Primary SQLite result codes that mean the file itself is bad, not that it is busy or unreadable now.
_DAMAGE_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_MAX_PROBLEMS = 20


def recovery_commands(path: Path) -> tuple[str, str]:
    """The commands an operator runs on the store at `path`: a full report, and moving it aside."""
    data_dir = f"--data-dir {path.parent}"
    return f"quantdesk {data_dir} state check", f"quantdesk {data_dir} state recover"


class StateDamaged(Unavailable):
    """The state store failed its checks, so quantdesk refuses to run on it (never on an empty replacement)."""

    def __init__(self, path: Path, problem: str, *, message: str | None = None) -> None:
        check, recover = recovery_commands(path)
        super().__init__(message or (
            f"the state store {path} is damaged ({problem}), so quantdesk will not start on it: running on a "
            f"damaged store could lose API keys and open access to every loopback caller. Stop any server that "
            f"uses it, run `{check}` for a full report, then restore the file from a backup or run `{recover}`, "
            f"which moves the damaged file aside (it is kept, never deleted) and starts with an empty store in "
            f"which API keys must be created again."))
        self.path = path
        self.problem = problem


def _is_damage(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _DAMAGE_CODES
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _integrity_problems(conn: sqlite3.Connection, level: Literal["quick", "full"], limit: int) -> list[str]:
    pragma = "quick_check" if level == "quick" else "integrity_check"
    rows = conn.execute(f"PRAGMA {pragma}({limit})").fetchall()
    lines = [str(row[0]) for row in rows]
    return [] if lines == ["ok"] else lines


class StateStore:
    """A thread-safe SQLite connection for everything that must survive a restart.

    One connection guarded by a lock is enough: every statement here is short, and SQLite
    serializes writers anyway. Other processes (the CLI's `keys` commands) open their own.
    `check` is how the file is checked when it opens: `quick` (the default: page structure,
    linear in the file size), `full` (indexes too, about four times slower) or `none`.
    """

    def __init__(self, path: Path, *, check: CheckLevel = "quick") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open the state store {path}: {exc}") from None
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            problems = [] if check == "none" else _integrity_problems(self._conn, check, _MAX_PROBLEMS)
        except sqlite3.Error as exc:
            self._conn.close()
            if _is_damage(exc):
                raise StateDamaged(path, str(exc)) from None
            raise Unavailable(f"cannot open the state store {path}: {exc}") from None
        if problems:
            self._conn.close()
            more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
            raise StateDamaged(path, f"{'quick_check' if check == 'quick' else 'integrity_check'} reports "
                                     f"{problems[0].strip()!r}{more}")
        self._schemas: set[str] = set()

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        """Run a domain's idempotent DDL once per process."""
        if name in self._schemas:
            return
        with self.transaction() as conn:
            for statement in statements:
                conn.execute(statement)
        self._schemas.add(name)

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. `durable=True` fsyncs the commit before returning.

        WAL with synchronous=NORMAL survives a killed process but may lose the last commits on
        power loss; a commit a caller acknowledges as final (a kill-switch latch) asks for FULL.
        """
        with self._lock:
            if durable:
                self._conn.execute("PRAGMA synchronous=FULL")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                else:
                    self._conn.execute("COMMIT")
            finally:
                if durable:
                    self._conn.execute("PRAGMA synchronous=NORMAL")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap way to notice outside writes."""
        with self._lock:
            row = self._conn.execute("PRAGMA data_version").fetchone()
            return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --- inspection and recovery (the `quantdesk state` commands) ------------------------------------

@dataclass(frozen=True, slots=True)
class StoreReport:
    """What a full check of a store file found; `tables` maps each table to its row count (None: unreadable)."""

    path: Path
    exists: bool
    bytes: int
    problems: tuple[str, ...]
    tables: dict[str, int | None] = field(default_factory=dict)

    @property
    def damaged(self) -> bool:
        return bool(self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "exists": self.exists, "bytes": self.bytes, "damaged": self.damaged,
                "problems": list(self.problems), "tables": self.tables}


def inspect_store(path: Path, *, level: Literal["quick", "full"] = "full") -> StoreReport:
    """Check a store file without changing it (a missing file is reported, not created) and count its rows."""
    if not path.exists():
        return StoreReport(path, False, 0, ())
    size = path.stat().st_size
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=10.0)
    except sqlite3.Error as exc:
        return StoreReport(path, True, size, (f"cannot open: {exc}",))
    try:
        try:
            problems = _integrity_problems(conn, level, 100)
            names = [str(r[0]) for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' "
                                                     "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        except sqlite3.Error as exc:
            return StoreReport(path, True, size, (str(exc),))
        tables: dict[str, int | None] = {}
        for name in names:
            try:
                tables[name] = int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
            except sqlite3.Error:
                tables[name] = None
        return StoreReport(path, True, size, tuple(problems), tables)
    finally:
        conn.close()


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def move_aside(path: Path, label: str) -> list[tuple[Path, Path]]:
    """Rename the store and its WAL files to `<name>.<label>` (+ `-wal`, `-shm`): kept, never deleted.

    The WAL keeps its `-wal` suffix after the new name, so SQLite still finds it when someone opens
    the moved file to salvage rows.
    """
    moved: list[tuple[Path, Path]] = []
    target = path.with_name(f"{path.name}.{label}")
    if target.exists():
        target = path.with_name(f"{path.name}.{label}-{secrets.token_hex(2)}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            destination = target.with_name(target.name + suffix)
            os.replace(source, destination)
            moved.append((source, destination))
    fsync_directory(path.parent)
    return moved


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename, fsync the folder: a reader sees the old content or the new, never a part."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
