"""Properties over random valid inputs: caps hold, payments add up."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from quantdesk.tools.funding.engine import simulate_funding_regime
from quantdesk.tools.funding.models import FundingRegimeRequest
from quantdesk.tools.venues.catalog import funding_parameters

requests = st.builds(
    FundingRegimeRequest,
    exchange=st.sampled_from(["binance", "bybit", "okx", "hyperliquid", "dydx", "sgx", "cme"]),
    spot_price=st.floats(min_value=0.01, max_value=1e6),
    mark_price=st.just(1.0),  # replaced by spot x (1 + premium) below
    position_size=st.floats(min_value=-1e4, max_value=1e4),
    num_periods=st.integers(min_value=1, max_value=4),
    use_soft_cap=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**53 - 1),
    start_ts_ms=st.integers(min_value=0, max_value=4_000_000_000_000),
    premium_mean_reversion_per_hour=st.floats(min_value=0.0, max_value=100.0),
    premium_long_run_mean_bps=st.none() | st.floats(min_value=-5000.0, max_value=5000.0),
    premium_volatility_bps=st.floats(min_value=0.0, max_value=1000.0),
    jump_intensity_per_hour=st.floats(min_value=0.0, max_value=60.0),
    jump_mean_bps=st.floats(min_value=-5000.0, max_value=5000.0),
    jump_std_bps=st.floats(min_value=0.0, max_value=5000.0),
)


@settings(max_examples=150, deadline=None)
@given(request=requests, premium=st.floats(min_value=-0.5, max_value=0.5))
def test_rates_never_exceed_the_venue_cap_and_payments_add_up(request: FundingRegimeRequest, premium: float) -> None:
    request = request.model_copy(update={"mark_price": request.spot_price * (1 + premium)})
    assume(abs(request.mark_price - request.spot_price) / request.spot_price <= 0.5)
    result = simulate_funding_regime(request)
    cap = funding_parameters(request.exchange).cap_per_period
    running = list(itertools.accumulate(p.payment for p in result.periods))
    for period, expected in zip(result.periods, running, strict=True):
        if cap is not None:
            assert abs(period.funding_rate) <= cap
        assert period.cumulative_payment == pytest.approx(expected, rel=1e-12, abs=1e-9)
        assert period.payment == pytest.approx(
            -request.position_size * period.reference_price * period.funding_rate, rel=1e-12, abs=1e-12
        )
        assert period.pnl == period.payment
        assert period.perp_price > 0
        assert abs(period.premium) <= 0.5
    assert len(result.periods) == request.num_periods
    assert result.summary.total_payment == result.periods[-1].cumulative_payment
    assert result.summary.cap_hits == sum(p.cap_hit for p in result.periods)
