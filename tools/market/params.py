"""Numbers derived once from a SimulationManifest: per-second and per-block rates, normalizations, grids."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quantdesk.schemas.manifest import BTC_HOUR_VOLATILITY, BTC_WEEKDAY_VOLATILITY, SimulationManifest
from quantdesk.tools.market.blocks import BLOCK_MS, BLOCK_SECONDS, decimal_scale, snapshots_per_block

FloatArray = npt.NDArray[np.float64]
SECONDS_PER_YEAR = 365 * 86_400
"""Crypto trades every day; annualization uses 365 days (as the manifest's legacy conversion does)."""
MAX_LOOKBACK_BLOCKS = 60
"""Hawkes clusters are cut this many blocks after their immigrant's block (an hour at most)."""
HAWKES_TRUNCATION_MASS = 1e-6
"""Look back far enough that at most this share of a cluster's expected offspring is cut."""
TAIL_SCALE_QUANTILE_Z = 1.6448536269514722
"""Pareto trade sizes start at the 95th percentile of the lognormal body."""


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The generator's working numbers; log returns are natural-log units, times in seconds unless named."""

    seed: int
    start_time_ms: int
    duration_ms: int
    # volatility: log sigma_t = log sigma_d + sum_k f_k - total_factor_var, so E[sigma_t^2] = sigma_d^2
    var_per_second: float
    factor_phi: tuple[float, ...]
    factor_innovation_sd: tuple[float, ...]
    factor_sd: tuple[float, ...]
    total_factor_var: float
    vol_level_offset: float
    """Subtracted from the factor sum: the part of each factor's variance that averages out within
    LEVEL_HORIZON_SECONDS (a day) is normalized in mean, the rest in median, so runs of 1 to 7 days realize
    volatility_annual on the median of seeds (E[exp(2 F)] normalization, the old one, gave 0.70-0.92)."""
    short_factor: int
    leverage: float
    tail_dof: float
    impact_reversal: float
    flow_imbalance: float
    # seasonality: log profiles per hour of the week (interpolated between hour centres), already
    # normalized (a week of exp(2 vol) averages 1, a week of exp(rate) averages 1); zeros when off
    season_log_vol: tuple[float, ...]
    season_log_rate: tuple[float, ...]
    volume_shock_weight: float
    jump_second_moment: float
    # drift and mean reversion, per block
    log_price0: float
    drift_per_block: float
    reversion_per_block: float
    # jumps
    jump_model: str
    jumps_per_block: float
    jump_mean: float
    jump_std: float
    kou_up_probability: float
    kou_up_mean: float
    kou_down_mean: float
    # spread: bps = base * (sigma_t / sigma)^elasticity * exp(u_t), u a log-OU on the 1 s grid
    base_spread_bps: float
    spread_vol_elasticity: float
    spread_phi: float
    spread_innovation_sd: float
    spread_sd: float
    # book
    book_interval_ms: int
    snapshots_per_block: int
    num_levels: int
    level_step_ticks: int
    depth_mean_lots: tuple[float, ...]
    depth_noise_sd: float
    # trades: Hawkes with immigrant rate mu_0 * exp(gamma F - gamma^2 S^2 / 2), mean 1 over F
    immigrant_rate_per_second: float
    branching_ratio: float
    decay_seconds: float
    trade_vol_elasticity: float
    lookback_blocks: int
    size_median_lots: float
    size_log_sd: float
    tail_probability: float
    tail_alpha: float
    tail_scale_lots: float
    max_trade_lots: float
    side_persistence: float
    latency_median_ms: float
    latency_log_sd: float
    # decimal grids: value = count * units / scale
    tick_size: float
    tick_units: int
    tick_scale: int
    lot_size: float
    lot_units: int
    lot_scale: int
    symbol: str

    @property
    def end_block(self) -> int:
        return -(-self.duration_ms // BLOCK_MS)


def jump_variance_annual(manifest: SimulationManifest) -> float:
    """Variance per year that the jump process adds to log returns."""
    per_year = manifest.jump_intensity_per_hour * 24 * 365
    if manifest.jump_model == "merton":
        second_moment = (manifest.jump_mean_bps**2 + manifest.jump_std_bps**2) * 1e-8
    elif manifest.jump_model == "kou":
        p = manifest.kou_up_probability
        second_moment = (p * 2 * manifest.kou_up_mean_bps**2 + (1 - p) * 2 * manifest.kou_down_mean_bps**2) * 1e-8
    else:
        return 0.0
    return per_year * second_moment


DAY_SECONDS = 86_400
IMPACT_REVERSAL_SHARE = 0.05
"""Share of a minute's move given back next minute per unit of order_flow_impact (0.025 at the default 0.5,
which gives the lag-1 return autocorrelation of real BTC minutes, -0.03)."""
LEVEL_HORIZON_SECONDS = DAY_SECONDS
"""volatility_annual is what runs of this length or longer (to 7 days) realize on the median of seeds."""


def averaged_share(half_life_seconds: float, horizon_seconds: float = LEVEL_HORIZON_SECONDS) -> float:
    """Share of an AR(1) factor's variance left in its average over `horizon_seconds` (continuous-time form)."""
    ratio = half_life_seconds / math.log(2.0) / horizon_seconds
    return 2.0 * ratio * (1.0 - ratio * -math.expm1(-1.0 / ratio))


WEEK_SECONDS = 7 * DAY_SECONDS
MONDAY_EPOCH_SECONDS = 4 * DAY_SECONDS
"""1970-01-05 00:00 UTC, the first Monday after the Unix epoch."""


def season_log(hour_of_week_log: tuple[float, ...], seconds: FloatArray) -> FloatArray:
    """Log seasonal multiplier at absolute Unix `seconds`: the hour-of-week profile, linear between hour centres."""
    position = np.mod(seconds - MONDAY_EPOCH_SECONDS, WEEK_SECONDS) / 3600.0 - 0.5
    table = np.asarray(hour_of_week_log + hour_of_week_log[:1])
    base = np.floor(position)
    frac = position - base
    index = base.astype(np.int64) % 168
    out: FloatArray = table[index] * (1.0 - frac) + table[index + 1] * frac
    return out


def hour_of_week_profile(profile: tuple[float, ...]) -> tuple[float, ...]:
    """168 relative volatilities, Monday 00:00 UTC first: a 24-value profile repeats, none is BTC's."""
    if not profile:
        return tuple(h * d for d in BTC_WEEKDAY_VOLATILITY for h in BTC_HOUR_VOLATILITY)
    return profile * (168 // len(profile))


def _season(profile: tuple[float, ...], power: float) -> tuple[float, ...]:
    """Log hour-of-week profile normalized so a week of exp(power * season) averages 1."""
    logs = tuple(math.log(v) for v in profile)
    week = season_log(logs, np.arange(0.0, WEEK_SECONDS, 60.0))
    shift = math.log(float(np.mean(np.exp(power * week)))) / power
    return tuple(v - shift for v in logs)


def feasibility_problems(manifest: SimulationManifest) -> list[str]:
    """What the engine cannot honour beyond the manifest's own validation (empty when all is well)."""
    problems = []
    jump_var = jump_variance_annual(manifest)
    if jump_var >= 0.99 * manifest.volatility_annual**2:
        problems.append(f"jumps alone add an annualized volatility of {math.sqrt(jump_var):.3g}, which leaves no "
                        f"room for diffusion under volatility_annual={manifest.volatility_annual}")
    return problems


def _cluster_kept_share(branching: float, decay: float, lookback_blocks: int) -> float:
    """Expected cluster size (immigrant included) after cutting at the end of block `a + 1 + lookback`."""
    if branching == 0.0:
        return 1.0
    c = (1.0 - branching) / decay
    horizon = (lookback_blocks + 1) * BLOCK_SECONDS
    # immigrant position is uniform in its block, so the cut comes after horizon - pos
    mean_cut = math.exp(-c * horizon) * math.expm1(c * BLOCK_SECONDS) / (c * BLOCK_SECONDS)
    return 1.0 + branching / (1.0 - branching) * (1.0 - mean_cut)


def derive_params(manifest: SimulationManifest) -> ModelParams:
    """The working numbers of one manifest; raises ValueError when `feasibility_problems` is not empty."""
    problems = feasibility_problems(manifest)
    if problems:
        raise ValueError("; ".join(problems))
    m = manifest
    factor_sd = tuple(float(s) for s in m.vol_factor_stdevs)
    phis = tuple(2.0 ** (-1.0 / h) for h in m.vol_factor_half_lives_seconds)
    innovation_sd = tuple(s * math.sqrt(1.0 - p * p) for s, p in zip(factor_sd, phis, strict=True))
    diffusive_var = m.volatility_annual**2 - jump_variance_annual(m)

    spread_phi = 2.0 ** (-1.0 / m.spread_half_life_seconds)
    tick_units, tick_scale = decimal_scale(m.tick_size)
    lot_units, lot_scale = decimal_scale(m.lot_size)

    levels = range(1, m.num_levels + 1)
    shape = [k * math.exp(-k / m.depth_peak_level) for k in levels]
    mean_shape = sum(shape) / len(shape)
    depth_mean_lots = tuple(v / mean_shape * m.depth_level_size / m.lot_size for v in shape)
    base_spread_ticks = m.base_spread_bps * 1e-4 * m.initial_price / m.tick_size

    branching = m.hawkes_branching_ratio
    if branching > 0.0:
        horizon = math.log(1.0 / HAWKES_TRUNCATION_MASS) * m.hawkes_decay_seconds / (1.0 - branching)
        lookback = min(math.ceil(horizon / BLOCK_SECONDS), MAX_LOOKBACK_BLOCKS)
    else:
        lookback = 0
    # the mean rate is immigrants times the expected (cut) cluster size
    immigrant_rate = m.trade_rate_per_second / _cluster_kept_share(branching, m.hawkes_decay_seconds, lookback)

    size_median_lots = m.trade_size_median / m.lot_size
    if m.seasonality:
        profile = hour_of_week_profile(m.volatility_profile)
        season_log_vol = _season(profile, 2.0)
        season_log_rate = _season(tuple(v**m.trade_rate_season_elasticity for v in profile), 1.0)
    else:
        season_log_vol = season_log_rate = (0.0,) * 168
    level_offset = sum(s * s * (1.0 - averaged_share(h)) for s, h in
                       zip(factor_sd, m.vol_factor_half_lives_seconds, strict=True))
    if m.jump_model == "merton":
        jump_second_moment = (m.jump_mean_bps**2 + m.jump_std_bps**2) * 1e-8
    elif m.jump_model == "kou":
        q = m.kou_up_probability
        jump_second_moment = (q * 2 * m.kou_up_mean_bps**2 + (1 - q) * 2 * m.kou_down_mean_bps**2) * 1e-8
    else:
        jump_second_moment = 0.0
    return ModelParams(
        seed=m.seed, start_time_ms=m.start_time_ms, duration_ms=m.duration_seconds * 1000,
        var_per_second=diffusive_var / SECONDS_PER_YEAR,
        factor_phi=phis, factor_innovation_sd=innovation_sd, factor_sd=factor_sd,
        total_factor_var=sum(s * s for s in factor_sd), vol_level_offset=level_offset,
        short_factor=min(range(len(phis)), key=lambda k: m.vol_factor_half_lives_seconds[k]),
        leverage=m.leverage_correlation, tail_dof=m.return_tail_dof,
        impact_reversal=m.order_flow_impact * IMPACT_REVERSAL_SHARE, flow_imbalance=m.order_flow_impact,
        season_log_vol=season_log_vol, season_log_rate=season_log_rate, volume_shock_weight=m.volume_shock_weight,
        jump_second_moment=jump_second_moment,
        log_price0=math.log(m.initial_price),
        drift_per_block=m.drift_annual * BLOCK_SECONDS / SECONDS_PER_YEAR,
        reversion_per_block=m.mean_reversion_per_day * BLOCK_SECONDS / 86_400,
        jump_model=m.jump_model, jumps_per_block=m.jump_intensity_per_hour * BLOCK_SECONDS / 3600,
        jump_mean=m.jump_mean_bps * 1e-4, jump_std=m.jump_std_bps * 1e-4,
        kou_up_probability=m.kou_up_probability, kou_up_mean=m.kou_up_mean_bps * 1e-4,
        kou_down_mean=m.kou_down_mean_bps * 1e-4,
        base_spread_bps=m.base_spread_bps, spread_vol_elasticity=m.spread_vol_elasticity,
        spread_phi=spread_phi, spread_innovation_sd=m.spread_noise_sd * math.sqrt(1.0 - spread_phi**2),
        spread_sd=m.spread_noise_sd,
        book_interval_ms=m.book_interval_ms, snapshots_per_block=snapshots_per_block(m.book_interval_ms),
        num_levels=m.num_levels, level_step_ticks=max(1, round(base_spread_ticks / 2)),
        depth_mean_lots=depth_mean_lots, depth_noise_sd=m.depth_noise_sd,
        immigrant_rate_per_second=immigrant_rate, branching_ratio=branching,
        decay_seconds=m.hawkes_decay_seconds, trade_vol_elasticity=m.trade_rate_vol_elasticity,
        lookback_blocks=lookback,
        size_median_lots=size_median_lots, size_log_sd=m.trade_size_log_sd,
        tail_probability=m.trade_size_tail_probability, tail_alpha=m.trade_size_tail_alpha,
        tail_scale_lots=size_median_lots * math.exp(TAIL_SCALE_QUANTILE_Z * m.trade_size_log_sd),
        max_trade_lots=min(size_median_lots * 1e6, 2.0**52 / max(lot_units, 1)),
        side_persistence=m.side_persistence,
        latency_median_ms=m.latency_median_ms, latency_log_sd=m.latency_log_sd,
        tick_size=m.tick_size, tick_units=tick_units, tick_scale=tick_scale,
        lot_size=m.lot_size, lot_units=lot_units, lot_scale=lot_scale, symbol=m.symbol,
    )
