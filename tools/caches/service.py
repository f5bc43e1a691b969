"""The cache service: publishes artifacts into the store and the index, and reads them back as events."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pyarrow.parquet as pq

from quantdesk.schemas.events import BookEvent, TradeEvent, event_from_row
from quantdesk.server.registry import FileBlock
from quantdesk.tools.caches.index import CacheEntry, CacheIndex, CacheKind, SqlState, now_iso
from quantdesk.tools.caches.store import PARQUET, Artifact, LocalArtifactStore


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
    meta = pq.ParquetFile(path).metadata
    uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    table = pq.read_table(path, columns=["event_type", "timestamp_ms"])
    counts = table.column("event_type").value_counts().to_pylist() if table.num_rows else []
    stamps = table.column("timestamp_ms")
    return ParquetFacts(
        rows=meta.num_rows,
        bytes=path.stat().st_size,
        uncompressed_bytes=int(uncompressed),
        rows_by_event_type={str(c["values"]): int(c["counts"]) for c in counts},
        first_timestamp_ms=int(stamps[0].as_py()) if table.num_rows else None,
        last_timestamp_ms=int(stamps[-1].as_py()) if table.num_rows else None,
    )


class CacheService:
    """One object behind every cache tool and every producer of cached artifacts."""

    def __init__(self, data_dir: Path, state: SqlState) -> None:
        self.store = LocalArtifactStore(data_dir / "artifacts")
        self.index = CacheIndex(state)
        self.index.fail_interrupted_jobs()
        self.store.clean_staging()
        self._locks: dict[str, anyio.Lock] = {}

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

    def events(self, cache_key: str, batch_rows: int = 4096) -> Iterator[TradeEvent | BookEvent]:
        """The entry's events in file order (time order), read in batches to keep memory flat."""
        self.index.get(cache_key)
        parquet = pq.ParquetFile(self.store.get(cache_key).path)
        for batch in parquet.iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                yield event_from_row(row)
