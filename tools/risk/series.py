"""Metric series recorded on the desk clock, and the equity series on a fixed grid of bars.

Every desk equity sample becomes one row of portfolio metrics (value, P&L, daily P&L and loss, exposure,
leverage, drawdown). At every desk hour the risk metrics of the trailing 30 days of hourly equity are
recorded too (volatility, historical VaR and CVaR at 95 %, Sharpe, Sortino; P = 8760), once at least a
day of hourly returns exists. Queries aggregate a metric over buckets aligned to the UTC epoch.
"""

from __future__ import annotations

import math
import sqlite3
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.tools.risk.store import RiskSql

Aggregation = Literal["avg", "min", "max", "sum", "count", "last"]
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
RISK_WINDOW_HOURS = 30 * 24
MIN_RISK_RETURNS = 24
MAX_GRID_POINTS = 200_000
MAX_BUCKETS = 10_000
BARS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    unit: str
    description: str
    cadence: Literal["equity_sample", "hourly"]

    @property
    def column(self) -> str:
        return self.name if self.cadence == "equity_sample" else "value"


METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("portfolio_value_usd", "USD", "account equity: USDT + unrealized P&L + spot holdings at mid",
               "equity_sample"),
    MetricSpec("pnl_usd", "USD", "equity minus the desk's first recorded equity (its starting deposit)",
               "equity_sample"),
    MetricSpec("daily_pnl_usd", "USD", "equity minus the equity at the first sample of the UTC day", "equity_sample"),
    MetricSpec("daily_loss_pct", "fraction", "loss since the first sample of the UTC day, 0 when up (0.05 = 5 %)",
               "equity_sample"),
    MetricSpec("gross_exposure_usd", "USD", "sum of |notional| of perpetual positions and spot holdings",
               "equity_sample"),
    MetricSpec("net_exposure_usd", "USD", "signed sum of perpetual notionals and spot holdings", "equity_sample"),
    MetricSpec("leverage", "ratio", "gross exposure / equity", "equity_sample"),
    MetricSpec("drawdown_pct", "fraction", "1 - equity / highest equity so far (0.1 = 10 %)", "equity_sample"),
    MetricSpec("volatility_annual", "fraction", "annualized volatility of hourly returns, trailing 30 days", "hourly"),
    MetricSpec("var_95_pct", "fraction", "historical 1-hour VaR at 95 % of hourly returns, trailing 30 days, loss "
               "positive", "hourly"),
    MetricSpec("cvar_95_pct", "fraction", "historical 1-hour CVaR at 95 %, trailing 30 days, loss positive",
               "hourly"),
    MetricSpec("sharpe_ratio", "ratio", "annualized Sharpe of hourly returns (rf 0), trailing 30 days", "hourly"),
    MetricSpec("sortino_ratio", "ratio", "annualized Sortino of hourly returns (MAR 0), trailing 30 days", "hourly"),
)}
SAMPLE_COLUMNS = tuple(m.name for m in METRICS.values() if m.cadence == "equity_sample")
HOURLY_METRICS = tuple(m.name for m in METRICS.values() if m.cadence == "hourly")


def iso(t_ms: int | None) -> str | None:
    if t_ms is None:
        return None
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """What the recorder needs of one desk equity sample."""

    timestamp_ms: int
    equity_usd: float
    gross_exposure_usd: float
    net_exposure_usd: float
    drawdown_pct: float


@dataclass(slots=True)
class RecorderState:
    """Where the recorder stands; persisted in risk_meta with the rows it wrote (one transaction)."""

    recorded_until_ms: int = -1
    base_equity: float | None = None
    day_key: int = -1
    day_start_equity: float = 0.0
    previous: EquityPoint | None = None

    def to_meta(self) -> dict[str, str]:
        out = {"recorded_until_ms": str(self.recorded_until_ms), "day_key": str(self.day_key),
               "day_start_equity": repr(self.day_start_equity)}
        if self.base_equity is not None:
            out["base_equity"] = repr(self.base_equity)
        return out


