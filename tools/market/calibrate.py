"""Fit a SimulationManifest to a user's own one-minute candles, and compare the two side by side.

Moment matching on the statistics quants look at first (issue 12): volatility level from realized
variance; hour-of-day (and, with three weeks or more, weekday) profile of |r|, and the trade-rate
season elasticity from the volume profile; the volatility factors' scale (fast and slow separately)
by a small grid search on ACF of |r| at 1/10/100 minutes and the Hill index, then the shocks' tail
dof, simulated with the generator's own pre-pass (the same code that makes datasets, on the same
number of minutes);
jumps from minutes beyond 6 local sigmas; the volume level from the mean volume per minute; the
volume-|r| link by a search over volume_shock_weight on short full-generator runs. Every fit is
deterministic (fixed seeds), so the same file gives the same manifest.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.coarse import CoarseProcess
from quantdesk.tools.market.params import derive_params

FloatArray = npt.NDArray[np.float64]
MINUTES_PER_YEAR = 365 * 1440
MIN_MINUTES = 1439
"""A day of candles (1439 returns) at least: fewer leave the hour profile and the memory unidentified."""
MAX_FIT_MINUTES = 7 * 1440
"""Model runs in the search are at most a week (the manifest's longest run)."""
FIT_SEEDS = (101, 102)
HILL_SHARE = 0.025
JUMP_SIGMAS = 6.0
FACTOR_SCALES = (0.6, 0.8, 1.0, 1.25, 1.5)
"""Multipliers of the base manifest's fast and slow factor sds searched (a grid: 25 pre-pass runs per seed)."""
TAIL_DOF_GRID = (4.0, 6.0, 10.0, 30.0)
"""Student-t dof of the minute shock searched once the factors are set: the mixture makes most of the tail,
the shock's own dof the rest (a file with fatter tails than the factors alone give)."""
LEVERAGE_GRID = (0.3, 0.0, -0.3, -0.6)


@dataclass(frozen=True, slots=True)
class Candles:
    """Minute candles: bar start (ms since the epoch), close, volume (base units); sorted, one per minute."""

    ts_ms: npt.NDArray[np.int64]
    close: FloatArray
    volume: FloatArray

    @property
    def returns(self) -> FloatArray:
        r: FloatArray = np.diff(np.log(self.close))
        return r


def read_candles(path: str | os.PathLike[str]) -> Candles:
    """Read a CSV or Parquet file with columns timestamp (or ts/time/open_time), close and volume.

    Timestamps may be ISO strings, or integers in s, ms, us or ns since the epoch. Rows are sorted
    by time; duplicates keep the last row; gaps stay gaps (returns across them are dropped).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    name = os.fspath(path)
    if name.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        table = pq.read_table(name)
    else:
        import pyarrow.csv as pv

        table = pv.read_csv(name)
    columns = {c.lower(): c for c in table.column_names}
    ts_name = next((columns[c] for c in ("timestamp", "ts", "time", "open_time", "datetime", "date")
                    if c in columns), None)
    if ts_name is None or "close" not in columns or "volume" not in columns:
        raise ValueError("candles need a timestamp (timestamp, ts, time or open_time), close and volume column")
    ts_col = table.column(ts_name)
    if pa.types.is_timestamp(ts_col.type):
        ts = ts_col.cast(pa.timestamp("ms", tz=ts_col.type.tz)).cast(pa.int64()).to_numpy()
    elif pa.types.is_integer(ts_col.type) or pa.types.is_floating(ts_col.type):
        raw = ts_col.to_numpy(zero_copy_only=False).astype(np.float64)
        scale = next(s for limit, s in ((1e11, 1e3), (1e14, 1.0), (1e17, 1e-3), (math.inf, 1e-6))
                     if np.nanmedian(raw) < limit)
        ts = np.rint(raw * scale).astype(np.int64)
    else:
        parsed = pc.strptime(ts_col.cast(pa.string()), format="%Y-%m-%dT%H:%M:%S", unit="ms", error_is_null=True)
        if parsed.null_count == len(parsed):
            parsed = pc.cast(ts_col.cast(pa.string()), pa.timestamp("ms", tz="UTC"))
        ts = parsed.cast(pa.int64()).to_numpy(zero_copy_only=False)
    close = table.column(columns["close"]).to_numpy(zero_copy_only=False).astype(np.float64)
    volume = table.column(columns["volume"]).to_numpy(zero_copy_only=False).astype(np.float64)
    order = np.argsort(ts, kind="stable")
    ts, close, volume = ts[order], close[order], volume[order]
    keep = np.r_[ts[1:] != ts[:-1], True] & np.isfinite(close) & (close > 0)
    return Candles(ts_ms=ts[keep], close=close[keep], volume=np.nan_to_num(volume[keep]))


def _acf(x: FloatArray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x)) if x.size > lag else float("nan")


def _hill(r: FloatArray) -> float:
    magnitudes = np.sort(np.abs(r[r != 0]))[::-1]
    k = max(int(HILL_SHARE * magnitudes.size), 10)
    return float(1.0 / np.mean(np.log(magnitudes[:k] / magnitudes[k])))


def return_facts(r: FloatArray, start_ms: npt.NDArray[np.int64] | None = None) -> dict[str, float]:
    """The realism table's return facts of one-minute log returns (the hour profile when times are given)."""
    a = np.abs(r)
    z = r - r.mean()
    ahead = np.convolve(a, np.ones(10), "valid")[1:]
    facts = {"realized_vol_annual": float(np.sqrt(np.mean(r**2) * MINUTES_PER_YEAR)),
             "acf_abs_r_lag_1": _acf(a, 1), "acf_abs_r_lag_10": _acf(a, 10), "acf_abs_r_lag_100": _acf(a, 100),
             "hill_tail_index": _hill(r), "excess_kurtosis": float(np.mean(z**4) / np.mean(z**2) ** 2 - 3.0),
             "acf_r_lag_1": _acf(r, 1),
             "leverage_corr_r_next_10_abs_r": float(np.corrcoef(r[:ahead.size], ahead)[0, 1])}
    if start_ms is not None:
        seen = np.bincount((start_ms // 3_600_000) % 24, minlength=24) > 0
        profile = hour_profile(start_ms, a)[seen]
        if profile.size > 1 and profile.min() > 0:  # hours the sample never reaches do not count
            facts["hour_profile_max_over_min"] = float(profile.max() / profile.min())
    return facts


def _file_facts(r: FloatArray, starts: npt.NDArray[np.int64], minutes: int) -> tuple[dict[str, float], int]:
    """The file's facts on windows as long as the model runs, so both columns measure the same thing, and the
    number of windows (1: the whole file)."""
    whole = return_facts(r, starts)
    if r.size < 2 * minutes:
        return whole, 1
    windows = [return_facts(r[i:i + minutes], starts[i:i + minutes]) for i in range(0, r.size - minutes + 1, minutes)]
    facts = {key: statistics.median(w[key] for w in windows) for key in whole if all(key in w for w in windows)}
    facts["realized_vol_annual"] = whole["realized_vol_annual"]
    return facts, len(windows)


def hour_profile(start_ms: npt.NDArray[np.int64], values: FloatArray) -> FloatArray:
    hour = (start_ms // 3_600_000) % 24
    sums = np.bincount(hour, weights=values, minlength=24)
    result: FloatArray = sums / np.maximum(np.bincount(hour, minlength=24), 1)
    return result


def _weekday_profile(start_ms: npt.NDArray[np.int64], values: FloatArray) -> FloatArray:
    weekday = (start_ms // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    sums = np.bincount(weekday, weights=values, minlength=7)
    result: FloatArray = sums / np.maximum(np.bincount(weekday, minlength=7), 1)
    return result


def _model_minutes(manifest: SimulationManifest, minutes: int, seed: int) -> FloatArray:
    """One-minute log returns of the generator's pre-pass (block-start mids) for `minutes` minutes."""
    process = CoarseProcess(derive_params(manifest.model_copy(update={"seed": seed})))
    segments = [process.next_segment().log_price for _ in range(math.ceil((minutes + 1) / 60))]
    r: FloatArray = np.diff(np.concatenate(segments))[:minutes]
    return r


def _model_facts(manifest: SimulationManifest, minutes: int, start_ms: int) -> dict[str, float]:
    """Median over FIT_SEEDS of the return facts of the model."""
    starts = start_ms + 60_000 * np.arange(1, minutes + 1, dtype=np.int64)
    runs = [return_facts(_model_minutes(manifest, minutes, seed), starts) for seed in FIT_SEEDS]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _memory_loss(model: dict[str, float], target: dict[str, float]) -> float:
    return (sum((model[f"acf_abs_r_lag_{k}"] - target[f"acf_abs_r_lag_{k}"]) ** 2 for k in (1, 10, 100)) / 0.05**2
            + ((model["hill_tail_index"] - target["hill_tail_index"]) / 0.4) ** 2)


def _best_on_grid(fitted: dict[str, Any], field: str, grid: tuple[float, ...], model: dict[str, float],
                  minutes: int, loss: Callable[[dict[str, float]], float]) -> tuple[float, dict[str, float]]:
    """The grid value of one manifest field whose model facts have the least loss (the first on ties), and
    those facts; `model` holds the facts at the field's current value, so that run is not repeated."""
    best: tuple[float, float, dict[str, float]] | None = None
    for value in grid:
        facts = model if value == fitted[field] else _model_facts(
            SimulationManifest.model_validate({**fitted, field: value}), minutes, fitted["start_time_ms"])
        score = loss(facts)
        if best is None or score < best[0]:
            best = (score, value, facts)
    assert best is not None
    return best[1], best[2]


def _volume_corr(manifest: SimulationManifest, minutes: int) -> tuple[float, float]:
    """corr(volume, |r|) and mean volume per minute of trade prints of a full-generator run."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from quantdesk.tools.market.pipeline import generate_table

    run = manifest.model_copy(update={"duration_seconds": minutes * 60, "seed": FIT_SEEDS[0]})
    table = generate_table(run)
    trades = table.filter(pc.equal(table.column("event_type").cast(pa.string()), "trade"))
    bar = (trades.column("timestamp_ms").to_numpy() - run.start_time_ms) // 60_000
    volume = np.bincount(bar, weights=trades.column("size").to_numpy(), minlength=minutes)[:minutes]
    close = np.full(minutes, np.nan)
    close[bar] = trades.column("price").to_numpy()
    index = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(minutes), 0))
    r = np.diff(np.log(close[index]))
    return float(np.corrcoef(volume[1:], np.abs(r))[0, 1]), float(volume.mean())


BANDS: dict[str, tuple[str, float]] = {
    # fact: (kind, tolerance): "abs" = target +- tolerance, "rel" = target x (1 +- tolerance)
    "realized_vol_annual": ("rel", 0.15), "acf_abs_r_lag_1": ("abs", 0.08), "acf_abs_r_lag_10": ("abs", 0.08),
    "acf_abs_r_lag_100": ("abs", 0.06), "hill_tail_index": ("abs", 0.6), "excess_kurtosis": ("rel", 0.8),
    "acf_r_lag_1": ("abs", 0.04), "leverage_corr_r_next_10_abs_r": ("abs", 0.04),
    "hour_profile_max_over_min": ("rel", 0.35), "corr_volume_abs_r": ("abs", 0.12),
    "volume_per_minute": ("rel", 0.3),
}


NOISY = {"acf_r_lag_1", "leverage_corr_r_next_10_abs_r", "corr_volume_abs_r"}
"""Correlations whose sampling noise on a short file exceeds their band: widened to 4 / sqrt(minutes)
(about two standard errors of a correlation of overlapping sums)."""


def _compare(target: dict[str, float], model: dict[str, float], minutes: int) -> list[dict[str, Any]]:
    rows = []
    for name, (kind, tolerance) in BANDS.items():
        if name not in target or name not in model:
            continue
        value = target[name]
        width = tolerance * abs(value) if kind == "rel" else tolerance
        if name in NOISY:
            width = max(width, 4.0 / math.sqrt(minutes))
        low, high = value - width, value + width
        rows.append({"fact": name, "data": value, "model": model[name], "band_low": low, "band_high": high,
                     "passed": bool(low <= model[name] <= high)})
    return rows


def calibrate(candles: Candles, base: SimulationManifest | None = None) -> dict[str, Any]:
    """The fitted manifest, the facts of the data and of the fitted model side by side with bands, and notes."""
    ts, r_all = candles.ts_ms, candles.returns
    contiguous = np.diff(ts) == 60_000
    r, starts, volume = r_all[contiguous], ts[1:][contiguous], candles.volume[1:][contiguous]
    if r.size < MIN_MINUTES:
        raise ValueError(f"need at least {MIN_MINUTES} contiguous one-minute candles, got {r.size}")
    base = base or SimulationManifest()
    minutes = min(r.size, MAX_FIT_MINUTES)
    target, windows = _file_facts(r, starts, minutes)
    days = r.size / 1440
    notes = [f"{r.size} one-minute returns over {days:.1f} days; model runs of {minutes} minutes, seeds {FIT_SEEDS}"]
    if windows > 1:
        notes.append(f"file facts are medians over its {windows} windows of {minutes} minutes (the model's "
                     "run length; memory measured on a longer sample reads higher), its volatility over the whole file")

    # seasonality: hour-of-day |r| (and volume), shrunk toward flat by its sampling noise
    a = np.abs(r)
    hours = hour_profile(starts, a)
    noise = float(np.std(a) / np.mean(a)) / math.sqrt(r.size / 24)  # relative sd of an hour's mean
    signal = float(np.var(hours / hours.mean()))
    shrink = signal / (signal + noise**2) if signal > 0 else 0.0
    hour_rel = 1.0 + shrink * (hours / hours.mean() - 1.0)
    profile = [float(v) for v in hour_rel]
    if days >= 21:
        weekdays = _weekday_profile(starts, a)
        week_rel = 1.0 + 0.5 * (weekdays / weekdays.mean() - 1.0)  # four samples a weekday: halfway to flat
        profile = [float(h * d) for d in week_rel for h in hour_rel]
        notes.append("weekday profile fitted (shrunk halfway toward flat)")
    volume_hours = hour_profile(starts, volume)
    elasticity = 1.0
    if volume_hours.min() > 0:
        x, y = np.log(hour_rel), np.log(volume_hours / volume_hours.mean())
        elasticity = float(np.clip(np.dot(x - x.mean(), y - y.mean()) / max(np.dot(x - x.mean(), x - x.mean()),
                                                                            1e-12), 0.0, 4.0))
    # jumps: minutes beyond JUMP_SIGMAS of a local (one hour, centred) robust sigma
    local = np.sqrt(np.convolve(np.minimum(r**2, np.quantile(r**2, 0.99)), np.ones(61) / 61, "same"))
    jumps = r[np.abs(r) > JUMP_SIGMAS * np.maximum(local, 1e-12)]
    jump_rate = float(jumps.size / (r.size / 60))
    jump_std_bps = float(np.sqrt(np.mean(jumps**2)) * 1e4) if jumps.size else 0.0
    price = float(candles.close[-1])
    tick = base.tick_size if base.tick_size < price / 1000 else 10 ** math.floor(math.log10(price / 1e5))
    # candles carry no quotes: keep the base venue's spread in ticks at the file's price
    spread_ticks = base.base_spread_bps * 1e-4 * base.initial_price / base.tick_size
    fitted: dict[str, Any] = {
        **base.canonical(), "initial_price": price, "tick_size": tick,
        "base_spread_bps": min(max(spread_ticks * tick / price * 1e4, 1e-6), 10_000.0),
        "volatility_annual": float(min(max(target["realized_vol_annual"], 0.01), 5.0)),
        "volatility_profile": profile, "trade_rate_season_elasticity": elasticity, "seasonality": True,
        "jump_model": "merton" if jumps.size else "none", "jump_intensity_per_hour": min(jump_rate, 10.0),
        "jump_mean_bps": 0.0, "jump_std_bps": min(jump_std_bps, 5000.0),
        "start_time_ms": int(starts[0] - 60_000), "duration_seconds": minutes * 60,
    }
    if fitted["jump_intensity_per_hour"] * 24 * 365 * (fitted["jump_std_bps"] * 1e-4) ** 2 > \
            0.5 * fitted["volatility_annual"] ** 2:
        fitted["jump_intensity_per_hour"] = 0.5 * fitted["volatility_annual"] ** 2 / (
            24 * 365 * (fitted["jump_std_bps"] * 1e-4) ** 2)
        notes.append("jump intensity capped so jumps carry at most half the variance")
    notes.append(f"hour profile shrunk {1 - shrink:.0%} toward flat; trade rate follows it to the power "
                 f"{elasticity:.2f}; {jumps.size} jump minutes beyond {JUMP_SIGMAS:g} local sigmas")

    # memory and tails: scale the fast (first two) and slow (last two) factor sds on a small grid
    base_sd = np.asarray(base.vol_factor_stdevs)
    split = max(1, len(base_sd) // 2)
    best: tuple[float, float, float, dict[str, float]] | None = None
    for fast in FACTOR_SCALES:
        for slow in FACTOR_SCALES:
            sds = np.concatenate([base_sd[:split] * fast, base_sd[split:] * slow]).clip(0.0, 3.0)
            candidate = SimulationManifest.model_validate({**fitted, "vol_factor_stdevs": sds.tolist()})
            model = _model_facts(candidate, minutes, fitted["start_time_ms"])
            loss = _memory_loss(model, target)
            if best is None or loss < best[0]:
                best = (loss, fast, slow, model)
    assert best is not None
    _, fast, slow, model = best
    fitted["vol_factor_stdevs"] = np.concatenate([base_sd[:split] * fast, base_sd[split:] * slow]).clip(
        0.0, 3.0).tolist()
    notes.append(f"volatility factor sds scaled x{fast:g} (fast) and x{slow:g} (slow)")
    dof, model = _best_on_grid(fitted, "return_tail_dof", TAIL_DOF_GRID, model, minutes,
                               lambda facts: _memory_loss(facts, target))
    fitted["return_tail_dof"] = dof
    notes.append(f"minute shocks Student-t with {dof:g} degrees of freedom")
    # leverage: the sign and size of corr(r_t, next 10 |r|), by the fastest factor's link to return shocks
    rho, model = _best_on_grid(fitted, "leverage_correlation", LEVERAGE_GRID, model, minutes, lambda facts: abs(
        facts["leverage_corr_r_next_10_abs_r"] - target["leverage_corr_r_next_10_abs_r"]))
    fitted["leverage_correlation"] = rho
    # level: the model's realized volatility over runs this long, matched to the file's (one multiplicative step)
    if model["realized_vol_annual"] > 0:
        scale = target["realized_vol_annual"] / model["realized_vol_annual"]
        fitted["volatility_annual"] = float(min(max(fitted["volatility_annual"] * scale, 0.01), 5.0))
        model = _model_facts(SimulationManifest.model_validate(fitted), minutes, fitted["start_time_ms"])

    # volume: level from the mean per minute, link to |r| by volume_shock_weight on a day of full generation
    target["volume_per_minute"] = float(volume.mean())
    target["corr_volume_abs_r"] = float(np.corrcoef(volume, a)[0, 1])
    probe_minutes = min(minutes, 1440)
    link: tuple[float, float, float, float] | None = None
    for weight in (0.0, 0.1, 0.25, 0.5):
        candidate = SimulationManifest.model_validate({**fitted, "volume_shock_weight": weight})
        corr, per_minute = _volume_corr(candidate, probe_minutes)
        gap = abs(corr - target["corr_volume_abs_r"])
        if link is None or gap < link[0]:
            link = (gap, weight, corr, per_minute)
    assert link is not None
    _, weight, corr, per_minute = link
    size_scale = target["volume_per_minute"] / per_minute if per_minute > 0 else 1.0
    fitted["volume_shock_weight"] = weight
    fitted["trade_size_median"] = max(float(base.trade_size_median * size_scale), base.lot_size)
    fitted["depth_level_size"] = max(float(base.depth_level_size * size_scale), base.lot_size)
    model["corr_volume_abs_r"] = corr
    model["volume_per_minute"] = per_minute * size_scale
    manifest = SimulationManifest.model_validate(fitted)
    return {"manifest": manifest.canonical(), "facts": _compare(target, model, int(r.size)), "notes": notes,
            "minutes": int(r.size)}
