"""The cache service: publishes artifacts into the store and the index, and reads them back as events.

It is built when the server starts (`at_start`), so crash recovery runs then: jobs left `running`
by a process that died are marked failed and its staging files removed, while the jobs and files
of processes still running on the same data directory are left alone (see owners.py). pyarrow is
imported by the methods that read Parquet, not here: building this service must stay cheap.

Artifacts are verified wherever they are looked up (see store.py and index.py): what fails is
quarantined, leaves the index (so the statistics count only what is really there) and answers
`ArtifactDamaged`; a damaged cache hit is generated again instead of served.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from quantdesk.schemas.events import BookEvent, TradeEvent, event_from_row
from quantdesk.server.registry import FileBlock
from quantdesk.tools.caches.index import CacheEntry, CacheIndex, CacheKind, SqlState, now_iso
from quantdesk.tools.caches.owners import ProcessClaims
from quantdesk.tools.caches.store import PARQUET, Artifact, LocalArtifactStore

if TYPE_CHECKING:
    import pyarrow.parquet as pq

logger = logging.getLogger("quantdesk.caches")


@dataclass(frozen=True, slots=True)
class ParquetFacts:
    rows: int
    bytes: int
    uncompressed_bytes: int
    rows_by_event_type: dict[str, int]
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None


def parquet_facts(path: Path) -> ParquetFacts:
    """Row counts, sizes and time range of a canonical-event Parquet file, from its metadata and two columns."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    table = pq.read_table(path, columns=["event_type", "timestamp_ms"])
    counts = table.column("event_type").value_counts().to_pylist() if table.num_rows else []
    # a normalized book message with neither an exchange nor a capture time has a null timestamp
    span = pc.min_max(table.column("timestamp_ms")).as_py() if table.num_rows else {"min": None, "max": None}
    return ParquetFacts(
        rows=meta.num_rows,
        bytes=path.stat().st_size,
        uncompressed_bytes=int(uncompressed),
        rows_by_event_type={str(c["values"]): int(c["counts"]) for c in counts},
        first_timestamp_ms=span["min"],
        last_timestamp_ms=span["max"],
    )


class CacheService:
    """One object behind every cache tool and every producer of cached artifacts."""

    def __init__(self, data_dir: Path, state: SqlState) -> None:
        self.claims = ProcessClaims(data_dir / "artifacts" / ".owners")
        self.store = LocalArtifactStore(data_dir / "artifacts", owner=self.claims.token,
                                        on_quarantine=self._forget)
        self.index = CacheIndex(state, owner=self.claims.token, check=self._check)
        self._locks: dict[str, anyio.Lock] = {}
        self.recover()

    def recover(self) -> tuple[list[str], list[tuple[str, int]]]:
        """Fail the jobs and remove the staging files that dead processes left; returns (job ids, files)."""
        failed = self.index.fail_interrupted_jobs(self.claims.is_alive)
        removed = self.store.clean_staging(self.claims.owner_of)
        self.claims.sweep()
        if failed or removed:
            logger.warning("recovered after an interrupted run: marked %d job(s) failed (%s), removed %d staging "
                           "file(s) of %.1f MB", len(failed), ", ".join(failed) or "-", len(removed),
                           sum(size for _, size in removed) / 1e6)
        return failed, removed

    def close(self) -> None:
        """Give up this process's claim (the server is stopping; its jobs ended with it)."""
        self.claims.release()

    def _check(self, entry: CacheEntry, full: bool) -> None:
        self.store.verify(entry.cache_key, expected_bytes=entry.bytes, sha256=full)

    def _forget(self, cache_key: str, reason: str) -> None:
        self.index.quarantine(cache_key, reason)

    def verified(self, cache_key: str) -> Artifact:
        """The entry's artifact with its size and sha256 checked: for serving the whole file (export)."""
        entry = self.index.get(cache_key, check=False)
        return self.store.verify(cache_key, expected_bytes=entry.bytes, sha256=True)

    def async_lock_for(self, key: str) -> anyio.Lock:
        """One lock per manifest hash: two identical requests at once generate once, the second reads the cache."""
        return self._locks.setdefault(key, anyio.Lock())

    def staging(self, name: str) -> contextlib.AbstractContextManager[Path]:
        return self.store.staging(name)

    def publish(self, staged: Path, cache_key: str, kind: CacheKind, manifest: dict[str, Any], *,
                manifest_hash: str | None = None, job_id: str | None = None, symbol: str | None = None,
                source: str | None = None) -> tuple[CacheEntry, Artifact]:
        facts = parquet_facts(staged)
        document = {
            "cache_key": cache_key,
            "kind": kind,
            "created_at": now_iso(),
            "row_count": facts.rows,
            "rows_by_event_type": facts.rows_by_event_type,
            "time_range_ms": [facts.first_timestamp_ms, facts.last_timestamp_ms],
            "uncompressed_bytes": facts.uncompressed_bytes,
            "media_type": PARQUET,
            **manifest,
        }
        artifact = self.store.commit(staged, cache_key, document)
        entry = CacheEntry(cache_key, kind, manifest_hash, job_id, facts.rows, artifact.bytes,
                           facts.uncompressed_bytes, symbol, source, document["created_at"])
        try:
            self.index.add(entry)
        except BaseException:
            self.store.delete(cache_key)
            raise
        return entry, artifact

    @staticmethod
    def download_url(cache_key: str) -> str:
        """Where REST clients fetch an artifact (the native `GET /artifacts/{cache_key}.parquet` row)."""
        return f"/artifacts/{cache_key}.parquet"

    @staticmethod
    def link(artifact: Artifact) -> FileBlock:
        """The artifact as a result's file: REST doors send it, MCP gets a resource link."""
        name = f"{artifact.name}.parquet"
        return FileBlock(artifact.path, f"quantdesk://artifacts/{name}", name, PARQUET, artifact.bytes)

    def delete(self, cache_key: str) -> bool:
        had_file = self.store.delete(cache_key)
        return self.index.remove(cache_key) or had_file

    def events(self, cache_key: str, batch_rows: int = 4096) -> Generator[TradeEvent | BookEvent, None, None]:
        """The entry's events in file order (time order), read in batches to keep memory flat.

        The entry and its file's size are checked here, before the first event is asked for. The file
        is opened at the first event and closed, with its buffers, as soon as the iterator ends, fails
        or is closed (`close()`, or `contextlib.closing`): an abandoned replay holds nothing.
        """
        self.index.get(cache_key)
        return self._read_events(cache_key, self.store.get(cache_key).path, batch_rows)

    def _read_events(self, cache_key: str, path: Path,
                     batch_rows: int) -> Generator[TradeEvent | BookEvent, None, None]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet: pq.ParquetFile | None = None
        batches: Iterator[pa.RecordBatch] | None = None
        try:
            while True:
                try:  # only the reading: an error thrown in at `yield` says nothing about the file
                    if parquet is None:
                        parquet = pq.ParquetFile(path)
                        batches = parquet.iter_batches(batch_size=batch_rows)
                    batch = next(batches, None) if batches is not None else None
                    rows = None if batch is None else batch.to_pylist()
                except (pa.ArrowException, OSError) as exc:
                    if isinstance(exc, OSError) and exc.errno is not None:
                        raise  # the system's trouble (EMFILE, EIO), not the file's content
                    self.store.quarantine(cache_key, f"its Parquet data cannot be read ({type(exc).__name__})")
                if rows is None:
                    return
                for row in rows:
                    yield event_from_row(row)
        finally:
            if batches is not None:
                batches.close()  # type: ignore[attr-defined]
            if parquet is not None:
                parquet.close()
