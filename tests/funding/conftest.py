"""Shared argument builder for the funding tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from quantdesk.tools.funding.engine import simulate_funding_regime
from quantdesk.tools.funding.models import FundingRegimeRequest, FundingRegimeResult

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC

Simulate = Callable[..., FundingRegimeResult]


def _simulate(exchange: str, **overrides: object) -> FundingRegimeResult:
    """The spec §5.2 worked example (spot 50,000, mark 50,100, 1 BTC long, premium held), with overrides."""
    arguments: dict[str, object] = {
        "exchange": exchange,
        "spot_price": 50_000.0,
        "mark_price": 50_100.0,
        "position_size": 1.0,
        "num_periods": 3,
        "use_soft_cap": False,
        "seed": 7,
        "premium_volatility_bps": 0.0,
        "start_ts_ms": START_MS,
    }
    arguments.update(overrides)
    return simulate_funding_regime(FundingRegimeRequest.model_validate(arguments))


@pytest.fixture
def simulate() -> Simulate:
    return _simulate
