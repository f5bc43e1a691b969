"""Funding timestamps on the venue schedule, and CME expiries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from quantdesk.tools.funding.models import FundingRegimeResult
from quantdesk.tools.funding.schedule import first_expiry_at_or_after, monthly_expiry

Simulate = Callable[..., FundingRegimeResult]
HOUR_MS = 3_600_000
MID_PERIOD_MS = 1_767_243_845_123  # 2026-01-01 05:04:05.123 UTC


def utc_ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx", "sgx"])
def test_eight_hour_venues_pay_at_00_08_and_16_utc(simulate: Simulate, exchange: str) -> None:
    result = simulate(exchange, start_ts_ms=MID_PERIOD_MS, num_periods=4)
    starts = [p.start_ts_ms for p in result.periods]
    assert starts[0] == utc_ms(2026, 1, 1, 0)
    assert [p.next_funding_time for p in result.periods] == [utc_ms(2026, 1, 1, h) for h in (8, 16)] + [
        utc_ms(2026, 1, 2, 0), utc_ms(2026, 1, 2, 8)
    ]
    assert all(b.start_ts_ms == a.next_funding_time for a, b in zip(result.periods, result.periods[1:], strict=False))
    assert result.summary.first_period_start_ts_ms == starts[0]


@pytest.mark.parametrize("exchange", ["hyperliquid", "dydx"])
def test_hourly_venues_pay_on_the_hour(simulate: Simulate, exchange: str) -> None:
    result = simulate(exchange, start_ts_ms=MID_PERIOD_MS, num_periods=3)
    assert [p.start_ts_ms for p in result.periods] == [utc_ms(2026, 1, 1, h) for h in (5, 6, 7)]
    assert result.periods[-1].next_funding_time == utc_ms(2026, 1, 1, 8)


def test_an_aligned_start_is_kept(simulate: Simulate) -> None:
    assert simulate("binance", start_ts_ms=utc_ms(2026, 1, 1, 16)).periods[0].start_ts_ms == utc_ms(2026, 1, 1, 16)


def test_cme_accrues_daily_from_midnight_utc(simulate: Simulate) -> None:
    result = simulate("cme", start_ts_ms=MID_PERIOD_MS, num_periods=2)
    assert [p.start_ts_ms for p in result.periods] == [utc_ms(2026, 1, 1), utc_ms(2026, 1, 2)]


def test_cme_expiry_is_1600_london_on_the_last_friday() -> None:
    assert monthly_expiry(2025, 12).ts_ms == utc_ms(2025, 12, 26, 16)  # GMT
    assert monthly_expiry(2026, 6).ts_ms == utc_ms(2026, 6, 26, 15)  # BST
    assert monthly_expiry(2024, 3).ts_ms == utc_ms(2024, 3, 29, 16)  # BST starts on the 31st
    assert monthly_expiry(2023, 3).ts_ms == utc_ms(2023, 3, 31, 15)  # BST started on the 26th
    assert first_expiry_at_or_after(utc_ms(2025, 12, 26, 17)).ts_ms == monthly_expiry(2026, 1).ts_ms


def test_cme_picks_the_first_monthly_contract_covering_the_horizon(simulate: Simulate) -> None:
    result = simulate("cme", start_ts_ms=utc_ms(2025, 12, 20, 9), num_periods=3, premium_volatility_bps=0.0)
    summary = result.summary
    assert summary.contract_symbol == "BTCZ5"
    assert summary.canonical_symbol == "BTC-USD-251226"
    assert summary.expiry_ts_ms == utc_ms(2025, 12, 26, 16)
    assert summary.days_to_expiry == pytest.approx(6 + 16 / 24)
    later = simulate("cme", start_ts_ms=utc_ms(2025, 12, 20, 9), num_periods=10).summary
    assert later.contract_symbol == "BTCF6"
