"""TRADEOS metrics API (seeds/004, port 18003): performance, signal and system metrics from the signals tools.
Its own profile so that it gets its own listener: `quantdesk serve --compat tradeos-metrics:18003`."""

from __future__ import annotations

from quantdesk.server.rest_rows import Credentials, Profile, Row

ROWS: tuple[Row, ...] = (
    Row("GET", "/metrics/performance", "get_performance_metrics",
        summary="Performance: Sharpe, Sortino, win rate, profit factor, average trade duration"),
    Row("GET", "/metrics/signals", "get_signal_metrics",
        summary="Signal performance: IC per horizon, hit rate, contribution to P&L by signal and type"),
    Row("GET", "/metrics/system", "get_system_metrics",
        summary="System: cycle latency, rejection rates by reason, circuit breaker activations"),
    Row("GET", "/healthz", "get_trading_health", summary="System health"),
)

PROFILE = Profile("tradeos-metrics", "TRADEOS metrics", ROWS, credentials=Credentials(query="token"))
