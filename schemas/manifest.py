"""SimulationManifest: everything that determines a synthetic dataset, with units in the names.

It accepts both Aleatoric field sets (the notebook set and the legacy example set) and
canonicalizes the legacy names, so old configs keep validating and hash like new ones.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

MODEL_VERSION = "quantdesk-logsv-hawkes/2"
"""The generator's model version; part of every manifest hash, bumped whenever output bytes change."""

# legacy name -> (canonical name, conversion)
_LEGACY_FIELDS: dict[str, tuple[str, Any]] = {
    "initial_mid": ("initial_price", None),
    "initial_spread_bps": ("base_spread_bps", None),
    "book_depth": ("num_levels", None),
    "drift": ("drift_annual", None),
    # The legacy examples used `volatility: 0.02`, a daily fraction; crypto trades every day of the year.
    "volatility": ("volatility_annual", lambda v: v * math.sqrt(365.0)),
    "jump_intensity": ("jump_intensity_per_hour", None),
    "trade_intensity_base": ("trade_rate_per_second", None),
    "mean_reversion": ("mean_reversion_per_day", None),
}


class SimulationManifest(BaseModel):
    """The full description of a synthetic market: price, volatility, jumps, trades, book and latency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field("BTC", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$",
                        description="Instrument label written into every event.")
    seed: int = Field(42, ge=0, le=2**63 - 1, description="Root seed; same manifest and seed give identical bytes.")
    start_time_ms: int = Field(1_735_689_600_000, ge=0, le=4_102_444_800_000,
                               description="Timestamp of the first instant, ms since the Unix epoch (UTC).")
    duration_seconds: int = Field(3600, ge=1, le=604_800, description="Length of the simulated period (max 7 days).")

    initial_price: float = Field(50_000.0, gt=0, le=1e9, description="Starting mid price in quote currency.")
    tick_size: float = Field(0.1, gt=0, description="Price increment; every price is a multiple of it.")
    lot_size: float = Field(0.001, gt=0, description="Size increment in base units; every size is a multiple of it.")

    drift_annual: float = Field(0.0, ge=-5, le=5, description="Annualized log drift of the mid price.")
    volatility_annual: float = Field(0.60, gt=0, le=5, description="Long-run annualized volatility of log returns.")
    mean_reversion_per_day: float = Field(0.0, ge=0, le=100,
                                          description="Pull of log price toward initial_price, per day (0 = none).")
    vol_factor_half_lives_seconds: tuple[float, ...] = Field(
        (600.0, 10_800.0, 604_800.0), min_length=1, max_length=5,
        description="Half-lives of the AR(1) log-volatility factors (short, medium, long memory).")
    vol_factor_stdevs: tuple[float, ...] = Field(
        (0.30, 0.30, 0.35), min_length=1, max_length=5,
        description="Stationary standard deviation of each log-volatility factor.")
    return_tail_dof: float = Field(4.0, gt=2.0, le=1000.0,
                                   description="Student-t degrees of freedom of return innovations (lower = fatter).")
    leverage_correlation: float = Field(0.0, ge=-0.9, le=0.9,
                                        description="Correlation of return shocks with the short volatility factor.")

    jump_model: Literal["none", "merton", "kou"] = Field("merton", description="Price jump process.")
    jump_intensity_per_hour: float = Field(0.5, ge=0, le=3600, description="Expected jumps per hour.")
    jump_mean_bps: float = Field(0.0, ge=-5000, le=5000, description="Merton: mean jump size in bps.")
    jump_std_bps: float = Field(20.0, ge=0, le=5000, description="Merton: jump size standard deviation in bps.")
    kou_up_probability: float = Field(0.5, ge=0, le=1, description="Kou: probability a jump is upward.")
    kou_up_mean_bps: float = Field(20.0, gt=0, le=5000, description="Kou: mean upward jump in bps.")
    kou_down_mean_bps: float = Field(20.0, gt=0, le=5000, description="Kou: mean downward jump in bps.")

    trade_rate_per_second: float = Field(5.0, gt=0, le=10_000, description="Long-run mean trade arrivals per second.")
    hawkes_branching_ratio: float = Field(0.6, ge=0, lt=1, description="Share of trades triggered by earlier trades.")
    hawkes_decay_seconds: float = Field(1.0, gt=0, le=3600, description="Mean delay of a triggered trade.")
    trade_rate_vol_elasticity: float = Field(1.0, ge=0, le=4,
                                             description="Arrival intensity scales as (sigma_t / sigma)^elasticity.")
    trade_size_median: float = Field(0.01, gt=0, description="Median trade size in base units.")
    trade_size_log_sd: float = Field(1.0, ge=0, le=5, description="Lognormal sigma of the trade size body.")
    trade_size_tail_probability: float = Field(0.05, ge=0, le=0.5, description="Share of sizes from the Pareto tail.")
    trade_size_tail_alpha: float = Field(1.8, gt=1.0, le=5, description="Pareto tail exponent of large trades.")
    side_persistence: float = Field(0.3, ge=0, lt=1,
                                    description="Aggressor sides repeat with probability (1 + persistence) / 2.")

    base_spread_bps: float = Field(1.0, gt=0, le=10_000,
                                   description="Typical spread in bps at long-run volatility (never below one tick).")
    spread_vol_elasticity: float = Field(0.5, ge=0, le=4, description="Spread scales as (sigma_t / sigma)^elasticity.")
    spread_noise_sd: float = Field(0.3, ge=0, le=3, description="Stationary sd of the spread's own log-OU noise.")
    spread_half_life_seconds: float = Field(30.0, gt=0, le=86_400, description="Half-life of the spread noise.")
    num_levels: int = Field(10, ge=1, le=500, description="Book levels per side in each snapshot.")
    book_interval_ms: int = Field(100, ge=10, le=60_000, description="Time between L2 book snapshots.")
    depth_level_size: float = Field(1.0, gt=0, description="Mean resting size per level in base units.")
    depth_peak_level: float = Field(3.0, ge=1, le=100, description="Level (1 = touch) where mean depth peaks.")
    depth_noise_sd: float = Field(0.5, ge=0, le=3, description="Lognormal noise on each level's size.")

    latency_median_ms: float = Field(3.0, ge=0, le=10_000, description="Median capture latency (capture - exchange).")
    latency_log_sd: float = Field(0.5, ge=0, le=3, description="Lognormal sigma of capture latency.")

    # The legacy Aleatoric names, accepted on input and folded into the canonical fields above.
    initial_mid: float | None = Field(None, exclude=True, deprecated=True, description="Legacy: initial_price.")
    initial_spread_bps: float | None = Field(None, exclude=True, deprecated=True,
                                             description="Legacy: base_spread_bps.")
    book_depth: int | None = Field(None, exclude=True, deprecated=True, description="Legacy: num_levels.")
    drift: float | None = Field(None, exclude=True, deprecated=True, description="Legacy: drift_annual.")
    volatility: float | None = Field(None, exclude=True, deprecated=True,
                                     description="Legacy: daily volatility fraction; becomes volatility * sqrt(365).")
    jump_intensity: float | None = Field(None, exclude=True, deprecated=True,
                                         description="Legacy: jump_intensity_per_hour.")
    trade_intensity_base: float | None = Field(None, exclude=True, deprecated=True,
                                               description="Legacy: trade_rate_per_second.")
    mean_reversion: float | None = Field(None, exclude=True, deprecated=True,
                                         description="Legacy: mean_reversion_per_day.")

    @model_validator(mode="before")
    @classmethod
    def _fold_legacy_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for legacy, (canonical, convert) in _LEGACY_FIELDS.items():
            value = out.get(legacy)
            if value is None:
                continue
            if canonical in out:
                raise ValueError(f"give either {legacy} (legacy) or {canonical}, not both")
            out[canonical] = convert(value) if convert is not None and isinstance(value, int | float) else value
            out[legacy] = None
        return out

    @model_validator(mode="after")
    def _check_consistency(self) -> SimulationManifest:
        problems = []
        if self.tick_size >= self.initial_price:
            problems.append("tick_size must be smaller than initial_price")
        if len(self.vol_factor_half_lives_seconds) != len(self.vol_factor_stdevs):
            problems.append("vol_factor_half_lives_seconds and vol_factor_stdevs need the same length")
        if any(h <= 0 for h in self.vol_factor_half_lives_seconds):
            problems.append("vol_factor_half_lives_seconds must all be positive")
        if any(s < 0 or s > 3 for s in self.vol_factor_stdevs):
            problems.append("vol_factor_stdevs must lie in [0, 3]")
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
