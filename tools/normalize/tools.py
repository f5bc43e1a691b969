"""Normalization tools: raw venue messages in, canonical events out, every input accounted for."""

from __future__ import annotations

import gzip
import secrets
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from quantdesk.schemas.events import BookEvent, TradeEvent
from quantdesk.server.errors import Conflict, Forbidden, InvalidArgument, Problem, Unavailable
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.tools.caches.service import CacheService
from quantdesk.tools.normalize.outcomes import Emitted, NonEvent, Rejection, Summary
from quantdesk.tools.normalize.recorded import RECORDER_FORMATS
from quantdesk.tools.normalize.sessions import IDLE_SECONDS, MAX_SESSIONS, NormalizeSessions, SessionOptions

if TYPE_CHECKING:  # the engine pulls in numpy and pyarrow: imported when a tool first runs, not at start-up
    from quantdesk.tools.normalize.normalizer import Normalizer

tools = ToolSet("normalize")
tools.service(NormalizeSessions, lambda services: NormalizeSessions())

Source = Literal["binance", "okx", "bybit", "hyperliquid", "cme", "sgx", "synthetic"]
Market = Literal["spot", "usdm", "coinm", "linear", "inverse"]
Event = Annotated[TradeEvent | BookEvent, Field(discriminator="event_type")]
Streamed = Emitted | Rejection | NonEvent | Summary
MAX_MESSAGE_CHARS = 1 << 20
ContractKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ContractValue = Annotated[float, Field(gt=0, le=1e9)]
# Written out because pydantic leaves the type out of `propertyNames`, and no schema node may be untyped.
ContractSizes = Annotated[dict[ContractKey, ContractValue], Field(max_length=1000), WithJsonSchema({
    "type": "object", "maxProperties": 1000, "propertyNames": {"type": "string", "minLength": 1, "maxLength": 64},
    "additionalProperties": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}})]

_MARKET = ("binance: `spot`, `usdm` or `coinm` for plain pairs whose market the message shape cannot tell "
           "(COIN-M symbols such as BTCUSD_PERP name their market themselves); bybit: `spot`, `linear` or "
           "`inverse` (books carry no category: without it, the feed's own trades decide, else linear with a "
           "warning).")
_CONTRACTS = ("Contract values for derivatives whose quantities are contracts, by venue symbol: OKX instId -> "
              "ctVal (base units; USD for -USD- coin-margined instruments, from GET /api/v5/public/instruments), "
              "binance COIN-M symbol -> USD per contract (default 100 for BTC, 10 for others), CME product root -> "
              "base units per contract, SGX base -> base units per contract. Example: {\"DOGE-USDT-SWAP\": 1000}.")


class RawEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] | Annotated[list[dict[str, Any]], Field(max_length=10_000)] | Annotated[
        str, StringConstraints(max_length=MAX_MESSAGE_CHARS)] = Field(
        description="One raw venue message as the venue sent it: a JSON object, an array (binance !markPrice@arr), "
                    "or its text. Text may be a recorder's line that carries the receive time: "
                    + "; ".join(RECORDER_FORMATS) + ".")


class NormalizeInput(ToolInput):
    source: Source = Field(description="Which venue's format the payloads are in.")
    symbol: str | None = Field(None, min_length=1, max_length=64,
                               description="Venue symbol to assume when a message carries none (partial depth).")
    market: Market | None = Field(None, description=_MARKET)
    contract_sizes: ContractSizes | None = Field(None, description=_CONTRACTS)
    events: list[RawEvent] = Field(max_length=200_000, description="The raw messages, in arrival order.")
    stream: bool = Field(False, description="Deliver events as they are produced (SSE on REST, progress "
                         "notifications over MCP); the final result then carries counts, not the events.")
    enable_cache: bool = Field(False, description="Store the normalized events as a cache entry that the cache "
                               "tools can export and stream.")
    session: Annotated[str, StringConstraints(pattern=r"^(new|ns_[0-9a-f]{24})$")] | None = Field(
        None, description=f"Keep books across calls: 'new' opens a session (the result carries its session_id); "
                          f"pass that id on later calls to continue the same feed. In a session, input indices "
                          f"and counts run across calls and diffs waiting for a snapshot stay held. Sessions live "
                          f"in this server process, expire after {IDLE_SECONDS / 60:.0f} minutes idle, and at most "
                          f"{MAX_SESSIONS} are open at once.")
    end_session: bool = Field(False, description="End the session after this call: diffs still waiting for a "
                              "snapshot are reported as awaiting_snapshot.")


