"""Normalization tools: raw venue messages in, canonical events out, every input accounted for."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
import orjson
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from quantdesk.schemas.events import EVENT_SCHEMA, BookEvent, TradeEvent
from quantdesk.server.errors import Forbidden, InvalidArgument, NotFound, Problem, Unavailable
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.tools.caches.service import CacheService
from quantdesk.tools.normalize.arrow import events_to_table
from quantdesk.tools.normalize.files import normalize_file as normalize_jsonl_file
from quantdesk.tools.normalize.normalizer import Normalizer
from quantdesk.tools.normalize.outcomes import Emitted, NonEvent, Rejection, Summary

tools = ToolSet("normalize")
Source = Literal["binance", "okx", "bybit", "hyperliquid", "cme", "sgx", "synthetic"]
Event = Annotated[TradeEvent | BookEvent, Field(discriminator="event_type")]


class RawEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(description="One raw venue message (a JSON object, or its text) as the venue sent it.")


class NormalizeInput(ToolInput):
    source: Source = Field(description="Which venue's format the payloads are in.")
    symbol: str | None = Field(None, max_length=64,
                               description="Venue symbol to assume when a message carries none (partial depth).")
    market: str | None = Field(None, max_length=16,
                               description="binance: `spot` or `usdm` when the message shape cannot tell; "
                               "bybit: `linear`, `inverse` or `spot`.")
    events: list[RawEvent] = Field(max_length=200_000, description="The raw messages, in arrival order.")
    stream: bool = Field(False, description="Deliver events as they are produced (SSE on REST, progress "
                         "notifications over MCP); the final result then carries counts, not the events.")
    enable_cache: bool = Field(False, description="Store the normalized events as a cache entry that the cache "
                               "tools can export and stream.")


class RejectionOut(ToolOutput):
    index: int = Field(description="Position of the input in `events`.")
    kind: str
    reason: str


class NonEventOut(ToolOutput):
    index: int
    kind: str = Field(description="control, mark_price, off_book_trade, empty or trade_correction.")
    detail: dict[str, Any] | None


class NormalizeOutput(ToolOutput):
    source: str
    events: list[Event] = Field(description="Canonical events in production order (empty when streamed).")
    event_index: list[int] = Field(description="For each event, the input index it came from.")
    streamed: bool
    rejected: list[RejectionOut] = Field(description="Every rejected input with its index and reason.")
    non_events: list[NonEventOut] = Field(description="Valid messages that are not trades or book events.")
    counts: dict[str, Any] = Field(description="By outcome: accepted + rejected + non_event + pending == inputs.")
    books: list[dict[str, Any]] = Field(description="Each maintained book: sync state, last sequence, gaps.")
    gaps: list[dict[str, Any]]
    cache_key: str | None = Field(description="The cache entry holding the events, when enable_cache was set.")
    data_source: str = "normalized"


class NormalizeFileInput(ToolInput):
    source: Source
    input_path: str = Field(description="A JSONL or JSONL.gz file of raw messages, one per line, on the server.")
    output_path: str = Field(description="Where to write the Parquet file (replaced atomically).")
    symbol: str | None = Field(None, max_length=64)
    market: str | None = Field(None, max_length=16)


class NormalizeFileOutput(ToolOutput):
    source: str
    input_path: str
    output_path: str
    lines: int
    blank_lines: int
    bytes_read: int
    rows_written: int
    elapsed_seconds: float
    rejections: list[dict[str, Any]] = Field(description="The first rejections, with 1-based line numbers.")
    counts: dict[str, Any]
    books: list[dict[str, Any]]
    gaps: list[dict[str, Any]]


def _normalizer(args: NormalizeInput | NormalizeFileInput) -> Normalizer:
    try:
        return Normalizer(args.source, args.symbol, market=args.market)
    except ValueError as exc:
        raise InvalidArgument.from_problems([Problem("$.market", str(exc))]) from None


@tools.tool(scope="read", title="Normalize exchange events", read_only=True)
async def normalize_events(args: NormalizeInput, ctx: CallContext) -> NormalizeOutput:
    """Normalize raw exchange messages into canonical trade and book events (one schema for every venue).

    Sources: binance (spot and USD-M trade, aggTrade, depthUpdate, partial depth, bookTicker, REST
    snapshots, combined streams), okx (trades, books with seqId and CRC32 checksum, books5, bbo-tbt),
    bybit (publicTrade, orderbook snapshot/delta), hyperliquid (trades, l2Book, bbo), cme (simplified
    MDP 3.0 JSON), sgx (simplified JSON), synthetic. Books follow each venue's continuity rule: a gap
    is marked and deltas wait for a snapshot. Every input is accounted for: accepted, rejected (with
    index and reason), or a non-event; none aborts the batch.
    """
    normalizer = _normalizer(args)
    payloads = [item.payload for item in args.events]
    events: list[dict[str, Any]] = []
    index: list[int] = []
    rejections: list[Rejection] = []
    non_events: list[NonEvent] = []
    summary: Summary | None = None
    for item in normalizer.iter_normalize(payloads):
        if isinstance(item, Emitted):
            events.append(item.event)
            index.append(item.index)
            if args.stream:
                await ctx.report_progress(len(events), None, orjson.dumps(item.event).decode())
        elif isinstance(item, Rejection):
            rejections.append(item)
        elif isinstance(item, NonEvent):
            non_events.append(item)
        else:
            summary = item
    if summary is None:  # iter_normalize always ends with its summary
        raise RuntimeError("the normalizer produced no summary")
    cache_key = await _cache(ctx, args, events) if args.enable_cache and events else None
    facts = summary.as_dict()
    return NormalizeOutput.model_validate({
        "source": args.source,
        "events": [] if args.stream else events,
        "event_index": [] if args.stream else index,
        "streamed": args.stream,
        "rejected": [r.as_dict() for r in rejections],
        "non_events": [n.as_dict() for n in non_events],
        "counts": facts["counts"], "books": facts["books"], "gaps": facts["gaps"],
        "cache_key": cache_key,
    })


async def _cache(ctx: CallContext, args: NormalizeInput, events: list[dict[str, Any]]) -> str:
    service = ctx.services.get(CacheService)
    cache_key = f"qd_norm_{secrets.token_hex(8)}"
    table = events_to_table(events)
    symbols = sorted({str(e["symbol"]) for e in events})
    with service.staging(cache_key) as staged:
        await anyio.to_thread.run_sync(lambda: pq.write_table(table, staged, compression="zstd"))
        manifest = {"config": {"source": args.source, "symbol": args.symbol, "market": args.market,
                               "inputs": len(args.events)},
                    "schema": EVENT_SCHEMA.to_string(show_schema_metadata=False).splitlines(),
                    "data_source": "normalized"}
        service.publish(staged, cache_key, "normalized", manifest, symbol=",".join(symbols)[:200],
                        source=args.source)
    return cache_key


@tools.tool(scope="admin", title="Normalize a recorded feed file")
async def normalize_file(args: NormalizeFileInput, ctx: CallContext) -> NormalizeFileOutput:
    """Normalize a recorded feed (JSONL or JSONL.gz, any size) into a canonical-event Parquet file on the
    server, streaming with bounded memory and reporting progress in bytes read. Admin scope: it reads and
    writes server paths. This is what `quantdesk normalize` runs."""
    if not ctx.principal.allows("admin"):
        raise Forbidden("normalizing server files needs the 'admin' scope", missing_scope="admin")
    source, target = Path(args.input_path), Path(args.output_path)
    if not source.is_file():
        raise NotFound(f"no file at {args.input_path}")
    if not target.parent.is_dir():
        raise InvalidArgument.from_problems([Problem("$.output_path", "the folder does not exist")])

    def progress(lines: int, done: int, total: int) -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total, f"{lines} lines")
        except Exception:  # a client that went away must not stop the file
            pass

    def run() -> dict[str, Any]:
        return normalize_jsonl_file(args.source, source, target, symbol=args.symbol, market=args.market,
                                    on_progress=progress).as_dict()

    try:
        result = await anyio.to_thread.run_sync(run)
    except ValueError as exc:
        raise InvalidArgument.from_problems([Problem("$.market", str(exc))]) from None
    except (OSError, EOFError) as exc:
        raise Unavailable(f"could not normalize the file: {getattr(exc, 'strerror', None) or exc}") from None
    return NormalizeFileOutput.model_validate({k: v for k, v in result.items() if k != "source"} |
                                              {"source": args.source})
