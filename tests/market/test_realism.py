"""Realism against real BTC minute data (issue 12), on data the generator makes here: bands, seasonality, volume.

The bands are those of real BTC weeks (tools/market/stylized.py states them); the real candle file
itself is a development reference (bench/realism.py), never a test input.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from quantdesk.schemas.manifest import BTC_HOUR_VOLATILITY, SimulationManifest
from quantdesk.tools.market.coarse import CoarseProcess
from quantdesk.tools.market.params import derive_params
from quantdesk.tools.market.pipeline import generate_table
from quantdesk.tools.market.stylized import describe

FloatArray = npt.NDArray[np.float64]
MINUTES_PER_YEAR = 365 * 1440
START_MS = 1_735_689_600_000  # the default start, 2025-01-01 00:00 UTC


def _minutes(seed: int, days: float, **fields: object) -> tuple[FloatArray, FloatArray]:
    """One-minute log returns of the pre-pass mid and the expected trade arrivals of each minute."""
    process = CoarseProcess(derive_params(SimulationManifest.model_validate({"seed": seed, **fields})))
    segments = [process.next_segment() for _ in range(math.ceil(days * 24))]
    log_price = np.concatenate([s.log_price for s in segments])
    rate = np.concatenate([np.exp(s.arrival_log_rate).sum(axis=1) for s in segments])
    return np.diff(log_price), rate[1:]


def _acf(x: FloatArray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def _hill(r: FloatArray, share: float = 0.025) -> float:
    magnitudes = np.sort(np.abs(r))[::-1]
    k = int(share * magnitudes.size)
    return float(1.0 / np.mean(np.log(magnitudes[:k] / magnitudes[k])))


def _hour_profile(r: FloatArray) -> FloatArray:
    hour = (np.arange(1, r.size + 1) // 60) % 24  # r[i] is the move into minute i + 1 (START_MS is 00:00)
    return np.bincount(hour, weights=np.abs(r), minlength=24) / np.bincount(hour, minlength=24)


def test_a_week_of_the_default_market_has_the_memory_and_tails_of_real_btc_weeks() -> None:
    # median over three seeds, inside the real weeks' ranges widened for one-week noise (stylized.py bands)
    facts: dict[str, list[float]] = {"acf1": [], "acf10": [], "acf100": [], "hill": [], "kurtosis": []}
    for seed in (1, 2, 3):
        r, _ = _minutes(seed, 7)
        a = np.abs(r)
        facts["acf1"].append(_acf(a, 1))
        facts["acf10"].append(_acf(a, 10))
        facts["acf100"].append(_acf(a, 100))
        facts["hill"].append(_hill(r))
        z = r - r.mean()
        facts["kurtosis"].append(float(np.mean(z**4) / np.mean(z**2) ** 2 - 3.0))
    median = {name: statistics.median(values) for name, values in facts.items()}
    assert 0.18 <= median["acf1"] <= 0.40, median
    assert 0.12 <= median["acf10"] <= 0.32, median
    assert 0.05 <= median["acf100"] <= 0.22, median
    assert 2.7 <= median["hill"] <= 4.0, median
    assert 3.5 <= median["kurtosis"] <= 30.0, median
    # the memory is persistent variance, not i.i.d. mixing: ACF at 10 minutes keeps most of lag 1's
    assert median["acf10"] > 0.5 * median["acf1"]


def test_volatility_annual_is_what_runs_of_one_and_seven_days_realize_on_the_median_of_seeds() -> None:
    configured = SimulationManifest().volatility_annual
    for days, seeds in ((1, range(40, 81)), (7, range(70, 85))):
        realized = [math.sqrt(np.mean(_minutes(seed, days)[0] ** 2) * MINUTES_PER_YEAR) for seed in seeds]
        assert abs(statistics.median(realized) / configured - 1.0) < 0.10, (days, realized)


def test_the_hour_of_day_profile_is_recovered_and_switches_off() -> None:
    pooled_on = np.zeros(24)
    pooled_off = np.zeros(24)
    weekly = []
    for seed in (5, 6):
        r_on, rate_on = _minutes(seed, 7)
        r_off, rate_off = _minutes(seed, 7, seasonality=False)
        weekly.append(_hour_profile(r_on))
        pooled_on += _hour_profile(r_on)
        pooled_off += _hour_profile(r_off)
    target = np.asarray(BTC_HOUR_VOLATILITY)
    assert np.corrcoef(pooled_on, target)[0, 1] > 0.8
    assert np.corrcoef(weekly[0], weekly[1])[0, 1] > 0.5  # week after week, as real weeks (0.7-0.85)
    assert 1.8 < pooled_on.max() / pooled_on.min() < 3.5  # real BTC weeks: 2.5 [2.1, 2.7]
    assert abs(np.corrcoef(pooled_off, target)[0, 1]) < 0.5
    assert pooled_off.max() / pooled_off.min() < 1.6
    # trade arrivals follow the profile too (to the power trade_rate_season_elasticity), and not when off
    hours = (np.arange(1, rate_on.size + 1) // 60) % 24
    rate_profile = np.bincount(hours, weights=rate_on, minlength=24)
    assert np.corrcoef(np.log(rate_profile), np.log(target))[0, 1] > 0.8
    assert np.ptp(np.log(np.bincount(hours, weights=rate_off, minlength=24))) < 0.6 * np.ptp(np.log(rate_profile))


def _bars(table: pa.Table, start_ms: int, n: int) -> tuple[FloatArray, FloatArray]:
    trades = table.filter(pc.equal(table.column("event_type").cast(pa.string()), "trade"))
    bar = (trades.column("timestamp_ms").to_numpy() - start_ms) // 60_000
    volume = np.bincount(bar, weights=trades.column("size").to_numpy(), minlength=n)[:n]
    close = np.full(n, np.nan)
    close[bar] = trades.column("price").to_numpy()  # rows are in time order: the last write is the close
    index = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(n), 0))
    return np.diff(np.log(close[index])), volume[1:]


def test_volume_moves_with_the_minutes_own_move() -> None:
    # twelve hours of the full generator (trade prints, not the pre-pass)
    linked = SimulationManifest(duration_seconds=43_200, seed=11)
    r, volume = _bars(generate_table(linked), linked.start_time_ms, 720)
    corr_linked = float(np.corrcoef(volume, np.abs(r))[0, 1])
    assert 0.4 < corr_linked < 0.8  # real BTC minutes: 0.54 [0.50, 0.66]
    # volatility alone (no link to the minute's own shock, no seasonality) leaves much less of it
    blind = SimulationManifest(duration_seconds=43_200, seed=11, volume_shock_weight=0.0, seasonality=False)
    r, volume = _bars(generate_table(blind), blind.start_time_ms, 720)
    assert float(np.corrcoef(volume, np.abs(r))[0, 1]) < corr_linked - 0.1


def _signed_flow(table: pa.Table, start_ms: int, n: int) -> FloatArray:
    trades = table.filter(pc.equal(table.column("event_type").cast(pa.string()), "trade"))
    bar = (trades.column("timestamp_ms").to_numpy() - start_ms) // 60_000
    sign = np.where(trades.column("side").cast(pa.string()).to_numpy(zero_copy_only=False) == "buy", 1.0, -1.0)
    flow: FloatArray = np.bincount(bar, weights=sign * trades.column("size").to_numpy(), minlength=n)[:n]
    return flow


def test_signed_order_flow_moves_with_the_price() -> None:
    manifest = SimulationManifest(duration_seconds=21_600, seed=13)
    table = generate_table(manifest)
    r, _ = _bars(table, manifest.start_time_ms, 360)
    flow = _signed_flow(table, manifest.start_time_ms, 360)[1:]
    assert float(np.corrcoef(flow, r)[0, 1]) > 0.3  # buyers dominate the minutes that rise
    neutral = SimulationManifest(duration_seconds=21_600, seed=13, order_flow_impact=0.0)
    table = generate_table(neutral)
    r, _ = _bars(table, neutral.start_time_ms, 360)
    assert abs(float(np.corrcoef(_signed_flow(table, neutral.start_time_ms, 360)[1:], r)[0, 1])) < 0.15


def test_the_default_venue_is_liquid_and_the_thin_preset_is_thin() -> None:
    manifest = SimulationManifest(duration_seconds=1800, seed=2)
    report = describe(generate_table(manifest), manifest)
    tick_bps = manifest.tick_size / manifest.initial_price * 1e4
    assert report["spread"]["median_bps"] < 1.5 * tick_bps  # one tick
    touch = report["depth"]["mean_size_by_level"]["bids"][0]
    assert 1.0 < touch < 4.0  # about 2 BTC at the touch
    per_minute = report["trades"]["per_second_mean"] * report["trades"]["mean_size"] * 60
    assert 15.0 < per_minute < 80.0  # real BTC perps: 25-56 BTC a minute


@pytest.mark.slow
def test_a_year_of_the_default_market_keeps_the_real_memory_profile() -> None:
    r, _ = _minutes(300, 365)
    a = np.abs(r)
    assert 0.18 <= _acf(a, 1) <= 0.40 and 0.12 <= _acf(a, 10) <= 0.32 and 0.05 <= _acf(a, 100) <= 0.22
    assert -0.03 <= _acf(a, 1000) <= 0.10