class RejectionOut(ToolOutput):
    index: int = Field(description="Position of the input (in a session, counted from the session's first input).")
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
    counts: dict[str, Any] = Field(description="By outcome: accepted + rejected + non_event + pending == inputs; "
                                               "in a session, since it opened.")
    books: list[dict[str, Any]] = Field(description="Each maintained book: sync state, last sequence, gaps.")
    gaps: list[dict[str, Any]]
    warnings: list[str] = Field(default_factory=list, description="What the events cannot show by themselves: "
                                "times taken from the capture clock or left null, a market that was assumed.")
    cache_key: str | None = Field(description="The cache entry holding the events, when enable_cache was set.")
    session_id: str | None = Field(None, description="The session to pass on the next call; null when none is "
                                   "open (no session asked, or it was ended).")
    first_index: int = Field(0, description="Index of this call's first input (0 outside a session).")
    data_source: str = "normalized"


class NormalizeFileInput(ToolInput):
    source: Source
    input_path: str = Field(min_length=1, max_length=4096, description=(
        "A JSONL or JSONL.gz file of raw messages, one per line (recorder line formats accepted), inside the "
        "server's data directory or an import directory; relative paths start at the data directory."))
    output_path: str = Field(min_length=1, max_length=4096, description=(
        "Where to write the Parquet file, in the same places; written atomically."))
    overwrite: bool = Field(False, description="Replace output_path if it exists (otherwise that is refused).")
    symbol: str | None = Field(None, min_length=1, max_length=64)
    market: Market | None = Field(None, description=_MARKET)
    contract_sizes: ContractSizes | None = Field(None, description=_CONTRACTS)


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
    warnings: list[str] = Field(default_factory=list)


def _normalizer(args: NormalizeInput | NormalizeFileInput) -> Normalizer:
    from quantdesk.tools.normalize.normalizer import Normalizer

    try:
        return Normalizer(args.source, args.symbol, market=args.market, contract_sizes=args.contract_sizes)
    except ValueError as exc:
        raise InvalidArgument.from_problems([Problem("$.market", str(exc))]) from None


@tools.tool(scope="read", title="Normalize exchange events")
async def normalize_events(args: NormalizeInput, ctx: CallContext) -> NormalizeOutput:
    """Normalize raw exchange messages into canonical trade and book events (one schema for every venue).

    Sources: binance (spot, USD-M and COIN-M trade, aggTrade, depthUpdate, partial depth, bookTicker, REST
    snapshots, combined streams), okx (trades, books with seqId and CRC32 checksum, books5, bbo-tbt),
    bybit (publicTrade, orderbook snapshot/delta), hyperliquid (trades, l2Book, bbo), cme (simplified
    MDP 3.0 JSON), sgx (simplified JSON), synthetic. Books follow each venue's continuity rule: a gap
    is marked and deltas wait for a snapshot. Every input is accounted for: accepted, rejected (with
    index and reason), or a non-event; none aborts the batch. Pass `session` to stream one feed over
    several calls with its books kept. Writes only with enable_cache (a cache entry).
    """
    payloads = [item.payload for item in args.events]
    if args.session is None:
        return await _run(args, ctx, _normalizer(args).iter_normalize(payloads), None, 0)
    sessions = ctx.services.get(NormalizeSessions)
    owner = ctx.principal.key_id
    if args.session == "new":
        options = SessionOptions(args.source, args.symbol, args.market, dict(args.contract_sizes or {}))
        session_id = sessions.open(owner, options, _normalizer(args)).id
    else:
        session_id = args.session
    with sessions.use(session_id, owner) as session:
        _check_session_options(args, session.options)
        normalizer = session.normalizer
        first = normalizer.next_index

        def items() -> Iterator[Streamed]:
            yield from normalizer.iter_normalize(payloads, keep=True)
            if args.end_session:
                yield from normalizer.end()

        result = await _run(args, ctx, items(), None if args.end_session else session_id, first)
    if args.end_session:
        sessions.end(session_id)
    return result


