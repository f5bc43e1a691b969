"""The cache index: which artifacts exist, what made them and what they hold (SQLite, survives restarts).

Entries are datasets (from `generate_dataset`, keyed by manifest hash so an identical request is
served from the cache) and normalized event batches (from `normalize_events` with caching on).
Jobs record every generation run, including the ones that failed or were cancelled.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from quantdesk.server.errors import NotFound

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
        report TEXT
    )""",
]


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
    def __init__(self, state: SqlState) -> None:
        self._state = state
        state.ensure_schema("caches", _SCHEMA)

    # --- cache entries -------------------------------------------------------------------------

    def add(self, entry: CacheEntry) -> None:
        with self._state.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO caches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.cache_key, entry.kind, entry.manifest_hash, entry.job_id, entry.rows, entry.bytes,
                 entry.uncompressed_bytes, entry.symbol, entry.source, entry.created_at),
            )

    def get(self, cache_key: str) -> CacheEntry:
        rows = self._state.query("SELECT * FROM caches WHERE cache_key = ?", (cache_key,))
        if not rows:
            raise NotFound(f"no cache entry {cache_key!r}")
        return _entry(rows[0])

    def find_dataset(self, manifest_hash: str) -> CacheEntry | None:
        rows = self._state.query("SELECT * FROM caches WHERE kind = 'dataset' AND manifest_hash = ?",
                                 (manifest_hash,))
        return _entry(rows[0]) if rows else None

    def entries(self) -> Iterator[CacheEntry]:
        for row in self._state.query("SELECT * FROM caches ORDER BY created_at, cache_key"):
            yield _entry(row)

    def remove(self, cache_key: str) -> bool:
        with self._state.transaction() as conn:
            return conn.execute("DELETE FROM caches WHERE cache_key = ?", (cache_key,)).rowcount > 0

    # --- jobs ----------------------------------------------------------------------------------

    def start_job(self, job_id: str, kind: str, manifest_hash: str | None) -> None:
        with self._state.transaction() as conn:
            conn.execute("INSERT INTO jobs (job_id, kind, status, manifest_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                         (job_id, kind, "running", manifest_hash, now_iso()))

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

    def fail_interrupted_jobs(self) -> int:
        """Jobs still `running` when the server starts were cut off by a stop: record that."""
        with self._state.transaction() as conn:
            return conn.execute("UPDATE jobs SET status = 'failed', finished_at = ?, "
                                "error = 'interrupted: the server stopped during the job' WHERE status = 'running'",
                                (now_iso(),)).rowcount


def _entry(row: sqlite3.Row) -> CacheEntry:
    return CacheEntry(row["cache_key"], row["kind"], row["manifest_hash"], row["job_id"], row["rows"], row["bytes"],
                      row["uncompressed_bytes"], row["symbol"], row["source"], row["created_at"])
