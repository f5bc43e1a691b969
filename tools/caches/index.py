"""The cache index: which artifacts exist, what made them and what they hold (SQLite, survives restarts).

Entries are datasets (from `generate_dataset`, keyed by manifest hash so an identical request is
served from the cache) and normalized event batches (from `normalize_events` with caching on).
Jobs record every generation run, including the ones that failed or were cancelled.

The index hands out only entries whose artifact passes `check(entry, full)` (set by the cache
service): `get` and `entries` check sizes, `find_dataset` (a cache hit) checks the sha256 too and
answers None for a damaged artifact, so the caller generates it again. A failed entry leaves the
`caches` table for `quarantined`, so later lookups of it say what happened.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from quantdesk.server.errors import NotFound
from quantdesk.tools.caches.store import ArtifactDamaged

CacheKind = Literal["dataset", "normalized"]
JobStatus = Literal["running", "completed", "failed", "cancelled"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS caches (
        cache_key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        manifest_hash TEXT,
        job_id TEXT,
        rows INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        uncompressed_bytes INTEGER NOT NULL,
        symbol TEXT,
        source TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS caches_manifest_hash ON caches (manifest_hash) WHERE kind = 'dataset'",
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        manifest_hash TEXT,
        cache_key TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT,
        error TEXT,
        report TEXT,
        owner TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS quarantined (
        cache_key TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        quarantined_at TEXT NOT NULL
    )""",
]
EntryCheck = Callable[["CacheEntry", bool], None]


class SqlState(Protocol):
    """What the index needs of the server's state store."""

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None: ...

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    cache_key: str
    kind: CacheKind
    manifest_hash: str | None
    job_id: str | None
    rows: int
    bytes: int
    uncompressed_bytes: int
    symbol: str | None
    source: str | None
    created_at: str

    @property
    def compression_ratio(self) -> float:
        return round(self.uncompressed_bytes / self.bytes, 3) if self.bytes else 0.0


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    kind: str
    status: JobStatus
    manifest_hash: str | None
    cache_key: str | None
    created_at: str
    finished_at: str | None
    error: str | None
    report: dict[str, Any] | None


class CacheIndex:
    """The SQLite tables behind the caches. `owner` is the claim token recorded on the jobs this process starts."""

    def __init__(self, state: SqlState, owner: str | None = None, check: EntryCheck | None = None) -> None:
        self._state = state
        self.owner = owner
        self.check = check
        state.ensure_schema("caches", _SCHEMA)
        if "owner" not in {row[1] for row in state.query("PRAGMA table_info(jobs)")}:
            with state.transaction() as conn:  # a jobs table from before `owner`; another process may race us
                if "owner" not in {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}:
                    conn.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")

    # --- cache entries -------------------------------------------------------------------------

    def add(self, entry: CacheEntry) -> None:
        with self._state.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO caches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.cache_key, entry.kind, entry.manifest_hash, entry.job_id, entry.rows, entry.bytes,
                 entry.uncompressed_bytes, entry.symbol, entry.source, entry.created_at),
            )
            conn.execute("DELETE FROM quarantined WHERE cache_key = ?", (entry.cache_key,))

    def get(self, cache_key: str, *, check: bool = True) -> CacheEntry:
        """The entry, its artifact's size checked (`check=False` skips that, for deleting)."""
        rows = self._state.query("SELECT * FROM caches WHERE cache_key = ?", (cache_key,))
        if not rows:
            gone = self._state.query("SELECT reason, quarantined_at FROM quarantined WHERE cache_key = ?",
                                     (cache_key,))
            if gone:
                raise ArtifactDamaged(cache_key, gone[0]["reason"], gone[0]["quarantined_at"])
            raise NotFound(f"no cache entry {cache_key!r}")
        entry = _entry(rows[0])
        if check and self.check is not None:
            self.check(entry, False)
        return entry

    def find_dataset(self, manifest_hash: str) -> CacheEntry | None:
        """The dataset made from this manifest, if its artifact is whole (size and sha256 checked)."""
        rows = self._state.query("SELECT * FROM caches WHERE kind = 'dataset' AND manifest_hash = ?",
                                 (manifest_hash,))
        if not rows:
            return None
        entry = _entry(rows[0])
        if self.check is not None:
            try:
                self.check(entry, True)
            except NotFound:  # damaged (now quarantined) or gone: the caller makes it again
                return None
        return entry

    def entries(self) -> Iterator[CacheEntry]:
        """Every entry whose artifact passes the size check (the others are quarantined on the way)."""
        for row in self._state.query("SELECT * FROM caches ORDER BY created_at, cache_key"):
            entry = _entry(row)
            if self.check is not None:
                try:
                    self.check(entry, False)
                except NotFound:
                    continue
            yield entry

    def remove(self, cache_key: str) -> bool:
        with self._state.transaction() as conn:
            return conn.execute("DELETE FROM caches WHERE cache_key = ?", (cache_key,)).rowcount > 0

    def quarantine(self, cache_key: str, reason: str) -> None:
        """Take the entry out of the cache, keeping why, so that later lookups can say so."""
        with self._state.transaction() as conn:
            conn.execute("DELETE FROM caches WHERE cache_key = ?", (cache_key,))
            conn.execute("INSERT OR REPLACE INTO quarantined VALUES (?, ?, ?)", (cache_key, reason, now_iso()))

    # --- jobs ----------------------------------------------------------------------------------

    def start_job(self, job_id: str, kind: str, manifest_hash: str | None) -> None:
        with self._state.transaction() as conn:
            conn.execute("INSERT INTO jobs (job_id, kind, status, manifest_hash, created_at, owner) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (job_id, kind, "running", manifest_hash, now_iso(), self.owner))

    def finish_job(self, job_id: str, status: JobStatus, *, cache_key: str | None = None, error: str | None = None,
                   report: dict[str, Any] | None = None) -> None:
        with self._state.transaction() as conn:
            conn.execute("UPDATE jobs SET status = ?, cache_key = ?, finished_at = ?, error = ?, report = ? "
                         "WHERE job_id = ?", (status, cache_key, now_iso(), error,
                                              json.dumps(report) if report is not None else None, job_id))

    def job(self, job_id: str) -> JobRecord:
        rows = self._state.query("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        if not rows:
            raise NotFound(f"no job {job_id!r}")
        row = rows[0]
        return JobRecord(row["job_id"], row["kind"], row["status"], row["manifest_hash"], row["cache_key"],
                         row["created_at"], row["finished_at"], row["error"],
                         json.loads(row["report"]) if row["report"] else None)

    def fail_interrupted_jobs(self, is_alive: Callable[[str | None], bool] = lambda owner: False) -> list[str]:
        """Jobs still `running` whose process is gone were cut off by a stop or a crash: record that.

        Jobs of a process that still runs (another server or CLI on the same data directory) are left alone.
        """
        with self._state.transaction() as conn:
            rows = conn.execute("SELECT job_id, owner FROM jobs WHERE status = 'running'").fetchall()
            dead = [str(row[0]) for row in rows if not is_alive(row[1])]
            conn.executemany("UPDATE jobs SET status = 'failed', finished_at = ?, error = 'interrupted: the process "
                             "running it stopped during the job' WHERE job_id = ? AND status = 'running'",
                             [(now_iso(), job_id) for job_id in dead])
        return dead


def _entry(row: sqlite3.Row) -> CacheEntry:
    return CacheEntry(row["cache_key"], row["kind"], row["manifest_hash"], row["job_id"], row["rows"], row["bytes"],
                      row["uncompressed_bytes"], row["symbol"], row["source"], row["created_at"])