def _check_session_options(args: NormalizeInput, opened: SessionOptions) -> None:
    """A session keeps what it was opened with: later calls may repeat it, not change it."""
    given = {"source": args.source, "symbol": args.symbol, "market": args.market,
             "contract_sizes": dict(args.contract_sizes) if args.contract_sizes is not None else None}
    kept = {"source": opened.source, "symbol": opened.symbol, "market": opened.market,
            "contract_sizes": dict(opened.contract_sizes)}
    problems = [Problem(f"$.{name}", f"differs from what the session was opened with ({kept[name]!r}); leave it "
                                     "out or open a new session")
                for name, value in given.items() if value is not None and value != kept[name]]
    if problems:
        raise InvalidArgument.from_problems(problems)


async def _run(args: NormalizeInput, ctx: CallContext, items: Iterator[Streamed], session_id: str | None,
               first_index: int) -> NormalizeOutput:
    events: list[dict[str, Any]] = []
    index: list[int] = []
    rejections: list[Rejection] = []
    non_events: list[NonEvent] = []
    summary: Summary | None = None
    for item in items:
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
            summary = item  # the last summary is the final one (a session's end comes after its call)
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
        "counts": facts["counts"], "books": facts["books"], "gaps": facts["gaps"], "warnings": facts["warnings"],
        "cache_key": cache_key, "session_id": session_id, "first_index": first_index,
    })


async def _cache(ctx: CallContext, args: NormalizeInput, events: list[dict[str, Any]]) -> str:
    import pyarrow.parquet as pq

    from quantdesk.schemas.events import EVENT_SCHEMA
    from quantdesk.tools.normalize.arrow import events_to_table

    service = ctx.services.get(CacheService)
    cache_key = f"qd_norm_{secrets.token_hex(8)}"
    table = events_to_table(events)
    symbols = sorted({str(e["symbol"]) for e in events})
    with service.staging(cache_key) as staged:
        await anyio.to_thread.run_sync(lambda: pq.write_table(table, staged, compression="zstd"))
        manifest = {"config": {"source": args.source, "symbol": args.symbol, "market": args.market,
                               "contract_sizes": args.contract_sizes, "session": args.session,
                               "inputs": len(args.events)},
                    "schema": EVENT_SCHEMA.to_string(show_schema_metadata=False).splitlines(),
                    "data_source": "normalized"}
        service.publish(staged, cache_key, "normalized", manifest, symbol=",".join(symbols)[:200],
                        source=args.source)
    return cache_key


@tools.tool(scope="admin", title="Normalize a recorded feed file", destructive=True)
async def normalize_file(args: NormalizeFileInput, ctx: CallContext) -> NormalizeFileOutput:
    """Normalize a recorded feed (JSONL or JSONL.gz, any size) into a canonical-event Parquet file on the
    server, streaming with bounded memory and reporting progress in bytes read. Admin scope: it reads and
    writes server paths, inside the data directory and the configured import directories only. It refuses
    to replace an existing output unless overwrite is true. This is what `quantdesk normalize` runs."""
    if not ctx.principal.allows("admin"):
        raise Forbidden("normalizing server files needs the 'admin' scope", missing_scope="admin")
    paths = ctx.services.paths
    source = paths.readable(args.input_path, "$.input_path")
    target = paths.writable(args.output_path, "$.output_path", overwrite=args.overwrite)
    if target == source:
        raise InvalidArgument.from_problems([Problem("$.output_path", "is the input file")])
    _normalizer(args)  # a bad market is refused before any file is opened

    def progress(lines: int, done: int, total: int) -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total, f"{lines} lines")
        except Exception:  # a client that went away must not stop the file
            pass

    def run() -> dict[str, Any]:
        from quantdesk.tools.normalize.files import normalize_file as normalize_jsonl_file

        return normalize_jsonl_file(args.source, source, target, symbol=args.symbol, market=args.market,
                                    contract_sizes=args.contract_sizes, on_progress=progress,
                                    overwrite=args.overwrite).as_dict()

    try:
        result = await anyio.to_thread.run_sync(run)
    except FileExistsError:
        raise Conflict(f"$.output_path: {args.output_path} exists; pass overwrite: true to replace it") from None
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise InvalidArgument.from_problems([Problem("$.input_path", "is a damaged or truncated gzip file")]) from None
    except OSError as exc:
        raise Unavailable(f"could not normalize the file: {exc.strerror or type(exc).__name__}") from None
    return NormalizeFileOutput.model_validate({k: v for k, v in result.items() if k != "source"} |
                                              {"source": args.source})
