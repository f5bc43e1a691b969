"""Market simulation tools: the manifest's schema and validation, presets, generation, description, live stream.

Engine modules (numpy, pyarrow, scipy, matplotlib, worker pools) are imported inside the handlers
that use them: listing the tools and starting the server stay light.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.to_thread
from pydantic import Field, WithJsonSchema

from quantdesk.schemas.events import BookEvent, TradeEvent
from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import (
    MAX_JSON_SAFE_INTEGER,
    MODEL_VERSION,
    SimulationManifest,
    SimulationManifestFields,
    lean_schema,
    manifest_problems,
)
from quantdesk.server.errors import Forbidden, InvalidArgument, NotFound, Problem, Unavailable
from quantdesk.server.registry import (
    CallContext,
    ImageBlock,
    ToolInput,
    ToolOutput,
    ToolResult,
    ToolSet,
)
from quantdesk.server.resources import Listing, PromptArgument
from quantdesk.tools.jobs.kinds import JobContext, JobKind, register_kind
from quantdesk.tools.jobs.service import JobService, error_of
from quantdesk.tools.jobs.tools import caller_of, job_url
from quantdesk.tools.market.pools import WorkerPools
from quantdesk.tools.market.presets import PRESETS, PRESETS_BY_NAME

if TYPE_CHECKING:
    from quantdesk.tools.caches.service import CacheService

logger = logging.getLogger("quantdesk.market")
tools = ToolSet("market")
tools.service(WorkerPools, lambda services: WorkerPools())
Event = Annotated[TradeEvent | BookEvent, Field(discriminator="event_type")]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,95}$"
"""A cache key (tools/caches/store.py NAME_PATTERN, restated so this module does not import pyarrow's users)."""


async def _run_generation_job(job: JobContext) -> dict[str, Any]:
    from quantdesk.tools.market.generation_job import run_generation

    job.services.get(WorkerPools)  # so that stopping the server stops the pools this job leaves warm
    return await run_generation(job)


# a job interrupted by a server stop continues from its last written window at the next start
register_kind(JobKind("generate_dataset", run=_run_generation_job, resume=_run_generation_job, id_prefix="qd_gen"))




_CONFIG = ("SimulationManifest: get_config_schema describes each field, get_presets gives complete ones; "
           "legacy Aleatoric names accepted.")
# nested in a tool's input as types, bounds and defaults: the described schema is get_config_schema's
ManifestArgument = Annotated[SimulationManifest, WithJsonSchema(lean_schema(SimulationManifest.model_json_schema(),
                                                                             _CONFIG))]
ManifestFieldsArgument = Annotated[SimulationManifestFields, WithJsonSchema(
    lean_schema(SimulationManifestFields.model_json_schema(), _CONFIG))]
DriverArgument = Annotated[DriverConfig, WithJsonSchema(lean_schema(
    DriverConfig.model_json_schema(), "How the job runs (workers, window_seconds, max_retries, backoff_seconds, "
    "backend): speed only, never the bytes."))]


class NoArguments(ToolInput):
    pass


class ConfigSchemaOutput(ToolOutput):
    json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema (2020-12) of SimulationManifest.")
    model_version: str


class ValidateConfigInput(ToolInput):
    config: ManifestFieldsArgument


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
    name: str | None = Field(None, max_length=64, description="Return only this preset.")


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
    dataset generate_dataset would produce. Fields out of their bounds are refused as invalid
    arguments; rules between fields (tick below price, ...) answer valid: false with the problems.
    """
    from quantdesk.tools.market.params import feasibility_problems

    fields = args.config.model_dump(mode="json")
    problems = manifest_problems(fields, "$.config")
    if not problems:
        problems = [("$.config", message) for message in feasibility_problems(SimulationManifest.model_validate(
            fields))]
    if problems:
        return ValidateConfigOutput(valid=False, problems=[ProblemOut(path=p, message=m) for p, m in problems],
                                    normalized=None, manifest_hash=None, model_version=MODEL_VERSION)
    manifest = SimulationManifest.model_validate(fields)
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
    config: ManifestArgument = Field(default_factory=SimulationManifest)
    duration_seconds: int | None = Field(None, ge=1, le=604_800, description="Overrides config.duration_seconds.")
    driver: DriverArgument = Field(default_factory=DriverConfig)
    use_cache: bool = Field(True, description="Serve an identical earlier request from the cache.")
    wait: bool = Field(True, description="true: answer when the file is ready, with progress. false: answer at "
                       "once with a job_id to poll with get_job; the job then runs on its own, across disconnects "
                       "and server restarts.")


class GenerateDatasetOutput(ToolOutput):
    status: Literal["completed", "queued", "running"] = Field(
        description="`completed` with every field below; with wait=false, `queued` or `running` and only job_id "
        "and status_url (failures and cancellations are errors, and leave no file).")
    job_id: str
    status_url: str | None = Field(None, description="REST: GET for the job's state, DELETE to cancel it.")
    cache_key: str | None = None
    cached: bool | None = Field(None, description="True when an identical earlier request was served from the cache.")
    download_url: str | None = Field(None, description="GET it with the same API key; streamed, Range supported.")
    storage_backend: str | None = None
    row_count: int | None = None
    rows_by_event_type: dict[str, int] | None = None
    content_length_bytes: int | None = None
    file_sha256: str | None = None
    manifest_hash: str | None = None
    model_version: str | None = None
    first_timestamp_ms: int | None = None
    last_timestamp_ms: int | None = None
    windows: int | None = None
    retries: int | None = None
    resumed_windows: int | None = Field(None, description="Windows taken over from before a server restart.")
    elapsed_seconds: float | None = None
    events_per_second: float | None = None
    data_source: str = Field("synthetic", description="Always `synthetic`: generated, not recorded.")


def _resolve_manifest(args: GenerateDatasetInput) -> SimulationManifest:
    from quantdesk.tools.market.params import feasibility_problems

    manifest = args.config
    if args.duration_seconds is not None:
        manifest = SimulationManifest.model_validate(
            {**manifest.canonical(), "duration_seconds": args.duration_seconds})
    problems = feasibility_problems(manifest)
    if problems:
        raise InvalidArgument.from_problems([Problem("$.config", p) for p in problems])
    return manifest


def _completed(service: CacheService, result: dict[str, Any]) -> ToolResult:
    output = GenerateDatasetOutput.model_validate({**result, "status_url": job_url(result["job_id"])})
    return ToolResult(output, (service.link(service.store.get(result["cache_key"])),))


@tools.tool(scope="generate", title="Generate a synthetic dataset", idempotent=True,
            output_model=GenerateDatasetOutput, brief={
                "config": "A SimulationManifest: the same object as validate_config's `config` (its schema there, in "
                          "get_config_schema and in the resource quantdesk://schemas/simulation-manifest.json). "
                          "Every field is optional; a preset's manifest from get_presets is a good start.",
                "driver": "How the job runs, for speed only (never the bytes): {workers, window_seconds, "
                          "max_retries, backoff_seconds, backend: process|dask|inline}; defaults are fine."})
async def generate_dataset(args: GenerateDatasetInput, ctx: CallContext) -> ToolResult:
    """Generate a reproducible synthetic market (trades and L2 book snapshots) into a zstd Parquet file.

    Same config and seed give byte-identical files whatever the driver. An identical
    request is served from the cache. Waiting (the default) reports progress and returns the download
    URL, row counts, sizes, sha256, manifest_hash and job_id; cancelling the call cancels the job.
    With wait=false it returns a job_id at once: poll get_job, cancel with cancel_job.
    """
    from quantdesk.tools.caches.service import CacheService
    from quantdesk.tools.market.generation_job import job_arguments, result_of
    from quantdesk.tools.market.pools import prestart_pool

    manifest = _resolve_manifest(args)
    service = ctx.services.get(CacheService)
    if args.use_cache and (entry := service.index.find_dataset(manifest.manifest_hash())) is not None:
        return _completed(service, result_of(service, entry, cached=True, elapsed_seconds=0.0))
    driver = args.driver
    if driver.backend == "process" and driver.multiprocess:
        prestart_pool(driver.workers)  # its forkserver imports the engine while this process does too
    jobs = ctx.services.get(JobService)
    record = jobs.submit("generate_dataset", job_arguments(manifest, driver, args.use_cache),
                         owner="request" if args.wait else "server", caller=caller_of(ctx))
    if not args.wait:
        return ToolResult(GenerateDatasetOutput(status="queued", job_id=record.job_id,
                                                status_url=job_url(record.job_id)))
    final = await jobs.wait(record.job_id, ctx.report_progress)
    if final.status != "completed" or final.result is None:
        raise error_of(final)
    return _completed(service, final.result)


# --- description ----------------------------------------------------------------------------------

class DatasetInput(ToolInput):
    cache_key: str | None = Field(None, max_length=96, pattern=NAME_PATTERN,
                                  description="A cache entry (generated or normalized) to describe.")
    path: str | None = Field(None, max_length=4096, description="An event Parquet file in the data or an import "
                             "directory (admin).")


class Fact(ToolOutput):
    name: str
    statistic: str
    value: float | None
    band: str
    low: float | None
    high: float | None
    passed: bool | None = Field(description="Null when the sample is too short for the fact (see note).")
    note: str | None


class DescribeInput(DatasetInput):
    reference_path: str | None = Field(None, max_length=4096, description="Real 1-minute candles "
                                       "(CSV/Parquet: timestamp, close, volume) or an event file to compare (admin).")


class ComparedFact(ToolOutput):
    fact: str
    data: float | None
    reference: float | None


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
    comparison: list[ComparedFact] = Field(default_factory=list, description="With `reference_path`: the same "
                                           "one-minute facts of this dataset and of the reference, side by side.")


class PlotInput(DescribeInput):
    width_px: int = Field(1200, ge=300, le=4000)
    height_px: int = Field(800, ge=200, le=4000)


class PlotOutput(ToolOutput):
    source: str
    mime_type: str
    width_px: int
    height_px: int
    bytes: int


def _dataset(args: DatasetInput, ctx: CallContext) -> tuple[str, Path, SimulationManifest | None, str]:
    """The file to read, the manifest that made it when it is a generated dataset, and the field that named it."""
    if (args.cache_key is None) == (args.path is None):
        raise InvalidArgument.from_problems([Problem("$", "give exactly one of cache_key or path")])
    if args.path is not None:
        if not ctx.principal.allows("admin"):
            raise Forbidden("reading a server file by path needs the 'admin' scope", missing_scope="admin")
        return args.path, ctx.services.paths.readable(args.path, "$.path"), None, "$.path"
    from quantdesk.tools.caches.service import CacheService

    service = ctx.services.get(CacheService)
    entry = service.index.get(str(args.cache_key))
    manifest = None
    if entry.kind == "dataset":
        manifest = SimulationManifest.model_validate(service.store.read_manifest(entry.cache_key)["config"])
    return entry.cache_key, service.store.get(entry.cache_key).path, manifest, "$.cache_key"


async def _read_dataset(field: str, work: Any) -> Any:
    """Run a reader of a Parquet file in a thread; a file that is not one (or is damaged) is a clear error.

    The reader's own message is never passed on: it can quote the bytes of whatever file it was given.
    """
    import pyarrow as pa

    try:
        return await anyio.to_thread.run_sync(work)
    except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        logger.info("unreadable dataset", extra={"field": field, "error": type(exc).__name__})
        message = "is not a readable Parquet file in the canonical event schema (damaged, truncated or another format)"
        if field == "$.path":
            raise InvalidArgument.from_problems([Problem(field, message)]) from None
        raise Unavailable(f"the cached artifact {message}; delete it and generate it again") from None


def _reference(args: DescribeInput, ctx: CallContext) -> str | None:
    if args.reference_path is None:
        return None
    if not ctx.principal.allows("admin"):
        raise Forbidden("reading a server file by path needs the 'admin' scope", missing_scope="admin")
    return str(ctx.services.paths.readable(args.reference_path, "$.reference_path"))


@tools.tool(scope="read", title="Describe a dataset's stylized facts", read_only=True, idempotent=True)
async def describe_dataset(args: DescribeInput, ctx: CallContext) -> DescribeOutput:
    """Compute the stylized facts of a dataset and say which target bands hold.

    Works on any canonical-event dataset (generated or normalized real data): kurtosis at 1 min/1 h/1 d,
    Hill tail index, ACF of returns and absolute returns, Ljung-Box tests, volume/volatility
    correlation, realized versus configured volatility, spread and depth statistics, trade clustering.
    `reference_path` adds a reference's minute facts.
    """
    from quantdesk.tools.market.stylized import describe

    source, path, manifest, field = _dataset(args, ctx)
    result = await _read_dataset(field, lambda: describe(path, manifest))
    reference = _reference(args, ctx)
    if reference is not None:
        from quantdesk.tools.market.compare import compare

        try:
            result["comparison"] = await anyio.to_thread.run_sync(lambda: compare(path, reference))
        except (ValueError, TypeError, KeyError, OSError) as exc:
            message = str(exc) if isinstance(exc, ValueError) and "one-minute" in str(exc) else \
                "is not a readable candle file or event dataset"
            raise InvalidArgument.from_problems([Problem("$.reference_path", message)]) from None
    return DescribeOutput.model_validate({"source": source, **result})


@tools.tool(scope="read", title="Chart a dataset", read_only=True, idempotent=True, output_model=PlotOutput)
async def plot_dataset(args: PlotInput, ctx: CallContext) -> ToolResult:
    """A PNG chart of a dataset: price, volume and spread over time (with reference_path, both ACFs of 1-min |r|)."""
    from quantdesk.tools.market.plot import plot_dataset as render_png

    source, path, _, field = _dataset(args, ctx)
    reference = _reference(args, ctx)
    curve = None
    if reference is not None:
        from quantdesk.tools.market.compare import abs_return_acf

        try:
            curve = await anyio.to_thread.run_sync(lambda: abs_return_acf(reference))
        except (ValueError, TypeError, KeyError, OSError) as exc:
            message = str(exc) if isinstance(exc, ValueError) and "one-minute" in str(exc) else \
                "is not a readable candle file or event dataset"
            raise InvalidArgument.from_problems([Problem("$.reference_path", message)]) from None
    png = await _read_dataset(field, lambda: render_png(path, title=source, width_px=args.width_px,
                                                        height_px=args.height_px, reference_acf=curve,
                                                        reference_label=Path(reference).name if reference else ""))
    output = PlotOutput(source=source, mime_type="image/png", width_px=args.width_px, height_px=args.height_px,
                        bytes=len(png))
    return ToolResult(output, (ImageBlock(png, "image/png"),))


class CalibrateInput(ToolInput):
    path: str = Field(..., max_length=4096, description="One-minute candles, CSV or Parquet, with columns "
                      "timestamp, close and volume (OHLC optional), in the data directory or an import directory "
                      "(admin scope).")
    preset: str = Field("default", max_length=64, description="A preset from get_presets to start the fit from.")


class CalibratedFact(ToolOutput):
    fact: str
    data: float
    model: float
    band_low: float
    band_high: float
    passed: bool


class CalibrateOutput(ToolOutput):
    source: str
    manifest: dict[str, Any] = Field(description="The fitted SimulationManifest: give it to generate_dataset.")
    manifest_hash: str
    facts: list[CalibratedFact] = Field(description="Each fact of the file beside the fitted model's, with its band.")
    notes: list[str]
    minutes: int


@tools.tool(scope="read", title="Calibrate a manifest to real candles", read_only=True, idempotent=True)
async def calibrate_manifest(args: CalibrateInput, ctx: CallContext) -> CalibrateOutput:
    """Fit a SimulationManifest to your own one-minute candles and compare the facts side by side.

    Fits the volatility level and factor memory, tail thickness, jumps, hour-of-day and weekday
    seasonality, the volume level and its link to |r| (moment matching, with the generator itself
    as the simulator; deterministic). Returns the manifest, and the file's facts beside the fitted
    model's, each with its band: ACF of |r| at 1/10/100 minutes, Hill index, excess kurtosis,
    leverage, hour-of-day profile, corr(volume, |r|), volume per minute. Takes 10-40 s.
    """
    from quantdesk.tools.market.calibrate import calibrate, read_candles

    if not ctx.principal.allows("admin"):
        raise Forbidden("reading a server file by path needs the 'admin' scope", missing_scope="admin")
    preset = PRESETS_BY_NAME.get(args.preset)
    if preset is None:
        raise InvalidArgument.from_problems([Problem("$.preset", f"unknown preset {args.preset!r}")])
    path = ctx.services.paths.readable(args.path, "$.path")

    def work() -> dict[str, Any]:
        return calibrate(read_candles(path), preset.manifest())

    try:
        result = await anyio.to_thread.run_sync(work)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        message = str(exc) if isinstance(exc, ValueError) and "candles" in str(exc) else \
            "is not a readable candle file (CSV or Parquet with timestamp, close and volume)"
        raise InvalidArgument.from_problems([Problem("$.path", message)]) from None
    manifest = SimulationManifest.model_validate(result["manifest"])
    return CalibrateOutput(source=args.path, manifest=result["manifest"], manifest_hash=manifest.manifest_hash(),
                           facts=[CalibratedFact(**row) for row in result["facts"]], notes=result["notes"],
                           minutes=result["minutes"])


# --- live stream ----------------------------------------------------------------------------------

class LiveInput(ToolInput):
    symbol: str = Field("BTC", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$",
                        description="Symbol written into every event (for example BTCUSDT).")
    seed: int | None = Field(None, ge=0, le=MAX_JSON_SAFE_INTEGER,
                             description="Same seed, same stream (fresh when omitted); below 2^53, JSON-safe.")
    preset: str = Field("default", max_length=64, description="A preset from get_presets whose market to stream.")
    speed: float = Field(1.0, ge=0, le=10_000, description="1 = real time, 10 = ten times faster, 0 = no pacing.")
    max_events: int | None = Field(None, ge=1, le=10**12, description="Stop after this many events (default: "
                                   "never on SSE; at most 10,000 over MCP).")


@tools.stream(scope="stream", event_model=Event, title="Live synthetic market stream")
async def stream_live(args: LiveInput, ctx: CallContext) -> AsyncIterator[TradeEvent | BookEvent]:
    """Stream live synthetic trade and book events for a symbol, paced in real time (or by `speed`).

    Reproducible: the same seed gives the same events, with timestamps counted from the moment the
    stream starts. Over SSE the stream runs until the client disconnects; over MCP it returns a
    bounded batch and reports each event as progress.
    """
    if args.preset not in PRESETS_BY_NAME:
        raise NotFound(f"no preset named {args.preset!r}; known: {', '.join(PRESETS_BY_NAME)}")
    from quantdesk.schemas.events import event_from_row
    from quantdesk.tools.market.pipeline import iter_event_tables

    # the manifest takes seeds below 2^53 (JSON-safe), so a drawn one is drawn there too
    seed = args.seed if args.seed is not None else secrets.randbits(53)
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


# --- MCP resources and prompts ---------------------------------------------------------------------------

tools.resource("quantdesk://presets/{name}", tool="get_presets", name="preset", title="Simulation preset",
               description="A named SimulationManifest with its description and manifest_hash.",
               select=lambda out: out["presets"][0], aliases=("aleatoric://presets/{name}",),
               listing=Listing("get_presets", lambda out: [{"name": p["name"], "title": p["title"],
                                                            "description": p["description"]} for p in out["presets"]]))
tools.resource("quantdesk://presets", tool="get_presets", name="presets", title="Simulation presets",
               description="Every named preset with its complete manifest.", aliases=("aleatoric://presets",))
tools.resource("quantdesk://schemas/simulation-manifest.json", tool="get_config_schema", name="config-schema",
               title="SimulationManifest JSON Schema", select=lambda out: out["schema"],
               description="The JSON Schema (2020-12) of a synthetic market's configuration: units, bounds, defaults.",
               aliases=("aleatoric://schema/config",))


@tools.prompt(title="Generate backtest data", arguments=(
    PromptArgument("symbol", "Base asset, e.g. BTC or ETH (default BTC).",
                   completion=Listing("get_presets", lambda out: [{"symbol": p["manifest"]["symbol"]}
                                                                  for p in out["presets"]])),
    PromptArgument("days", "How many days of data (1-7, default 1)."),
    PromptArgument("regime", "calm, volatile or crash (default calm)."),
))
def generate_backtest_data(arguments: dict[str, str]) -> str:
    """Generate reproducible synthetic trades and L2 books for a backtest, checked against real-market facts."""
    symbol = arguments.get("symbol", "BTC")
    days = arguments.get("days", "1")
    regime = arguments.get("regime", "calm")
    return (
        f"Generate {days} day(s) of synthetic {symbol} market data for a backtest, in a {regime} regime.\n"
        "1. Call get_presets and pick the preset closest to the regime (a calm or volatile major, or the "
        "flash-crash day); take its manifest as the config and set symbol, and a seed so the data can be "
        "reproduced.\n"
        "2. Call validate_config with that config; fix every problem it names, and note the manifest_hash.\n"
        f"3. Call generate_dataset with the config and duration_seconds = {days} x 86400 (at most 604800). "
        "For more than an hour of data pass wait: false and follow the job with get_job.\n"
        "4. Call describe_dataset with the cache_key and report which stylized facts (volatility clustering, "
        "fat tails, spread, volume) fall inside their bands and which do not.\n"
        "5. Give the user the download_url (or the resource link) and the seed and manifest_hash needed to "
        "regenerate exactly the same file. Say that the data is synthetic (data_source: synthetic)."
    )