class MetricRecorder:
    """Turns desk equity samples into recorded metric rows, in order, exactly once each."""

    def __init__(self, sql: RiskSql) -> None:
        self.sql = sql
        meta = {r["key"]: r["value"] for r in sql.query("SELECT key, value FROM risk_meta")}
        self.state = RecorderState(
            recorded_until_ms=int(meta.get("recorded_until_ms", -1)),
            base_equity=float(meta["base_equity"]) if "base_equity" in meta else None,
            day_key=int(meta.get("day_key", -1)), day_start_equity=float(meta.get("day_start_equity", 0.0)))
        last = sql.query("SELECT timestamp_ms, portfolio_value_usd, gross_exposure_usd, net_exposure_usd, "
                         "drawdown_pct FROM risk_samples ORDER BY timestamp_ms DESC LIMIT 1")
        if last:
            self.state.previous = EquityPoint(*last[0])
        # hourly equity (the last sample at or before each hour) of the trailing window, rebuilt from the rows
        start = self.state.recorded_until_ms - RISK_WINDOW_HOURS * HOUR_MS
        grid = equity_grid(sql, 3600, start, None) if self.state.recorded_until_ms >= 0 else EquityGrid([], [], 3600)
        self.hourly: deque[tuple[int, float]] = deque(zip(grid.timestamps_ms, grid.equity, strict=True),
                                                      maxlen=RISK_WINDOW_HOURS + 1)

    def _risk_values(self) -> list[tuple[str, float]]:
        """The hourly risk metrics of the trailing window, once it holds a day of returns."""
        import numpy as np

        from quantdesk.tools.risk.metrics import compute_metrics

        if len(self.hourly) <= MIN_RISK_RETURNS:
            return []
        equity = np.fromiter((v for _, v in self.hourly), dtype=np.float64)
        if not bool(np.all(equity > 0)):
            return []
        m = compute_metrics(equity, periods=8760.0)
        tail = m.tail_risk("historical", 0.95)
        values = (("volatility_annual", m.volatility_annual), ("var_95_pct", tail.var_pct),
                  ("cvar_95_pct", tail.cvar_pct), ("sharpe_ratio", m.sharpe_ratio), ("sortino_ratio", m.sortino_ratio))
        return [(name, v) for name, v in values if v is not None and math.isfinite(v)]

    def record(self, conn: sqlite3.Connection, points: list[EquityPoint]) -> list[tuple[str, int, float]]:
        """Write the rows of these samples (newer than what is recorded) in the caller's transaction.

        Returns every (metric, timestamp_ms, value) written, in time order, for the alert rules."""
        s = self.state
        written: list[tuple[str, int, float]] = []
        sample_rows = []
        hourly_rows = []
        for p in points:
            if p.timestamp_ms <= s.recorded_until_ms:
                continue
            if s.base_equity is None:
                s.base_equity = p.equity_usd
            day = p.timestamp_ms // DAY_MS
            if day != s.day_key:
                s.day_key, s.day_start_equity = day, p.equity_usd
            daily_pnl = p.equity_usd - s.day_start_equity
            daily_loss = max(0.0, 1.0 - p.equity_usd / s.day_start_equity) if s.day_start_equity > 0 else 0.0
            leverage = p.gross_exposure_usd / p.equity_usd if p.equity_usd > 0 else 0.0
            values = (p.equity_usd, p.equity_usd - s.base_equity, daily_pnl, daily_loss, p.gross_exposure_usd,
                      p.net_exposure_usd, leverage, p.drawdown_pct)
            sample_rows.append((p.timestamp_ms, *values))
            written += [(name, p.timestamp_ms, v) for name, v in zip(SAMPLE_COLUMNS, values, strict=True)]
            for hour, equity in _hours_closed(s.previous, p):
                self.hourly.append((hour, equity))
                for name, value in self._risk_values():
                    hourly_rows.append((name, hour, value))
                    written.append((name, hour, value))
            s.previous = p
            s.recorded_until_ms = p.timestamp_ms
        if sample_rows:
            conn.executemany(f"INSERT OR REPLACE INTO risk_samples (timestamp_ms, {', '.join(SAMPLE_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * (len(SAMPLE_COLUMNS) + 1))})", sample_rows)
        if hourly_rows:
            conn.executemany("INSERT OR REPLACE INTO risk_metric_points (metric, timestamp_ms, value) VALUES (?, ?, ?)",
                             hourly_rows)
        conn.executemany("INSERT OR REPLACE INTO risk_meta (key, value) VALUES (?, ?)", list(s.to_meta().items()))
        return written


