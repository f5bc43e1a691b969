"""The embedded state store: one SQLite database (WAL) in the data directory."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class StateStore:
    """A thread-safe SQLite connection for everything that must survive a restart.

    One connection guarded by a lock is enough: every statement here is short, and SQLite
    serializes writers anyway. Other processes (the CLI's `keys` commands) open their own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
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
