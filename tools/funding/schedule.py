"""Funding timestamps and CME expiries, in integer milliseconds since the epoch (UTC)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def align_period_start(ts_ms: int, interval_hours: float, anchor_utc_hour: int) -> int:
    """The start of the funding period containing `ts_ms` (e.g. 00/08/16 UTC for 8 h venues)."""
    interval_ms = round(interval_hours * HOUR_MS)
    anchor_ms = anchor_utc_hour * HOUR_MS
    return anchor_ms + ((ts_ms - anchor_ms) // interval_ms) * interval_ms


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _london_utc_offset_hours(day: date) -> int:
    """1 during British Summer Time, else 0 (EU rule: last Sunday of March to last Sunday of October).

    Written out because the expiry is on a Friday, never on a changeover day, and this keeps
    the engine free of a time-zone database.
    """
    starts = _last_weekday(day.year, 3, calendar.SUNDAY)
    ends = _last_weekday(day.year, 10, calendar.SUNDAY)
    return 1 if starts <= day < ends else 0


@dataclass(frozen=True, slots=True)
class Expiry:
    year: int
    month: int
    day: date
    ts_ms: int


def monthly_expiry(year: int, month: int) -> Expiry:
    """16:00 London on the last Friday of the month (CME bitcoin futures; holidays not modelled)."""
    friday = _last_weekday(year, month, calendar.FRIDAY)
    hour_utc = 16 - _london_utc_offset_hours(friday)
    moment = datetime(friday.year, friday.month, friday.day, hour_utc, tzinfo=UTC)
    return Expiry(year, month, friday, int(moment.timestamp()) * 1000)


def first_expiry_at_or_after(ts_ms: int) -> Expiry:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    year, month = moment.year, moment.month
    while True:
        expiry = monthly_expiry(year, month)
        if expiry.ts_ms >= ts_ms:
            return expiry
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def contract_symbols(expiry: Expiry, product_code: str, month_codes: str) -> tuple[str, str]:
    """Venue code (BTCZ5) and canonical symbol (BTC-USD-251226) of a monthly contract."""
    raw = f"{product_code}{month_codes[expiry.month - 1]}{expiry.year % 10}"
    return raw, f"BTC-USD-{expiry.day:%y%m%d}"