def _hours_closed(previous: EquityPoint | None, p: EquityPoint) -> list[tuple[int, float]]:
    """Hour boundaries in (previous sample, this sample] with the equity of the last sample at or before each."""
    if previous is None:
        return [(p.timestamp_ms, p.equity_usd)] if p.timestamp_ms % HOUR_MS == 0 else []
    first = previous.timestamp_ms - previous.timestamp_ms % HOUR_MS + HOUR_MS
    return [(h, p.equity_usd if h == p.timestamp_ms else previous.equity_usd)
            for h in range(first, p.timestamp_ms + 1, HOUR_MS)]


def _spec(metric: str) -> MetricSpec:
    spec = METRICS.get(metric)
    if spec is None:
        raise InvalidArgument.from_problems([Problem("$.metric_type", f"unknown metric {metric!r}; known: "
                                                                      f"{', '.join(METRICS)}")])
    return spec


def _source(spec: MetricSpec) -> tuple[str, str, list[Any]]:
    """(table, extra WHERE clause, its parameters) of a metric; names come from the fixed catalog only."""
    if spec.cadence == "equity_sample":
        return "risk_samples", "", []
    return "risk_metric_points", "metric = ? AND ", [spec.name]


def aggregate(sql: RiskSql, metric: str, start_ms: int, end_ms: int, aggregation: Aggregation,
              bucket_seconds: int) -> list[dict[str, Any]]:
    """Points of `metric` in [start_ms, end_ms] folded into buckets aligned to the epoch; empty buckets left out."""
    spec = _spec(metric)
    bucket = bucket_seconds * 1000
    if (end_ms - start_ms) // bucket + 1 > MAX_BUCKETS:
        raise InvalidArgument.from_problems([Problem("$.bucket_seconds", f"the range holds more than {MAX_BUCKETS} "
                                                                         "buckets; choose larger buckets")])
    table, where, params = _source(spec)
    column = spec.column
    if aggregation == "last":
        # SQLite returns the bare column of the row that holds MAX(): the last value of each bucket
        query = (f"SELECT timestamp_ms / ? AS b, MAX(timestamp_ms), {column}, COUNT(*) FROM {table} WHERE {where}"
                 "timestamp_ms BETWEEN ? AND ? GROUP BY b ORDER BY b")
    else:
        function = {"avg": "AVG", "min": "MIN", "max": "MAX", "sum": "TOTAL", "count": "COUNT"}[aggregation]
        query = (f"SELECT timestamp_ms / ? AS b, 0, {function}({column}), COUNT(*) FROM {table} WHERE {where}"
                 "timestamp_ms BETWEEN ? AND ? GROUP BY b ORDER BY b")
    rows = sql.query(query, [bucket, *params, start_ms, end_ms])
    return [{"timestamp_ms": int(r[0]) * bucket, "timestamp": iso(int(r[0]) * bucket), "value": float(r[2]),
             "count": int(r[3])} for r in rows]


