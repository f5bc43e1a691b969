"""Market simulation tools: the manifest's schema, validation, presets (and, with the generator, datasets)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from pydantic import Field

from quantdesk.schemas.events import BookEvent, TradeEvent, event_from_row
from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest, manifest_problems
from quantdesk.server.errors import Forbidden, InvalidArgument, NotFound, Problem
from quantdesk.server.registry import (
    CallContext,
    ImageBlock,
    ToolInput,
    ToolOutput,
    ToolResult,
    ToolSet,
)
from quantdesk.tools.caches.service import CacheService
from quantdesk.tools.caches.store import NAME_PATTERN
from quantdesk.tools.market.executors import close_idle_pools
from quantdesk.tools.market.generation_job import run_generation
from quantdesk.tools.market.params import feasibility_problems
from quantdesk.tools.market.pipeline import iter_event_tables
from quantdesk.tools.market.plot import plot_dataset as render_png
from quantdesk.tools.market.presets import PRESETS, PRESETS_BY_NAME
from quantdesk.tools.market.stylized import describe

tools = ToolSet("market")


class WorkerPools:
    """Worker pools kept warm between generation jobs; closing the services stops their processes."""

    def close(self) -> None:
        close_idle_pools()


tools.service(WorkerPools, lambda services: WorkerPools())
Event = Annotated[TradeEvent | BookEvent, Field(discriminator="event_type")]


class NoArguments(ToolInput):
    pass


class ConfigSchemaOutput(ToolOutput):
    json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema (2020-12) of SimulationManifest.")
    model_version: str


class ValidateConfigInput(ToolInput):
    config: dict[str, Any] = Field(
        description="A candidate SimulationManifest (see get_config_schema). Legacy Aleatoric names "
        "(initial_mid, book_depth, volatility, ...) are accepted and canonicalized.")


class ProblemOut(ToolOutput):
    path: str = Field(description="JSON path of the offending value, e.g. $.config.tick_size.")
    message: str


class ValidateConfigOutput(ToolOutput):
    valid: bool
    problems: list[ProblemOut] = Field(description="Every problem found; empty when valid.")
    normalized: dict[str, Any] | None = Field(
        description="The fully-defaulted manifest with canonical names (null when invalid).")
    manifest_hash: str | None = Field(
        description="sha256: of the canonical JSON of the normalized manifest plus the model version.")
    model_version: str


class PresetsInput(ToolInput):
    name: str | None = Field(None, description="Return only this preset.")


class PresetOut(ToolOutput):
    name: str
    title: str
    description: str
    manifest: dict[str, Any] = Field(description="The complete, normalized SimulationManifest of the preset.")
    manifest_hash: str


class PresetsOutput(ToolOutput):
    presets: list[PresetOut]


@tools.tool(scope="read", title="SimulationManifest schema", read_only=True, idempotent=True)
async def get_config_schema(args: NoArguments, ctx: CallContext) -> ConfigSchemaOutput:
    """Return the JSON Schema of SimulationManifest, the configuration of a synthetic market.

    Every field carries its unit in its name, its bounds and its default. Read it before writing a
    config for validate_config or generate_dataset.
    """
    return ConfigSchemaOutput.model_validate(
        {"schema": SimulationManifest.model_json_schema(), "model_version": MODEL_VERSION})


@tools.tool(scope="read", title="Validate a simulation config", read_only=True, idempotent=True)
async def validate_config(args: ValidateConfigInput, ctx: CallContext) -> ValidateConfigOutput:
    """Validate a SimulationManifest and compute its deterministic hash, without generating anything.

    Returns every problem with its JSON path when the config is invalid; otherwise the normalized
    manifest (defaults filled, legacy names folded) and manifest_hash, which identifies the exact
    dataset generate_dataset would produce.
    """
    problems = manifest_problems(args.config, "$.config")
    if not problems:
        problems = [("$.config", message) for message in feasibility_problems(SimulationManifest.model_validate(
            args.config))]
    if problems:
        return ValidateConfigOutput(valid=False, problems=[ProblemOut(path=p, message=m) for p, m in problems],
                                    normalized=None, manifest_hash=None, model_version=MODEL_VERSION)
    manifest = SimulationManifest.model_validate(args.config)
    return ValidateConfigOutput(valid=True, problems=[], normalized=manifest.canonical(),
                                manifest_hash=manifest.manifest_hash(), model_version=MODEL_VERSION)


@tools.tool(scope="read", title="Simulation presets", read_only=True, idempotent=True)
async def get_presets(args: PresetsInput, ctx: CallContext) -> PresetsOutput:
    """List named simulation presets (calm BTC, volatile BTC, ETH, a wide-spread small-cap, a flash-crash day).

    Each comes with a description and its complete manifest, ready to pass to generate_dataset as
    `config` or to adjust first.
    """
    if args.name is not None and args.name not in PRESETS_BY_NAME:
        raise NotFound(f"no preset named {args.name!r}; known: {', '.join(PRESETS_BY_NAME)}")
    chosen = [PRESETS_BY_NAME[args.name]] if args.name else list(PRESETS)
    out = []
    for preset in chosen:
        manifest = preset.manifest()
        out.append(PresetOut(name=preset.name, title=preset.title, description=preset.description,
                             manifest=manifest.canonical(), manifest_hash=manifest.manifest_hash()))
    return PresetsOutput(presets=out)


# --- generation -----------------------------------------------------------------------------------

class GenerateDatasetInput(ToolInput):
    config: SimulationManifest = Field(
        default_factory=SimulationManifest,
        description="The SimulationManifest (see get_config_schema and get_presets); legacy names accepted.")
    duration_seconds: int | None = Field(None, ge=1, le=604_800,
                                         description="Overrides config.duration_seconds (max 7 days).")
    driver: DriverConfig = Field(default_factory=DriverConfig,
                                 description="How to run the job: workers, window size, retries, backend. "
                                 "Changes speed, never the bytes.")
    use_cache: bool = Field(True, description="Serve an identical earlier request from the cache.")


class GenerateDatasetOutput(ToolOutput):
    status: str = Field(description="`completed` (failures and cancellations are errors, and leave no file).")
    job_id: str
    cache_key: str
    cached: bool = Field(description="True when an identical earlier request was served from the cache.")
    download_url: str = Field(description="GET it with the same API key; streamed, Range supported.")
    storage_backend: str
    row_count: int
    rows_by_event_type: dict[str, int]
    content_length_bytes: int
    file_sha256: str
    manifest_hash: str
    model_version: str
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None
    windows: int
    retries: int
    elapsed_seconds: float
    events_per_second: float | None
    data_source: str = Field("synthetic", description="Always `synthetic`: generated, not recorded.")


def _resolve_manifest(args: GenerateDatasetInput) -> SimulationManifest:
    manifest = args.config
    if args.duration_seconds is not None:
        manifest = SimulationManifest.model_validate(
            {**manifest.canonical(), "duration_seconds": args.duration_seconds})
    problems = feasibility_problems(manifest)
    if problems:
        raise InvalidArgument.from_problems([Problem("$.config", p) for p in problems])
    return manifest


@tools.tool(scope="generate", title="Generate a synthetic dataset", idempotent=True,
            output_model=GenerateDatasetOutput)
async def generate_dataset(args: GenerateDatasetInput, ctx: CallContext) -> ToolResult:
    """Generate a reproducible synthetic market (trades and L2 book snapshots) into a zstd Parquet file.

    The model: multi-factor log-stochastic volatility with Student-t returns and jumps, Hawkes trade
    arrivals that rise with volatility, fat-tailed sizes, a hump-shaped book whose spread widens with
    volatility. Same config and seed give byte-identical files whatever the driver. Reports progress
    per window; cancelling stops the workers; an identical request is served from the cache. Returns
    the download URL, row counts, sizes, sha256, manifest_hash and job_id.
    """
    manifest = _resolve_manifest(args)
    ctx.services.get(WorkerPools)  # so that shutting the server down stops pools kept for the next job
    service = ctx.services.get(CacheService)
    outcome = await run_generation(service, manifest, args.driver, ctx.report_progress, use_cache=args.use_cache)
    output = GenerateDatasetOutput(
        status="completed", job_id=outcome.job_id, cache_key=outcome.entry.cache_key, cached=outcome.cached,
        download_url=service.download_url(outcome.entry.cache_key), storage_backend=service.store.backend,
        row_count=outcome.entry.rows, rows_by_event_type=outcome.rows_by_event_type,
        content_length_bytes=outcome.artifact.bytes, file_sha256=outcome.artifact.sha256,
        manifest_hash=outcome.manifest_hash, model_version=MODEL_VERSION,
        first_timestamp_ms=outcome.first_timestamp_ms, last_timestamp_ms=outcome.last_timestamp_ms,
        windows=outcome.windows, retries=outcome.retries, elapsed_seconds=round(outcome.elapsed_seconds, 3),
        events_per_second=round(outcome.entry.rows / outcome.elapsed_seconds) if outcome.elapsed_seconds else None)
    return ToolResult(output, (service.link(outcome.artifact),))


# --- description ----------------------------------------------------------------------------------

class DatasetInput(ToolInput):
    cache_key: str | None = Field(None, pattern=NAME_PATTERN,
                                  description="A cache entry (generated or normalized) to describe.")
    path: str | None = Field(None, description="A Parquet file in the canonical event schema on the server "
                             "(admin scope; this is what `quantdesk describe FILE` uses).")


class Fact(ToolOutput):
    name: str
    statistic: str
    value: float | None
    band: str
    low: float | None
    high: float | None
    passed: bool | None = Field(description="Null when the sample is too short for the fact (see note).")
    note: str | None


class DescribeOutput(ToolOutput):
    source: str = Field(description="The cache key or file described.")
    rows: dict[str, int]
    span: dict[str, Any] = Field(default_factory=dict)
    price_source: str | None = None
    bars: dict[str, int] = Field(default_factory=dict)
    facts: list[Fact] = Field(description="Each stylized fact with its value, target band and pass/fail.")
    volatility: dict[str, Any] = Field(default_factory=dict)
    spread: dict[str, Any] = Field(default_factory=dict)
    depth: dict[str, Any] = Field(default_factory=dict)
    trades: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, int]


class PlotInput(DatasetInput):
    width_px: int = Field(1200, ge=300, le=4000)
    height_px: int = Field(800, ge=200, le=4000)


class PlotOutput(ToolOutput):
    source: str
    mime_type: str
    width_px: int
    height_px: int
    bytes: int


def _dataset(args: DatasetInput, ctx: CallContext) -> tuple[str, Path, SimulationManifest | None]:
    """The file to read, and the manifest that made it when it is a generated dataset."""
    if (args.cache_key is None) == (args.path is None):
        raise InvalidArgument.from_problems([Problem("$", "give exactly one of cache_key or path")])
    if args.path is not None:
        if not ctx.principal.allows("admin"):
            raise Forbidden("reading a server file by path needs the 'admin' scope", missing_scope="admin")
        path = Path(args.path)
        if not path.is_file():
            raise NotFound(f"no file at {args.path}")
        return args.path, path, None
    service = ctx.services.get(CacheService)
    entry = service.index.get(str(args.cache_key))
    manifest = None
    if entry.kind == "dataset":
        manifest = SimulationManifest.model_validate(service.store.read_manifest(entry.cache_key)["config"])
    return entry.cache_key, service.store.get(entry.cache_key).path, manifest


@tools.tool(scope="read", title="Describe a dataset's stylized facts", read_only=True, idempotent=True)
async def describe_dataset(args: DatasetInput, ctx: CallContext) -> DescribeOutput:
    """Compute the stylized facts of a dataset and say which target bands hold.

    Works on any canonical-event dataset (generated or normalized real data): excess kurtosis at 1 min,
    1 h and 1 d, Hill tail index, ACF of returns and absolute returns, Ljung-Box tests, volume/volatility
    correlation, realized versus configured volatility, spread and depth statistics, trade clustering.
    """
    source, path, manifest = _dataset(args, ctx)
    result = await anyio.to_thread.run_sync(lambda: describe(path, manifest))
    return DescribeOutput.model_validate({"source": source, **result})


@tools.tool(scope="read", title="Chart a dataset", read_only=True, idempotent=True, output_model=PlotOutput)
async def plot_dataset(args: PlotInput, ctx: CallContext) -> ToolResult:
    """Draw a PNG chart of a dataset: price, volume per bar and mean spread over time, returned as an image."""
    source, path, _ = _dataset(args, ctx)
    png = await anyio.to_thread.run_sync(lambda: render_png(path, title=source, width_px=args.width_px,
                                                            height_px=args.height_px))
    output = PlotOutput(source=source, mime_type="image/png", width_px=args.width_px, height_px=args.height_px,
                        bytes=len(png))
    return ToolResult(output, (ImageBlock(png, "image/png"),))


# --- live stream ----------------------------------------------------------------------------------

class LiveInput(ToolInput):
    symbol: str = Field("BTC", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$",
                        description="Symbol written into every event (for example BTCUSDT).")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Same seed, same stream (fresh when omitted).")
    preset: str = Field("default", description="A preset from get_presets whose market to stream.")
    speed: float = Field(1.0, ge=0, le=10_000, description="1 = real time, 10 = ten times faster, 0 = no pacing.")
    max_events: int | None = Field(None, ge=1, description="Stop after this many events (default: never on SSE; "
                                   "at most 10,000 over MCP).")


@tools.stream(scope="stream", event_model=Event, title="Live synthetic market stream")
async def stream_live(args: LiveInput, ctx: CallContext) -> AsyncIterator[TradeEvent | BookEvent]:
    """Stream live synthetic trade and book events for a symbol, paced in real time (or by `speed`).

    Reproducible: the same seed gives the same events, with timestamps counted from the moment the
    stream starts. Over SSE the stream runs until the client disconnects; over MCP it returns a
    bounded batch and reports each event as progress.
    """
    if args.preset not in PRESETS_BY_NAME:
        raise NotFound(f"no preset named {args.preset!r}; known: {', '.join(PRESETS_BY_NAME)}")
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    manifest = SimulationManifest.model_validate({**PRESETS_BY_NAME[args.preset].manifest().canonical(),
                                                  "symbol": args.symbol, "seed": seed})
    offset_ms = int(time.time() * 1000) - manifest.start_time_ms
    started = time.monotonic()
    sent = 0
    for table in iter_event_tables(manifest):
        for row in table.to_pylist():
            row["timestamp_ms"] += offset_ms
            row["capture_time_ms"] += offset_ms
            if args.speed > 0:
                due = (row["timestamp_ms"] - offset_ms - manifest.start_time_ms) / 1000.0 / args.speed
                if (wait := due - (time.monotonic() - started)) > 0:
                    await anyio.sleep(wait)
            yield event_from_row(row)
            sent += 1
            if args.max_events is not None and sent >= args.max_events:
                return
        await anyio.sleep(0)
