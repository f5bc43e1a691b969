"""Cache tools: statistics, provenance manifests, Parquet export, SSE replay, deletion.

Every lookup goes through the verifying index and store: a damaged artifact is quarantined and
answered as not found with its reason; statistics list only entries whose files are whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from pydantic import Field

from quantdesk.schemas.events import BookEvent, TradeEvent
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolResult, ToolSet
from quantdesk.server.resources import Listing
from quantdesk.tools.caches.index import CacheEntry
from quantdesk.tools.caches.service import CacheService
from quantdesk.tools.caches.store import NAME_PATTERN, PARQUET

tools = ToolSet("caches")
tools.service(CacheService, lambda services: CacheService(services.data_dir, services.state), at_start=True)

CacheKey = Annotated[str, Field(pattern=NAME_PATTERN, description="A cache key, as get_cache_stats lists them.")]
Event = Annotated[TradeEvent | BookEvent, Field(discriminator="event_type")]


class NoArguments(ToolInput):
    pass


class CacheKeyInput(ToolInput):
    cache_key: CacheKey


class CacheEntryOut(ToolOutput):
    cache_key: str
    kind: str = Field(description="`dataset` (generate_dataset) or `normalized` (normalize_events).")
    manifest_hash: str | None
    job_id: str | None
    rows: int
    bytes: int
    uncompressed_bytes: int
    compression_ratio: float
    symbol: str | None
    source: str | None
    created_at: str


class CacheStatsOutput(ToolOutput):
    entries: list[CacheEntryOut]
    total_entries: int
    total_rows: int
    total_bytes: int
    total_uncompressed_bytes: int
    compression_ratio: float = Field(description="Uncompressed Arrow bytes over Parquet bytes, all entries.")


class CacheManifestOutput(ToolOutput):
    cache_key: str
    manifest: dict[str, Any] = Field(description="Provenance: config, hash, model version, schema, rows, sha256.")


class ExportOutput(ToolOutput):
    cache_key: str
    download_url: str
    content_length_bytes: int
    file_sha256: str
    media_type: str


class StreamCacheInput(ToolInput):
    cache_key: CacheKey
    speed: float = Field(0.0, ge=0, le=1_000_000,
                         description="Replay pace: 1 = the original timing, 10 = ten times faster, 0 = no pacing.")
    max_events: int | None = Field(None, ge=1, description="Stop after this many events (default: all).")


class DeleteOutput(ToolOutput):
    deleted: int
    cache_keys: list[str]


class ClearInput(ToolInput):
    # Literal[True] puts the rule in the schema (`const: true`), where clients and fuzzers can see it.
    confirm: Literal[True] = Field(description="Must be true: clearing deletes every cache entry and its artifact.")


def _entry_out(entry: CacheEntry) -> CacheEntryOut:
    return CacheEntryOut(cache_key=entry.cache_key, kind=entry.kind, manifest_hash=entry.manifest_hash,
                         job_id=entry.job_id, rows=entry.rows, bytes=entry.bytes,
                         uncompressed_bytes=entry.uncompressed_bytes, compression_ratio=entry.compression_ratio,
                         symbol=entry.symbol, source=entry.source, created_at=entry.created_at)


@tools.tool(scope="read", title="Cache statistics", read_only=True, idempotent=True)
async def get_cache_stats(args: NoArguments, ctx: CallContext) -> CacheStatsOutput:
    """List every cached dataset and normalized batch with rows, Parquet bytes and compression ratio, plus totals."""
    service = ctx.services.get(CacheService)
    entries = [_entry_out(e) for e in service.index.entries()]  # each file's size checked on the way
    total_bytes = sum(e.bytes for e in entries)
    total_raw = sum(e.uncompressed_bytes for e in entries)
    return CacheStatsOutput(entries=entries, total_entries=len(entries), total_rows=sum(e.rows for e in entries),
                            total_bytes=total_bytes, total_uncompressed_bytes=total_raw,
                            compression_ratio=round(total_raw / total_bytes, 3) if total_bytes else 0.0)


@tools.tool(scope="read", title="Cache provenance", read_only=True, idempotent=True)
async def get_cache_manifest(args: CacheKeyInput, ctx: CallContext) -> CacheManifestOutput:
    """Return the provenance manifest of one cache entry: the config that made it, its manifest_hash and model
    version, the Arrow schema, rows per event type, time range, file sha256 and creation time."""
    service = ctx.services.get(CacheService)
    service.index.get(args.cache_key)
    return CacheManifestOutput(cache_key=args.cache_key, manifest=service.store.read_manifest(args.cache_key))


@tools.tool(scope="read", title="Export a cache entry", read_only=True, idempotent=True, output_model=ExportOutput)
async def export_cache(args: CacheKeyInput, ctx: CallContext) -> ToolResult:
    """Export one cache entry as a Parquet file (zstd, canonical event schema).

    Over REST the file itself is sent (Range requests supported); over MCP the result links to it
    and gives its download URL, size and sha256.
    """
    service = ctx.services.get(CacheService)
    artifact = await anyio.to_thread.run_sync(service.verified, args.cache_key)  # size and sha256, off the loop
    output = ExportOutput(cache_key=args.cache_key, download_url=service.download_url(args.cache_key),
                          content_length_bytes=artifact.bytes, file_sha256=artifact.sha256, media_type=PARQUET)
    return ToolResult(output, (service.link(artifact),))


@tools.stream(scope="stream", event_model=Event, title="Replay a cache entry")
async def stream_cache(args: StreamCacheInput, ctx: CallContext) -> AsyncIterator[TradeEvent | BookEvent]:
    """Replay a cached dataset's trade and book events in time order, paced by their timestamps divided by
    `speed` (0 = as fast as possible). Over SSE every event is sent; over MCP at most 10,000 are returned."""
    service = ctx.services.get(CacheService)
    previous: int | None = None
    sent = 0
    # closing(): the file and its buffers go as soon as this stream ends or is closed, even if something
    # (a kept traceback, a task group) still holds this frame.
    with contextlib.closing(service.events(args.cache_key)) as events:
        for event in events:
            stamp = event.timestamp_ms  # null for an untimed normalized book message: sent without pacing
            if args.speed > 0 and previous is not None and stamp is not None and stamp > previous:
                await anyio.sleep((stamp - previous) / 1000.0 / args.speed)
            if stamp is not None:
                previous = stamp
            yield event
            sent += 1
            if args.max_events is not None and sent >= args.max_events:
                return
            if sent % 1024 == 0:
                await anyio.sleep(0)  # let the loop breathe on an unpaced replay


@tools.tool(scope="generate", title="Delete a cache entry", destructive=True, idempotent=True)
async def delete_cache(args: CacheKeyInput, ctx: CallContext) -> DeleteOutput:
    """Delete one cache entry and its artifact files."""
    service = ctx.services.get(CacheService)
    service.index.get(args.cache_key, check=False)  # a damaged entry can still be deleted
    service.delete(args.cache_key)
    return DeleteOutput(deleted=1, cache_keys=[args.cache_key])


@tools.tool(scope="admin", title="Clear every cache entry", destructive=True, idempotent=True)
async def clear_caches(args: ClearInput, ctx: CallContext) -> DeleteOutput:
    """Delete every cache entry and artifact. Refuses unless `confirm` is true."""
    service = ctx.services.get(CacheService)
    keys = [entry.cache_key for entry in service.index.entries()]
    for key in keys:
        service.delete(key)
    return DeleteOutput(deleted=len(keys), cache_keys=keys)


# --- MCP resources: the cache as documents a model (or a stdio client) can read ----------------------

CHANGED_BY = ("generate_dataset", "normalize_events", "delete_cache", "clear_caches")


def _artifacts(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"cache_key": e["cache_key"], "size": e["bytes"],
             "title": f"{e['kind']} {e['symbol'] or ''} ({e['rows']} rows)".replace("  ", " ")}
            for e in stats["entries"]]


ARTIFACTS = Listing("get_cache_stats", _artifacts)

tools.resource("quantdesk://caches/stats", tool="get_cache_stats", name="cache-stats", title="Cache statistics",
               description="Every cached dataset and normalized batch with rows and bytes, plus totals.",
               changed_by=CHANGED_BY, aliases=("aleatoric://cache/stats",))
tools.resource("quantdesk://artifacts/{cache_key}.parquet", tool="export_cache", name="artifact",
               title="Dataset artifact", mime_type=PARQUET, listing=ARTIFACTS, changed_by=CHANGED_BY,
               description="A cached dataset as a zstd Parquet file of canonical events (binary; large files are "
                           "refused over MCP with the HTTP download path instead).")
tools.resource("quantdesk://artifacts/{cache_key}.manifest.json", tool="get_cache_manifest",
               name="artifact-manifest", title="Artifact provenance manifest", listing=ARTIFACTS,
               changed_by=CHANGED_BY, select=lambda out: out["manifest"],
               description="How an artifact was made: its config, manifest_hash, model version, schema, rows and "
                           "sha256.")
