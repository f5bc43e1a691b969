"""Hard and soft caps (spec §5.1 caps, §5.4 soft cap table)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from quantdesk.tools.funding.models import FundingRegimeResult
from quantdesk.tools.funding.rates import apply_cap, soft_cap
from quantdesk.tools.venues.catalog import funding_parameters

Simulate = Callable[..., FundingRegimeResult]
PERPETUALS = ["binance", "bybit", "okx", "hyperliquid", "dydx", "sgx"]

# spec §5.4, c = 0.3 %: raw F, hard clamp, soft (tanh), all in percent.
SOFT_CAP_TABLE = [
    (0.01, 0.01, 0.0100),
    (0.15, 0.15, 0.1386),
    (0.30, 0.30, 0.2285),
    (0.60, 0.30, 0.2892),
    (2.00, 0.30, 0.3000),
]


@pytest.mark.parametrize(("raw_pct", "hard_pct", "soft_pct"), SOFT_CAP_TABLE)
def test_the_soft_cap_reproduces_the_spec_table(raw_pct: float, hard_pct: float, soft_pct: float) -> None:
    raw, cap = raw_pct / 100, 0.003
    assert round(soft_cap(raw, cap) * 100, 4) == pytest.approx(soft_pct)
    assert apply_cap(raw, cap, soft=False)[0] * 100 == pytest.approx(hard_pct)
    assert soft_cap(-raw, cap) == -soft_cap(raw, cap)


@pytest.mark.parametrize(("raw_pct", "hard_pct", "soft_pct"), SOFT_CAP_TABLE)
def test_binance_through_the_engine_reproduces_the_spec_table(
    simulate: Simulate, raw_pct: float, hard_pct: float, soft_pct: float
) -> None:
    # Binance's cap is the table's 0.3 %; outside the +/-0.05 % band F = P - 0.05 %, inside it F = I = 0.01 %.
    premium = 0.0001 if raw_pct == 0.01 else raw_pct / 100 + 0.0005
    mark = 50_000.0 * (1 + premium)
    hard = simulate("binance", mark_price=mark, num_periods=1)
    soft = simulate("binance", mark_price=mark, num_periods=1, use_soft_cap=True)
    assert hard.periods[0].raw_funding_rate * 100 == pytest.approx(raw_pct, rel=1e-9)
    assert hard.periods[0].funding_rate * 100 == pytest.approx(hard_pct, rel=1e-9)
    assert round(soft.periods[0].funding_rate * 100, 4) == pytest.approx(soft_pct)
    assert soft.summary.cap_mode == "soft"
    assert hard.summary.cap_mode == "hard"


@pytest.mark.parametrize("exchange", PERPETUALS)
@pytest.mark.parametrize("direction", [1, -1])
def test_the_hard_cap_holds_an_extreme_premium_at_the_venue_cap(
    simulate: Simulate, exchange: str, direction: int
) -> None:
    result = simulate(exchange, mark_price=50_000.0 * (1 + direction * 0.45), num_periods=2)
    cap = funding_parameters(exchange).cap_per_period
    assert cap is not None
    assert result.summary.cap_rate == cap
    assert result.summary.cap_hits == 2
    for period in result.periods:
        assert period.cap_hit
        assert abs(period.raw_funding_rate) > cap
        assert period.funding_rate == pytest.approx(direction * cap, rel=1e-12)


@pytest.mark.parametrize("exchange", PERPETUALS)
def test_the_soft_cap_saturates_below_the_venue_cap(simulate: Simulate, exchange: str) -> None:
    result = simulate(exchange, mark_price=50_000.0 * 1.45, num_periods=1, use_soft_cap=True)
    cap = funding_parameters(exchange).cap_per_period
    assert cap is not None
    period = result.periods[0]
    assert period.cap_hit
    assert period.funding_rate == pytest.approx(soft_cap(period.raw_funding_rate, cap), rel=1e-12)
    assert 0.75 * cap < period.funding_rate <= cap
    assert result.summary.cap_hits == 1


def test_hyperliquid_caps_the_hourly_rate_at_four_percent(simulate: Simulate) -> None:
    result = simulate("hyperliquid", mark_price=70_000.0, num_periods=1)
    assert result.periods[0].funding_rate == pytest.approx(0.04)


def test_dydx_caps_the_eight_hour_rate_at_six_times_the_margin_spread(simulate: Simulate) -> None:
    result = simulate("dydx", mark_price=72_000.0, num_periods=1)
    # |R| <= 6 x (2 % - 1.2 %) = 4.8 % per 8 h, accrued at R/8 per hour.
    assert result.periods[0].funding_rate == pytest.approx(0.048 / 8)


def test_a_soft_cap_on_cme_is_reported_as_having_no_effect(simulate: Simulate) -> None:
    result = simulate("cme", use_soft_cap=True, num_periods=1, days_to_expiry=10.0)
    assert result.summary.cap_mode == "none"
    assert result.summary.cap_rate is None
    assert any("no effect" in caveat for caveat in result.summary.caveats)
