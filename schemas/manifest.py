"""SimulationManifest: everything that determines a synthetic dataset, with units in the names.

It accepts both Aleatoric field sets (the notebook set and the legacy example set) and
canonicalizes the legacy names, so old configs keep validating and hash like new ones.
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_JSON_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript client (the MCP Inspector, the TypeScript SDK) reads back exactly."""

MODEL_VERSION = "quantdesk-logsv-hawkes/3"
"""The generator's model version; part of every manifest hash, bumped whenever output bytes change."""

# legacy name -> (canonical name, conversion); accepted on input, folded into the canonical field
_LEGACY_FIELDS: dict[str, tuple[str, Any]] = {
    "initial_mid": ("initial_price", None),
    "initial_spread_bps": ("base_spread_bps", None),
    "book_depth": ("num_levels", None),
    "drift": ("drift_annual", None),
    # The legacy examples used `volatility: 0.02`, a daily fraction; crypto trades every day of the year
    # (the schema's note for it says sqrt(365): keep them together).
    "volatility": ("volatility_annual", lambda v: v * math.sqrt(365.0)),
    "jump_intensity": ("jump_intensity_per_hour", None),
    "trade_intensity_base": ("trade_rate_per_second", None),
    "mean_reversion": ("mean_reversion_per_day", None),
}
_LEGACY_INTEGERS = {"book_depth"}


# Hour-of-day (UTC, hour 0 first) and day-of-week (Monday first) profiles measured on one month of
# Bybit BTCUSDT-perpetual minute candles (June 2025): mean |r| and mean volume per hour or weekday,
# relative. Mean volume per hour there is close to this profile to the power 1.8 (the default
# trade_rate_season_elasticity). The engine normalizes them (a week of the volatility profile keeps the
# configured variance, of the trade-rate profile the configured mean rate), so only their shape matters.
BTC_HOUR_VOLATILITY = (1.19, 1.02, 0.92, 0.76, 0.63, 0.62, 0.67, 0.69, 0.77, 0.76, 0.77, 0.70,
                       0.83, 1.26, 1.47, 1.22, 1.22, 1.19, 1.15, 1.12, 1.10, 1.18, 1.12, 0.93)
# weekdays from four weeks only: shrunk halfway toward flat (the quiet weekend is the robust part)
BTC_WEEKDAY_VOLATILITY = (1.09, 1.04, 1.0, 1.02, 1.06, 0.82, 0.92)

_LEAN_KEYS = frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "const",
                        "pattern", "minLength", "maxLength", "items", "minItems", "maxItems", "default", "deprecated"})


