"""The risk domain's SQLite tables, in the server's state store: recorded metric series, alert rules and
alerts, regime state and transitions, and a cache of one-minute bars read from the desk's market feed.

A value that cannot be read back (a rule or a regime state whose JSON is damaged) raises `RiskStoreDamaged`,
which the tools answer as `unavailable`: a damaged store fails closed instead of being rebuilt silently.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from quantdesk.server.errors import Unavailable

SCHEMA = [
    # one row per desk equity sample: the portfolio metrics recorded on the desk clock
    """CREATE TABLE IF NOT EXISTS risk_samples (
        timestamp_ms INTEGER PRIMARY KEY, portfolio_value_usd REAL NOT NULL, pnl_usd REAL NOT NULL,
        daily_pnl_usd REAL NOT NULL, daily_loss_pct REAL NOT NULL, gross_exposure_usd REAL NOT NULL,
        net_exposure_usd REAL NOT NULL, leverage REAL NOT NULL, drawdown_pct REAL NOT NULL)""",
    # risk metrics recorded at every desk hour (trailing window), one row per metric and hour
    """CREATE TABLE IF NOT EXISTS risk_metric_points (
        metric TEXT NOT NULL, timestamp_ms INTEGER NOT NULL, value REAL NOT NULL,
        PRIMARY KEY (metric, timestamp_ms)) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS risk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS risk_alert_rules (
        rule_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, body TEXT NOT NULL, firing INTEGER NOT NULL,
        created_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS risk_alerts (
        seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL UNIQUE, rule_id TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
        severity TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, threshold REAL NOT NULL,
        operator TEXT NOT NULL, message TEXT NOT NULL, acknowledged_ms INTEGER, acknowledged_by TEXT,
        acknowledged_note TEXT)""",
    "CREATE INDEX IF NOT EXISTS risk_alerts_time ON risk_alerts (timestamp_ms)",
    """CREATE TABLE IF NOT EXISTS risk_regime_state (
        symbol TEXT NOT NULL, timeframe TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (symbol, timeframe))""",
    """CREATE TABLE IF NOT EXISTS risk_regime_history (
        seq INTEGER PRIMARY KEY, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
        from_regime TEXT NOT NULL, to_regime TEXT NOT NULL, confidence REAL NOT NULL, probabilities TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS risk_regime_history_time ON risk_regime_history (symbol, timestamp_ms)",
    """CREATE TABLE IF NOT EXISTS risk_bars_1m (
        symbol TEXT NOT NULL, open_ms INTEGER NOT NULL, open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL,
        close REAL NOT NULL, volume REAL NOT NULL, trades INTEGER NOT NULL,
        PRIMARY KEY (symbol, open_ms)) WITHOUT ROWID""",
]


class RiskSql(Protocol):
    """What the risk domain needs of the server's state store (server/state.py `StateStore`)."""

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None: ...

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...


class RiskStoreDamaged(Unavailable):
    """A stored risk record cannot be read back: the risk tools refuse rather than guess."""


def ensure_schema(sql: RiskSql) -> None:
    sql.ensure_schema("risk", SCHEMA)


def get_meta(sql: RiskSql, key: str) -> str | None:
    rows = sql.query("SELECT value FROM risk_meta WHERE key = ?", (key,))
    return str(rows[0][0]) if rows else None


def put_meta(conn: sqlite3.Connection, values: dict[str, str]) -> None:
    conn.executemany("INSERT OR REPLACE INTO risk_meta (key, value) VALUES (?, ?)", list(values.items()))
