"""The OU premium process and the venue averaging rules."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from quantdesk.tools.funding.models import FundingRegimeResult
from quantdesk.tools.funding.premium import PremiumDynamics, PremiumProcess, average_premium

Simulate = Callable[..., FundingRegimeResult]


def test_simulated_premia_average_to_the_long_run_mean(simulate: Simulate) -> None:
    result = simulate(
        "hyperliquid",
        num_periods=1000,
        seed=3,
        premium_long_run_mean_bps=5.0,
        premium_volatility_bps=5.0,
        premium_mean_reversion_per_hour=1.5,
    )
    premia = np.array([p.premium_bps for p in result.periods])
    assert result.summary.premium_long_run_mean_bps == pytest.approx(5.0)
    assert premia[:3].mean() > 8.0  # starts at 20 bps and reverts
    assert premia[24:].mean() == pytest.approx(5.0, abs=0.5)


def test_the_stationary_spread_matches_the_ou_formula() -> None:
    kappa, sigma = 2.0, 0.001
    process = PremiumProcess(PremiumDynamics(0.0, 0.0, kappa, sigma), step_seconds=60.0, seed=8)
    path = process.advance(400_000)
    assert path.std() == pytest.approx(sigma / math.sqrt(2 * kappa), rel=0.05)
    assert path.mean() == pytest.approx(0.0, abs=3 * sigma / math.sqrt(2 * kappa) / 10)


def test_without_noise_the_premium_decays_exactly_to_its_mean() -> None:
    process = PremiumProcess(PremiumDynamics(0.002, 0.0005, 1.5, 0.0), step_seconds=5.0, seed=0)
    process.advance(720)  # one hour of 5 s steps
    assert process.level == pytest.approx(0.0005 + 0.0015 * math.exp(-1.5), rel=1e-12)


def test_without_noise_or_reversion_pressure_the_premium_holds() -> None:
    process = PremiumProcess(PremiumDynamics(0.002, 0.002, 1.5, 0.0), step_seconds=5.0, seed=0)
    assert np.all(process.advance(5760) == 0.002)


def test_the_process_is_continuous_across_periods() -> None:
    one = PremiumProcess(PremiumDynamics(0.001, 0.0, 1.5, 0.0002), step_seconds=60.0, seed=4)
    split = np.concatenate([one.advance(480), one.advance(480)])
    two = PremiumProcess(PremiumDynamics(0.001, 0.0, 1.5, 0.0002), step_seconds=60.0, seed=4)
    np.testing.assert_allclose(split, two.advance(960), rtol=1e-12, atol=1e-15)


def test_binance_and_bybit_weight_later_samples_linearly() -> None:
    samples = np.array([1.0, 2.0, 3.0])
    assert average_premium(samples, "linear_twap") == pytest.approx((1 + 4 + 9) / 6)
    assert average_premium(samples, "mean") == pytest.approx(2.0)


def test_the_dydx_trim_removes_sorted_tails_before_the_mean() -> None:
    samples = np.array([100.0, 1, 2, 3, 4, 5, 6, 7, 8, -50])
    # 10 samples x 2 x 10 % = 2 removed: the lowest and the highest.
    assert average_premium(samples, "trimmed_mean", 0.10) == pytest.approx(4.5)
    assert average_premium(samples, "trimmed_mean", 0.0) == pytest.approx(samples.mean())


@pytest.mark.parametrize(("exchange", "samples", "seconds"), [
    ("binance", 5760, 5.0), ("bybit", 480, 60.0), ("okx", 480, 60.0), ("hyperliquid", 720, 5.0), ("dydx", 60, 60.0),
])
def test_each_venue_samples_at_its_cadence(simulate: Simulate, exchange: str, samples: int, seconds: float) -> None:
    summary = simulate(exchange, num_periods=1).summary
    assert summary.samples_per_period == samples
    assert summary.sample_interval_seconds == seconds