def lean_schema(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A flat model's schema with its types, bounds and defaults only, for nesting in a tool's input.

    The constraints are all there (the registry validates against this), the prose is not: the
    full schema, every field described, is one call away (get_config_schema), and nesting it in
    each tool that takes a manifest cost every model's context twice its size.
    """
    properties = {}
    for name, prop in schema["properties"].items():
        lean = {key: value for key, value in prop.items() if key in _LEAN_KEYS}
        if prop.get("deprecated"):
            lean["description"] = prop["description"]  # which canonical field a legacy name stands for
        properties[name] = lean
    return {"type": "object", "description": description, "properties": properties, "additionalProperties": False}


def compact_schema(schema: dict[str, Any]) -> None:
    """Drop the per-property titles pydantic derives from field names: they restate the name (a fifth of the bytes)."""
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)


def _manifest_schema(schema: dict[str, Any]) -> None:
    compact_schema(schema)
    # legacy names, one short entry each: advertised (so schema-checking clients accept them), deprecated,
    # with the bounds of the field they stand for (in their own unit)
    for legacy, (canonical, convert) in _LEGACY_FIELDS.items():
        target = schema["properties"][canonical]
        scale = convert(1.0) if convert is not None else 1.0
        note = f"{canonical} / sqrt(365), a daily fraction" if convert is not None else canonical
        entry: dict[str, Any] = {"type": "integer" if legacy in _LEGACY_INTEGERS else "number", "deprecated": True,
                                 "description": f"Legacy: {note}."}
        for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if bound in target:
                entry[bound] = target[bound] / scale if convert is not None else target[bound]
        schema["properties"][legacy] = entry


class SimulationManifestFields(BaseModel):
    """A synthetic market: price, volatility, jumps, trades, book, latency. Legacy Aleatoric names accepted."""

    # Each field on its own: `validate_config` takes this, so a config that breaks only a rule between
    # fields reaches the tool and is answered `valid: false`; `SimulationManifest` adds those rules.

    model_config = ConfigDict(extra="forbid", frozen=True, title="SimulationManifest",
                              json_schema_extra=_manifest_schema)

    symbol: str = Field("BTC", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$",
                        description="Label written into every event.")
    seed: int = Field(42, ge=0, le=MAX_JSON_SAFE_INTEGER, description="Same manifest and seed, same bytes.")
    start_time_ms: int = Field(1_735_689_600_000, ge=0, le=4_102_444_800_000,
                               description="First instant, since the Unix epoch (UTC).")
    duration_seconds: int = Field(3600, ge=1, le=604_800, description="Simulated period.")

    initial_price: float = Field(50_000.0, gt=0, le=10**9, description="Starting mid, quote currency.")
    tick_size: float = Field(0.1, gt=0, le=10**9, description="Price grid step, quote currency.")
    lot_size: float = Field(0.001, gt=0, le=10**9, description="Size grid step, base units.")

    drift_annual: float = Field(0.0, ge=-5, le=5, description="Annualized log drift.")
    volatility_annual: float = Field(
        0.60, gt=0, le=5,
        description="Annualized volatility of log returns that a run of one to seven days realizes (median over "
                    "seeds).")
    mean_reversion_per_day: float = Field(0.0, ge=0, le=100, description="Pull toward initial_price (0 = none).")
    vol_factor_half_lives_seconds: tuple[Annotated[float, Field(gt=0, le=10**8)], ...] = Field(
        (60.0, 1800.0, 28_800.0, 172_800.0), min_length=1, max_length=5,
        description="Half-lives of the AR(1) log-volatility factors (minutes to days: long memory).")
    vol_factor_stdevs: tuple[Annotated[float, Field(ge=0, le=3)], ...] = Field(
        (0.30, 0.24, 0.34, 0.22), min_length=1, max_length=5, description="Stationary sd of each factor (same length).")
    return_tail_dof: float = Field(
        30.0, gt=2.0, le=1000.0,
        description="Student-t dof of each minute's shock given its volatility (lower: fatter). Tails come mostly "
                    "from the persistent volatility factors; a low value here adds tails without memory.")
    leverage_correlation: float = Field(-0.3, ge=-0.9, le=0.9,
                                        description="Return shocks vs the fastest vol factor (negative: leverage).")

    jump_model: Literal["none", "merton", "kou"] = Field("merton")
    jump_intensity_per_hour: float = Field(0.5, ge=0, le=3600)
    jump_mean_bps: float = Field(0.0, ge=-5000, le=5000, description="Merton.")
    jump_std_bps: float = Field(20.0, ge=0, le=5000, description="Merton.")
    kou_up_probability: float = Field(0.5, ge=0, le=1, description="Kou: share of upward jumps.")
    kou_up_mean_bps: float = Field(20.0, gt=0, le=5000, description="Kou.")
    kou_down_mean_bps: float = Field(20.0, gt=0, le=5000, description="Kou.")

    trade_rate_per_second: float = Field(5.0, gt=0, le=10_000, description="Long-run mean arrivals.")
    hawkes_branching_ratio: float = Field(0.6, ge=0, lt=1, description="Share of trades triggered by trades.")
    hawkes_decay_seconds: float = Field(1.0, gt=0, le=3600, description="Mean delay of a triggered trade.")
    trade_rate_vol_elasticity: float = Field(0.35, ge=0, le=4, description="Arrivals scale as (sigma_t/sigma)^this.")
    volume_shock_weight: float = Field(
        0.1, ge=0, le=1,
        description="Share of a minute's trade arrivals that follows the minute's own squared return shock "
                    "(jumps included), the rest its volatility: volume moves with price.")
    trade_size_median: float = Field(0.06, gt=0, le=10**9, description="Base units.")
    trade_size_log_sd: float = Field(1.0, ge=0, le=5, description="Lognormal sigma of sizes.")
    trade_size_tail_probability: float = Field(0.05, ge=0, le=0.5, description="Share from the Pareto tail.")
    trade_size_tail_alpha: float = Field(1.8, gt=1.0, le=5, description="Pareto tail exponent.")
    order_flow_impact: float = Field(
        0.5, ge=0, le=5,
        description="Signed flow's hold on price: a minute's buy share is logistic(1.7 x this x its standardized "
                    "move); this / 20 of the move reverts the next minute.")
    side_persistence: float = Field(0.3, ge=0, lt=1, description="A side repeats with probability (1 + this) / 2.")

    seasonality: bool = Field(True, description="Apply the time-of-day and day-of-week profile (false: flat).")
    volatility_profile: tuple[Annotated[float, Field(gt=0, le=100)], ...] = Field(
        (), max_length=168,
        description="Relative volatility per UTC hour: 24 values (hour 0 first) or 168 (hour of the week, Monday "
                    "00:00 first); empty: BTC, measured. Trade rate follows it by trade_rate_season_elasticity, "
                    "spread by spread_vol_elasticity.")
    trade_rate_season_elasticity: float = Field(
        1.8, ge=0, le=4, description="Trade rate scales as the seasonal volatility profile to this power.")

    base_spread_bps: float = Field(0.02, gt=0, le=10_000, description="At long-run volatility; at least one tick.")
    spread_vol_elasticity: float = Field(0.5, ge=0, le=4, description="Spread scales as (sigma_t/sigma)^this.")
    spread_noise_sd: float = Field(0.3, ge=0, le=3, description="Stationary sd of the spread's log-OU noise.")
    spread_half_life_seconds: float = Field(30.0, gt=0, le=86_400, description="Of the spread noise.")
    num_levels: int = Field(10, ge=1, le=500, description="Book levels per side.")
    book_interval_ms: int = Field(100, ge=10, le=60_000, description="Between L2 snapshots.")
    depth_level_size: float = Field(2.5, gt=0, le=10**9, description="Mean size per level, base units.")
    depth_peak_level: float = Field(3.0, ge=1, le=100, description="Level (1 = touch) where depth peaks.")
    depth_noise_sd: float = Field(0.5, ge=0, le=3, description="Lognormal noise of level sizes.")

    latency_median_ms: float = Field(3.0, ge=0, le=10_000, description="Capture minus exchange time.")
    latency_log_sd: float = Field(0.5, ge=0, le=3, description="Lognormal sigma of latency.")

    @model_validator(mode="before")
    @classmethod
    def _fold_legacy_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for legacy, (canonical, convert) in _LEGACY_FIELDS.items():
            if legacy not in out:
                continue
            value = out[legacy]
            if canonical in out:
                raise ValueError(f"give either {legacy} (legacy) or {canonical}, not both")
            out[canonical] = convert(value) if convert is not None and isinstance(value, int | float) else value
            del out[legacy]
        return out


class SimulationManifest(SimulationManifestFields):
    """A synthetic market: price, volatility, jumps, trades, book, latency. Legacy Aleatoric names accepted."""

    # the fields, and the rules between them (tick below price, sizes of at least a lot, ...)

    @model_validator(mode="after")
    def _check_consistency(self) -> SimulationManifest:
        problems = []
        if self.tick_size >= self.initial_price:
            problems.append("tick_size must be smaller than initial_price")
        if len(self.vol_factor_half_lives_seconds) != len(self.vol_factor_stdevs):
            problems.append("vol_factor_half_lives_seconds and vol_factor_stdevs need the same length")
        if len(self.volatility_profile) not in (0, 24, 168):
            problems.append("volatility_profile needs 24 or 168 values (or none for the BTC profile)")
        if self.trade_size_median < self.lot_size:
            problems.append("trade_size_median must be at least one lot_size")
        if self.depth_level_size < self.lot_size:
            problems.append("depth_level_size must be at least one lot_size")
        if self.initial_price / self.tick_size > 1e12:
            problems.append("initial_price / tick_size must stay below 1e12 ticks")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def canonical(self) -> dict[str, Any]:
        """The fully-defaulted manifest with canonical names only."""
        return self.model_dump(mode="json")

    def manifest_hash(self) -> str:
        """`sha256:` over the canonical JSON of the manifest plus the generator's model version."""
        payload = orjson.dumps({"manifest": self.canonical(), "model_version": MODEL_VERSION},
                               option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(payload).hexdigest()


_VALIDATOR: Any = None


def manifest_problems(data: Any, prefix: str = "$") -> list[tuple[str, str]]:
    """Every problem of a candidate manifest as (JSON path, message); empty when it is valid.

    Field-level problems come from the JSON Schema (all of them, not the first); cross-field rules
    run only once the fields are individually valid.
    """
    global _VALIDATOR
    import jsonschema  # imported here: the schema module stays importable in light contexts

    if _VALIDATOR is None:
        _VALIDATOR = jsonschema.Draft202012Validator(SimulationManifest.model_json_schema())
    problems: list[tuple[str, str]] = []
    for error in sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties", {}))
            problems += [(f"{path}.{k}", "is not a known field") for k in sorted(error.instance) if k not in known]
        else:
            problems.append((path, error.message))
    if problems:
        return problems
    try:
        SimulationManifest.model_validate(data)
    except ValueError as exc:
        for item in getattr(exc, "errors", lambda: [])():
            message = str(item["msg"]).removeprefix("Value error, ")
            loc = "".join(f".{p}" for p in item["loc"])
            problems += [(prefix + loc, part) for part in message.split("; ")]
    return problems