def latest(sql: RiskSql, metric: str) -> dict[str, Any] | None:
    """The newest point and its change over 24 h (against the last point at or before 24 h earlier)."""
    spec = _spec(metric)
    table, where, params = _source(spec)
    column = spec.column
    rows = sql.query(f"SELECT timestamp_ms, {column} FROM {table} WHERE {where}1 = 1 "
                     "ORDER BY timestamp_ms DESC LIMIT 1", params)
    if not rows:
        return None
    t, value = int(rows[0][0]), float(rows[0][1])
    before = sql.query(f"SELECT timestamp_ms, {column} FROM {table} WHERE {where}timestamp_ms <= ? "
                       "ORDER BY timestamp_ms DESC LIMIT 1", [*params, t - DAY_MS])
    out: dict[str, Any] = {"timestamp_ms": t, "timestamp": iso(t), "value": value, "change_24h": None,
                           "change_24h_abs": None, "value_24h_ago": None, "change_24h_reason": None}
    if not before:
        out["change_24h_reason"] = "less than 24 hours of history"
        return out
    base = float(before[0][1])
    out["value_24h_ago"] = base
    out["change_24h_abs"] = value - base
    if base == 0.0:
        out["change_24h_reason"] = "the value 24 hours earlier was zero: no relative change"
    else:
        out["change_24h"] = (value - base) / abs(base)
    return out


@dataclass(frozen=True, slots=True)
class EquityGrid:
    timestamps_ms: list[int]
    equity: list[float]
    bar_seconds: int


def equity_grid(sql: RiskSql, bar_seconds: int, since_ms: int | None, until_ms: int | None) -> EquityGrid:
    """Equity at every bar boundary (UTC-aligned) from the first boundary at or after the first recorded sample
    to the last boundary at or before the last one: the last sample at or before each boundary.

    The boundaries are looked up by primary key (a desk's sample interval divides a day, so a sample usually
    sits on each boundary); a boundary without one takes the last sample before it. A year of 60-second
    samples is never scanned for 366 daily points."""
    bar = bar_seconds * 1000
    lo = since_ms if since_ms is not None else 0
    hi = until_ms if until_ms is not None else 2**62
    # one aggregate per query: SQLite answers a lone MIN or MAX on the key by one index seek, both at once by a scan
    low = sql.query("SELECT MIN(timestamp_ms) FROM risk_samples WHERE timestamp_ms BETWEEN ? AND ?", (lo, hi))
    high = sql.query("SELECT MAX(timestamp_ms) FROM risk_samples WHERE timestamp_ms BETWEEN ? AND ?", (lo, hi))
    if low[0][0] is None:
        return EquityGrid([], [], bar_seconds)
    first_sample, last_sample = int(low[0][0]), int(high[0][0])
    first = -(-first_sample // bar) * bar
    last = last_sample // bar * bar
    if last < first:
        return EquityGrid([], [], bar_seconds)
    if (last - first) // bar + 1 > MAX_GRID_POINTS:
        raise InvalidArgument.from_problems([Problem("$.bar", f"the window holds more than {MAX_GRID_POINTS} bars; "
                                                              "choose a larger bar or a shorter window")])
    grid = list(range(first, last + 1, bar))
    found: dict[int, float] = {}
    for start in range(0, len(grid), _IN_CHUNK):
        chunk = grid[start:start + _IN_CHUNK]
        rows = sql.query(f"SELECT timestamp_ms, portfolio_value_usd FROM risk_samples WHERE timestamp_ms IN "
                         f"({', '.join('?' * len(chunk))})", chunk)
        found.update((int(r[0]), float(r[1])) for r in rows)
    values = []
    for boundary in grid:
        value = found.get(boundary)
        if value is None:
            rows = sql.query("SELECT portfolio_value_usd FROM risk_samples WHERE timestamp_ms BETWEEN ? AND ? "
                             "ORDER BY timestamp_ms DESC LIMIT 1", (lo, boundary))
            value = float(rows[0][0])
        values.append(value)
    return EquityGrid(grid, values, bar_seconds)


_IN_CHUNK = 900
"""Boundaries per IN (...) query (SQLite's default limit of host parameters is 999 on old builds)."""
