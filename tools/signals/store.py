"""The signals domain's SQLite tables, in the server's state store: every signal made, the price the loop saw at
each cycle (the forward returns of the signal metrics), and settings (active profile, loop state, weights).

Writes are transactions of the state store (atomic); a profile switch commits its setting and its decision-log
entry in one transaction. A setting that cannot be read back raises `SignalsStoreDamaged` (fail closed)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from quantdesk.server.errors import Unavailable
from quantdesk.tools.signals.model import Signal

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS signals_signals (
        seq INTEGER PRIMARY KEY, signal_id TEXT NOT NULL UNIQUE, symbol TEXT NOT NULL, signal_type TEXT NOT NULL,
        layer TEXT NOT NULL, direction TEXT NOT NULL, strength REAL NOT NULL, confidence REAL NOT NULL,
        created_ms INTEGER NOT NULL, ttl_seconds INTEGER NOT NULL, price REAL NOT NULL, details TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS signals_signals_time ON signals_signals (created_ms)",
    """CREATE TABLE IF NOT EXISTS signals_prices (
        symbol TEXT NOT NULL, timestamp_ms INTEGER NOT NULL, price REAL NOT NULL,
        PRIMARY KEY (symbol, timestamp_ms)) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS signals_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
_INSERT = ("INSERT INTO signals_signals (signal_id, symbol, signal_type, layer, direction, strength, confidence, "
           "created_ms, ttl_seconds, price, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class SignalsSql(Protocol):
    def ensure_schema(self, name: str, statements: Sequence[str]) -> None: ...

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...


class SignalsStoreDamaged(Unavailable):
    """A stored setting cannot be read back: the signals tools refuse rather than guess."""


def ensure_schema(sql: SignalsSql) -> None:
    sql.ensure_schema("signals", SCHEMA)


def next_seq(sql: SignalsSql) -> int:
    return int(sql.query("SELECT COALESCE(MAX(seq), 0) FROM signals_signals")[0][0]) + 1


def put_signals(conn: sqlite3.Connection, signals: Iterable[Signal]) -> None:
    conn.executemany(_INSERT, [(s.signal_id, s.symbol, s.signal_type, s.layer, s.direction, s.strength, s.confidence,
                                s.created_ms, s.ttl_seconds, s.price, json.dumps(s.details, sort_keys=True))
                               for s in signals])


def put_prices(conn: sqlite3.Connection, t_ms: int, prices: dict[str, float]) -> None:
    conn.executemany("INSERT OR REPLACE INTO signals_prices (symbol, timestamp_ms, price) VALUES (?, ?, ?)",
                     [(symbol, t_ms, price) for symbol, price in prices.items()])


def _signal(r: sqlite3.Row) -> Signal:
    return Signal(r["signal_id"], r["symbol"], r["signal_type"], r["layer"], r["direction"], r["strength"],
                  r["confidence"], r["created_ms"], r["ttl_seconds"], r["price"], json.loads(r["details"]))


def list_signals(sql: SignalsSql, *, symbol: str | None = None, signal_type: str | None = None,
                 since_ms: int | None = None, until_ms: int | None = None, live_at_ms: int | None = None,
                 limit: int = 100, ascending: bool = False) -> list[Signal]:
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (("symbol = ?", symbol), ("signal_type = ?", signal_type), ("created_ms >= ?", since_ms),
                          ("created_ms <= ?", until_ms)):
        if value is not None:
            where.append(clause)
            params.append(value)
    if live_at_ms is not None:
        where.append("created_ms + ttl_seconds * 1000 > ? AND created_ms <= ?")
        params += [live_at_ms, live_at_ms]
    order = "ASC" if ascending else "DESC"
    rows = sql.query(f"SELECT * FROM signals_signals {'WHERE ' + ' AND '.join(where) if where else ''} "
                     f"ORDER BY seq {order} LIMIT ?", [*params, limit])
    return [_signal(r) for r in rows]


def latest_signals(sql: SignalsSql) -> list[Signal]:
    """The newest signal of every (symbol, type): what the loop may still act on after a restart."""
    rows = sql.query("SELECT s.* FROM signals_signals s JOIN (SELECT MAX(seq) AS seq FROM signals_signals "
                     "GROUP BY symbol, signal_type) m USING (seq)")
    return [_signal(r) for r in rows]


def prices(sql: SignalsSql, symbol: str, since_ms: int | None = None, limit: int = 1_000_000
           ) -> list[tuple[int, float]]:
    rows = sql.query("SELECT timestamp_ms, price FROM signals_prices WHERE symbol = ? AND timestamp_ms >= ? "
                     "ORDER BY timestamp_ms DESC LIMIT ?", (symbol, since_ms if since_ms is not None else -1, limit))
    return [(int(r[0]), float(r[1])) for r in reversed(rows)]


def get_meta(sql: SignalsSql, key: str) -> Any:
    rows = sql.query("SELECT value FROM signals_meta WHERE key = ?", (key,))
    if not rows:
        return None
    try:
        return json.loads(rows[0][0])
    except ValueError as exc:
        raise SignalsStoreDamaged(f"the signals setting {key!r} cannot be read back (damaged store)") from exc


def put_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    conn.executemany("INSERT OR REPLACE INTO signals_meta (key, value) VALUES (?, ?)",
                     [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()])
