"""Signal metrics pinned on constructed series: Spearman IC with a known value, non-overlapping sampling, IC
mean/std/IR/t over blocks, hit rate with its Wilson interval, and the same numbers through the service reading
signals and cycle prices from a real store."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantdesk.tools.signals import store
from quantdesk.tools.signals.evaluation import horizon_stats, non_overlapping, ranks, spearman, wilson
from quantdesk.tools.signals.model import Signal

T0 = 1_735_689_600_000
MINUTE = 60_000


def test_spearman_is_one_minus_six_sum_d_squared_over_n_n2_minus_1_without_ties():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0, 10.0, 9.0]  # every pair swapped: d = +-1 for each of 10
    n = 10
    assert spearman(x, y) == pytest.approx(1 - 6 * n / (n * (n * n - 1)), abs=1e-12)  # 0.93939...
    assert spearman(x, x) == pytest.approx(1.0)
    assert spearman(x, [-v for v in x]) == pytest.approx(-1.0)
    assert spearman(x, [1.0] * 10) is None  # a constant side has no rank correlation
    assert list(ranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]  # ties take their average rank


def test_ic_on_a_series_with_a_known_rank_correlation_and_its_block_statistics():
    # scores are the forward returns in blocks of 10 with one adjacent swap per block: each block's IC is 1 - 6*2/990
    rng = np.random.default_rng(7)
    returns = rng.normal(0, 0.01, 100)
    scores = returns.copy()
    expected_block = 1 - 6 * 2 / (10 * 99)
    for b in range(10):
        block = np.argsort(returns[b * 10:(b + 1) * 10]) + b * 10
        i, j = block[4], block[5]  # the 5th and 6th smallest swap their scores: two ranks move by one
        scores[i], scores[j] = scores[j], scores[i]
    stats = horizon_stats(scores, returns, horizon=1, block=10)
    assert stats.blocks == 10
    assert stats.ic_mean == pytest.approx(expected_block, abs=1e-12)
    assert stats.ic_std == pytest.approx(0.0, abs=1e-12) and stats.ic_ir is None  # constant block IC
    assert stats.ic is not None and 0.98 < stats.ic < 1.0  # pooled over all 100: a few more rank moves
    assert stats.hit_rate == 1.0 and stats.scored == 100  # same sign everywhere


def test_t_stat_is_mean_over_std_error_of_block_ics_and_hit_rate_has_a_wilson_interval():
    scores = [1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0, 1.0, 2.0, 3.0, 4.0]
    returns = [1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -4.0, -3.0, 4.0, 3.0, 2.0, 1.0]
    stats = horizon_stats(scores, returns, horizon=1, block=4)
    ics = [1.0, 0.8, -1.0]
    mean, std = float(np.mean(ics)), float(np.std(ics, ddof=1))
    assert stats.ic_mean == pytest.approx(mean) and stats.ic_std == pytest.approx(std)
    assert stats.t_stat == pytest.approx(mean / (std / math.sqrt(3)))
    assert stats.ic_ir == pytest.approx(mean / std)
    low, high = wilson(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson(0, 0) == (None, None)


def test_overlapping_pairs_are_dropped():
    times = [0, 60, 120, 180, 240, 300, 360]
    assert non_overlapping(times, 180) == [0, 3, 6]
    assert non_overlapping(times, 60) == list(range(7))


def test_the_service_pins_ic_on_stored_signals_and_cycle_prices(strategies, plant):
    desk, sig = strategies.open(replay=plant(lambda s, m: 100.0, 5))
    # a price path and signals whose score is exactly the next cycle's return: IC(1) = 1, hit rate 1
    rng = np.random.default_rng(3)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    with desk.state.transaction() as conn:
        for i, p in enumerate(prices):
            store.put_prices(conn, T0 + i * MINUTE, {"BTC-USDT": float(p)})
        made = []
        for i in range(199):
            r = prices[i + 1] / prices[i] - 1
            made.append(Signal(f"sig_t{i:05d}", "BTC-USDT", "momentum", "momentum", "long" if r > 0 else "short",
                               min(1.0, abs(r) * 10), 1.0, T0 + i * MINUTE, 1800, float(prices[i]), {}))
        store.put_signals(conn, made)
    out = sig.signal_metrics(signal_type="momentum", symbol="BTC-USDT", block=20)
    (row,) = out["metrics"]
    h1, h5, h10 = row["horizons"]
    assert h1["ic"] == pytest.approx(1.0) and h1["hit_rate"] == 1.0 and h1["n"] == 199
    assert h1["hit_rate_ci_low"] == pytest.approx(wilson(199, 199)[0])
    assert h5["n"] == 39 and h10["n"] == 19  # one pair every 5 (10) cycles, the last ones lacking a return
    assert h10["blocks"] == 0 and h10["t_stat"] is None
    with pytest.raises(Exception, match="unknown signal type"):
        sig.signal_metrics(signal_type="astrology", symbol=None, block=20)
