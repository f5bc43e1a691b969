"""The worked example of spec §5.2: spot 50,000, mark 50,100 (0.2 % premium held), 1 BTC long."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from quantdesk.tools.funding.models import FundingRegimeResult

Simulate = Callable[..., FundingRegimeResult]


@pytest.mark.parametrize(
    ("exchange", "rate", "long_pays", "interval_hours", "reference_price"),
    [
        ("binance", 0.0015, 75.15, 8, 50_100.0),
        ("bybit", 0.0015, 75.15, 8, 50_100.0),
        ("okx", 0.0020, 100.20, 8, 50_100.0),
        ("hyperliquid", 0.0001875, 9.375, 1, 50_000.0),
        ("dydx", 0.00025, 12.50, 1, 50_000.0),
        # SGX: the labelled proposal (I = 3 bps, band 5 bps, 8 h, mark) lands on Binance's numbers.
        ("sgx", 0.0015, 75.15, 8, 50_100.0),
    ],
)
def test_each_perpetual_venue_reproduces_the_worked_example(
    simulate: Simulate, exchange: str, rate: float, long_pays: float, interval_hours: int, reference_price: float
) -> None:
    result = simulate(exchange)
    for period in result.periods:
        assert period.premium == pytest.approx(0.002, rel=1e-12)
        assert period.funding_rate == pytest.approx(rate, rel=1e-9)
        assert period.funding_rate_bps == pytest.approx(rate * 1e4, rel=1e-9)
        assert period.reference_price == pytest.approx(reference_price, rel=1e-12)
        assert period.payment == pytest.approx(-long_pays, rel=1e-9)
        assert period.pnl == period.payment
        assert period.next_funding_time - period.start_ts_ms == interval_hours * 3_600_000
        assert not period.cap_hit
    assert result.summary.total_payment == pytest.approx(-3 * long_pays, rel=1e-9)
    assert result.summary.data_source == "simulated"


def test_hyperliquid_pays_about_the_binance_amount_over_eight_hours(simulate: Simulate) -> None:
    result = simulate("hyperliquid", num_periods=8)
    assert result.summary.total_payment == pytest.approx(-75.0, rel=1e-9)


def test_a_short_receives_what_a_long_pays(simulate: Simulate) -> None:
    long = simulate("binance")
    short = simulate("binance", position_size=-1.0)
    assert short.periods[0].payment == pytest.approx(75.15, rel=1e-9)
    assert short.summary.total_payment == pytest.approx(-long.summary.total_payment)


def test_annualized_rate_is_the_period_rate_times_periods_per_year(simulate: Simulate) -> None:
    result = simulate("binance")
    assert result.periods[0].funding_rate_annualized == pytest.approx(0.0015 * 3 * 365)
    assert result.annualized_rate == pytest.approx(0.0015 * 3 * 365)


def test_cme_is_a_labelled_carry_model_that_pays_the_whole_basis_by_expiry(simulate: Simulate) -> None:
    result = simulate("cme", num_periods=30, days_to_expiry=30.0)
    summary = result.summary
    assert summary.model == "basis_carry"
    assert summary.cap_mode == "none"
    assert any("no funding" in caveat for caveat in summary.caveats)
    first = result.periods[0]
    # basis 0.2 % over 30 days: carry 0.2 % x 365/30 a year, 0.2 %/30 a day, paid on spot 50,000.
    assert first.funding_rate == pytest.approx(0.002 / 30, rel=1e-9)
    assert first.funding_rate_annualized == pytest.approx(0.002 * 365 / 30, rel=1e-9)
    assert first.payment == pytest.approx(-50_000 * 0.002 / 30, rel=1e-9)
    assert summary.total_payment == pytest.approx(-100.0, rel=1e-9)
    # The futures price converges to spot at expiry.
    assert result.periods[-1].perp_price == pytest.approx(50_000.0, rel=1e-12)
    assert result.periods[0].perp_price > result.periods[-1].perp_price


def test_aleatoric_scalars_summarise_the_periods(simulate: Simulate) -> None:
    result = simulate("okx")
    assert result.funding_rate_bps == pytest.approx(20.0)
    assert result.premium_bps == pytest.approx(20.0)
    assert result.settlement_pnl == result.summary.total_payment
