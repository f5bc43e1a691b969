"""The desk's SQLite ledger: orders, fills, funding, balance changes, positions, settings, equity samples.

Every change of money or position is a journal record with one global sequence number (a deposit, a
fill, a funding payment, a leverage or margin-mode change), so the stored balances and positions can
be replayed from empty in the same order (`replay`). The engine writes each step (an order with its
immediate fills, one resting fill, one funding settlement, one liquidation) in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from quantdesk.tools.desk.accounting import add_balance, apply_perp_fill, spot_cash_flows
from quantdesk.tools.desk.instruments import SETTLEMENT_ASSET, InstrumentTable
from quantdesk.tools.desk.model import (
    NO_REASONS,
    EquitySample,
    Fill,
    FundingPayment,
    MarginMode,
    Order,
    Position,
    Reason,
)

_OPEN = "status = 'open' OR status = 'partially_filled' OR status = 'pending_trigger'"
"""Open orders, written with OR rather than IN: SQLite builds an IN list's lookup table again on every execution
of a statement, so a partial index on `status IN (...)` cost about 3.5 us per order written, and the planner
does not match an IN form to the index either (the start-up query scanned the table)."""
_OLD_OPEN_INDEX = "IN ('pending_trigger', 'open', 'partially_filled')"

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS desk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS desk_orders (
        seq INTEGER PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, client_order_id TEXT UNIQUE, symbol TEXT NOT NULL,
        side TEXT NOT NULL, order_type TEXT NOT NULL, time_in_force TEXT NOT NULL, quantity REAL NOT NULL,
        original_quantity REAL NOT NULL, price REAL, stop_price REAL, post_only INTEGER NOT NULL,
        reduce_only INTEGER NOT NULL, status TEXT NOT NULL, filled_quantity REAL NOT NULL, average_price REAL,
        fees_usd REAL NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, triggered_ms INTEGER,
        source TEXT NOT NULL, decision_id TEXT, signal_id TEXT, reference_price REAL, reasons TEXT NOT NULL)""",
    # only open orders are looked up by status (at start-up): a partial index changes only when one opens or closes
    f"CREATE INDEX IF NOT EXISTS desk_orders_open ON desk_orders (status) WHERE {_OPEN}",
    """CREATE TABLE IF NOT EXISTS desk_fills (
        seq INTEGER PRIMARY KEY, fill_id TEXT NOT NULL, order_id TEXT NOT NULL, symbol TEXT NOT NULL,
        side TEXT NOT NULL, quantity REAL NOT NULL, price REAL NOT NULL, notional_usd REAL NOT NULL,
        fee_usd REAL NOT NULL, liquidity TEXT NOT NULL, reference_price REAL, slippage_bps REAL NOT NULL,
        realized_pnl_usd REAL NOT NULL, insurance_usd REAL NOT NULL, timestamp_ms INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS desk_fills_order ON desk_fills (order_id)",
    """CREATE TABLE IF NOT EXISTS desk_funding (
        seq INTEGER PRIMARY KEY, symbol TEXT NOT NULL, funding_time_ms INTEGER NOT NULL, rate REAL NOT NULL,
        premium REAL NOT NULL, mark_price REAL NOT NULL, position_size REAL NOT NULL, payment_usd REAL NOT NULL,
        UNIQUE (symbol, funding_time_ms))""",
    """CREATE TABLE IF NOT EXISTS desk_settings_log (
        seq INTEGER PRIMARY KEY, symbol TEXT NOT NULL, leverage REAL NOT NULL, margin_mode TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS desk_deposits (
        seq INTEGER PRIMARY KEY, asset TEXT NOT NULL, amount REAL NOT NULL, timestamp_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS desk_ledger (
        entry_id INTEGER PRIMARY KEY, journal_seq INTEGER NOT NULL, timestamp_ms INTEGER NOT NULL,
        kind TEXT NOT NULL, asset TEXT NOT NULL, amount REAL NOT NULL, balance_after REAL NOT NULL,
        symbol TEXT, ref_id TEXT)""",
    "CREATE TABLE IF NOT EXISTS desk_balances (asset TEXT PRIMARY KEY, total REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS desk_positions (
        symbol TEXT PRIMARY KEY, size REAL NOT NULL, entry_price REAL NOT NULL, margin_mode TEXT NOT NULL,
        leverage REAL NOT NULL, isolated_margin_usd REAL NOT NULL, realized_pnl_usd REAL NOT NULL,
        fees_usd REAL NOT NULL, funding_usd REAL NOT NULL, opened_ms INTEGER, updated_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS desk_equity (
        timestamp_ms INTEGER PRIMARY KEY, equity_usd REAL NOT NULL, wallet_usd REAL NOT NULL,
        unrealized_pnl_usd REAL NOT NULL, spot_value_usd REAL NOT NULL, gross_exposure_usd REAL NOT NULL,
        net_exposure_usd REAL NOT NULL, drawdown_pct REAL NOT NULL)""",
]

_ORDER_COLUMNS = ("order_id", "seq", "client_order_id", "symbol", "side", "order_type", "time_in_force", "quantity",
                  "original_quantity", "price", "stop_price", "post_only", "reduce_only", "status",
                  "filled_quantity", "average_price", "fees_usd", "created_ms", "updated_ms", "triggered_ms",
                  "source", "decision_id", "signal_id", "reference_price", "reasons")
# an upsert, not a REPLACE: a REPLACE deletes and re-inserts the row and every index entry of it
_UPSERT_ORDER = (f"INSERT INTO desk_orders ({', '.join(_ORDER_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(_ORDER_COLUMNS))}) ON CONFLICT (seq) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in _ORDER_COLUMNS if c not in ("seq", "order_id")))
_INSERT_ORDER = (f"INSERT INTO desk_orders ({', '.join(_ORDER_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(_ORDER_COLUMNS))})")
_MUTABLE_ORDER_COLUMNS = ("quantity", "reduce_only", "status", "filled_quantity", "average_price", "fees_usd",
                          "updated_ms", "triggered_ms", "decision_id", "reference_price", "reasons")
"""What can change once an order is stored; none of it is in a unique index, so an update leaves those alone."""
_UPDATE_ORDER = (f"UPDATE desk_orders SET {', '.join(f'{c} = ?' for c in _MUTABLE_ORDER_COLUMNS)} WHERE seq = ?")
_FILL_COLUMNS = ("seq", "fill_id", "order_id", "symbol", "side", "quantity", "price", "notional_usd", "fee_usd",
                 "liquidity", "reference_price", "slippage_bps", "realized_pnl_usd", "insurance_usd", "timestamp_ms")
_INSERT_FILL = f"INSERT INTO desk_fills ({', '.join(_FILL_COLUMNS)}) VALUES ({', '.join('?' * len(_FILL_COLUMNS))})"
_FILL_STATE_COLUMNS = ("fill_id", "seq", *_FILL_COLUMNS[2:])
"""The columns in `Fill.state()` order (the constructor's)."""
_INSERT_FILL_STATE = (f"INSERT INTO desk_fills ({', '.join(_FILL_STATE_COLUMNS)}) "
                      f"VALUES ({', '.join('?' * len(_FILL_STATE_COLUMNS))})")
_POSITION_COLUMNS = ("symbol", "size", "entry_price", "margin_mode", "leverage", "isolated_margin_usd",
                     "realized_pnl_usd", "fees_usd", "funding_usd", "opened_ms", "updated_ms")
_UPSERT_POSITION = (f"INSERT INTO desk_positions ({', '.join(_POSITION_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(_POSITION_COLUMNS))}) ON CONFLICT (symbol) DO UPDATE SET "
                    + ", ".join(f"{c} = excluded.{c}" for c in _POSITION_COLUMNS[1:]))


class SqlState(Protocol):
    """What the ledger needs of the server's state store (server/state.py `StateStore`)."""

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None: ...

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...


def order_row(order: Order) -> tuple[Any, ...]:
    return (order.order_id, order.seq, order.client_order_id, order.symbol, order.side, order.order_type,
            order.time_in_force, order.quantity, order.original_quantity, order.price, order.stop_price,
            int(order.post_only), int(order.reduce_only), order.status, order.filled_quantity, order.average_price,
            order.fees_usd, order.created_ms, order.updated_ms, order.triggered_ms, order.source, order.decision_id,
            order.signal_id, order.reference_price, _reasons_json(order.reasons))


def _reasons_json(reasons: list[Reason]) -> str:
    return json.dumps([r.to_dict() for r in reasons]) if reasons else "[]"


def fill_row(fill: Fill) -> tuple[Any, ...]:
    return (fill.seq, fill.fill_id, fill.order_id, fill.symbol, fill.side, fill.quantity, fill.price,
            fill.notional_usd, fill.fee_usd, fill.liquidity, fill.reference_price, fill.slippage_bps,
            fill.realized_pnl_usd, fill.insurance_usd, fill.timestamp_ms)


def order_from_row(row: sqlite3.Row) -> Order:
    return Order(
        order_id=row["order_id"], client_order_id=row["client_order_id"], symbol=row["symbol"], side=row["side"],
        order_type=row["order_type"], time_in_force=row["time_in_force"], quantity=row["quantity"],
        original_quantity=row["original_quantity"], price=row["price"], stop_price=row["stop_price"],
        post_only=bool(row["post_only"]), reduce_only=bool(row["reduce_only"]), status=row["status"],
        created_ms=row["created_ms"], updated_ms=row["updated_ms"], source=row["source"], seq=row["seq"],
        filled_quantity=row["filled_quantity"], average_price=row["average_price"], fees_usd=row["fees_usd"],
        decision_id=row["decision_id"], signal_id=row["signal_id"], reference_price=row["reference_price"],
        triggered_ms=row["triggered_ms"],
        reasons=[Reason(r["code"], r["message"]) for r in json.loads(row["reasons"])] if row["reasons"] != "[]"
        else NO_REASONS)


def fill_from_row(row: sqlite3.Row) -> Fill:
    return Fill(fill_id=row["fill_id"], seq=row["seq"], order_id=row["order_id"], symbol=row["symbol"],
                side=row["side"], quantity=row["quantity"], price=row["price"], notional_usd=row["notional_usd"],
                fee_usd=row["fee_usd"], liquidity=row["liquidity"], reference_price=row["reference_price"],
                slippage_bps=row["slippage_bps"], realized_pnl_usd=row["realized_pnl_usd"],
                insurance_usd=row["insurance_usd"], timestamp_ms=row["timestamp_ms"])


def position_from_row(row: sqlite3.Row) -> Position:
    return Position(symbol=row["symbol"], size=row["size"], entry_price=row["entry_price"],
                    margin_mode=row["margin_mode"], leverage=row["leverage"],
                    isolated_margin_usd=row["isolated_margin_usd"], realized_pnl_usd=row["realized_pnl_usd"],
                    fees_usd=row["fees_usd"], funding_usd=row["funding_usd"], opened_ms=row["opened_ms"],
                    updated_ms=row["updated_ms"])


@dataclass(slots=True)
class StoredDesk:
    """Everything a restart restores."""

    meta: dict[str, str]
    open_orders: list[Order]
    client_ids: dict[str, str]
    balances: dict[str, float]
    positions: dict[str, Position]
    settings: dict[str, tuple[float, MarginMode]]
    counters: dict[str, int]
    last_funding: dict[str, FundingPayment] = field(default_factory=dict)


class Ledger:
    def __init__(self, state: SqlState) -> None:
        self.state = state
        state.ensure_schema("desk", SCHEMA)
        self._migrate_open_index()

    def _migrate_open_index(self) -> None:
        """A ledger made before the index was written with OR gets the new index (an index is derived data:
        dropped and rebuilt in one transaction)."""
        rows = self.state.query("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'desk_orders_open'")
        if rows and _OLD_OPEN_INDEX in str(rows[0][0]):
            with self.state.transaction() as conn:
                conn.execute("DROP INDEX desk_orders_open")
                conn.execute(f"CREATE INDEX desk_orders_open ON desk_orders (status) WHERE {_OPEN}")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.state.transaction()

    # --- writes (inside the caller's transaction) -------------------------------------------------

    @staticmethod
    def put_orders(conn: sqlite3.Connection, orders: list[Order]) -> None:
        _many(conn, _UPSERT_ORDER, [order_row(o) for o in orders])

    @staticmethod
    def insert_orders(conn: sqlite3.Connection, orders: list[Order]) -> None:
        """Orders not stored yet."""
        _many(conn, _INSERT_ORDER, [order_row(o) for o in orders])

    @staticmethod
    def update_orders(conn: sqlite3.Connection, orders: list[Order]) -> None:
        """Orders already stored: only the columns that can change."""
        _many(conn, _UPDATE_ORDER, [(o.quantity, int(o.reduce_only), o.status, o.filled_quantity, o.average_price,
                                     o.fees_usd, o.updated_ms, o.triggered_ms, o.decision_id, o.reference_price,
                                     _reasons_json(o.reasons), o.seq) for o in orders])

    @staticmethod
    def put_fill(conn: sqlite3.Connection, fill: Fill) -> None:
        conn.execute(_INSERT_FILL, fill_row(fill))

    @staticmethod
    def put_fills(conn: sqlite3.Connection, fills: list[Fill]) -> None:
        _many(conn, _INSERT_FILL_STATE, [f.state() for f in fills])

    @staticmethod
    def put_fill_states(conn: sqlite3.Connection, states: list[tuple[Any, ...]]) -> None:
        """Fills given as `Fill.state()` tuples."""
        _many(conn, _INSERT_FILL_STATE, states)

    @staticmethod
    def put_entries(conn: sqlite3.Connection, entries: list[tuple[Any, ...]]) -> None:
        """Balance changes: (journal_seq, timestamp_ms, kind, asset, amount, balance_after, symbol, ref_id);
        the stored balance of each asset becomes its last balance_after."""
        _many(conn, "INSERT INTO desk_ledger (journal_seq, timestamp_ms, kind, asset, amount, balance_after, "
                    "symbol, ref_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", entries)
        last = {e[3]: e[5] for e in entries}
        _many(conn, "INSERT INTO desk_balances (asset, total) VALUES (?, ?) ON CONFLICT (asset) DO UPDATE SET "
                    "total = excluded.total", list(last.items()))

    @staticmethod
    def put_positions(conn: sqlite3.Connection, positions: list[Position]) -> None:
        _many(conn, _UPSERT_POSITION, [(p.symbol, p.size, p.entry_price, p.margin_mode, p.leverage,
                                        p.isolated_margin_usd, p.realized_pnl_usd, p.fees_usd, p.funding_usd,
                                        p.opened_ms, p.updated_ms) for p in positions])

    @staticmethod
    def put_funding(conn: sqlite3.Connection, f: FundingPayment) -> None:
        conn.execute("INSERT INTO desk_funding (seq, symbol, funding_time_ms, rate, premium, mark_price, "
                     "position_size, payment_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (f.seq, f.symbol, f.funding_time_ms, f.rate, f.premium, f.mark_price, f.position_size,
                      f.payment_usd))

    @staticmethod
    def put_setting(conn: sqlite3.Connection, seq: int, symbol: str, leverage: float, margin_mode: str,
                    timestamp_ms: int) -> None:
        conn.execute("INSERT INTO desk_settings_log (seq, symbol, leverage, margin_mode, timestamp_ms) "
                     "VALUES (?, ?, ?, ?, ?)", (seq, symbol, leverage, margin_mode, timestamp_ms))

    @staticmethod
    def put_deposit(conn: sqlite3.Connection, seq: int, asset: str, amount: float, timestamp_ms: int) -> None:
        conn.execute("INSERT INTO desk_deposits (seq, asset, amount, timestamp_ms) VALUES (?, ?, ?, ?)",
                     (seq, asset, amount, timestamp_ms))

    @staticmethod
    def put_equity(conn: sqlite3.Connection, s: EquitySample) -> None:
        conn.execute("INSERT OR REPLACE INTO desk_equity (timestamp_ms, equity_usd, wallet_usd, unrealized_pnl_usd, "
                     "spot_value_usd, gross_exposure_usd, net_exposure_usd, drawdown_pct) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (s.timestamp_ms, s.equity_usd, s.wallet_usd, s.unrealized_pnl_usd, s.spot_value_usd,
                      s.gross_exposure_usd, s.net_exposure_usd, s.drawdown_pct))

    @staticmethod
    def put_meta(conn: sqlite3.Connection, values: dict[str, str]) -> None:
        conn.executemany("INSERT OR REPLACE INTO desk_meta (key, value) VALUES (?, ?)", list(values.items()))

    # --- reads ----------------------------------------------------------------------------------

    def load(self) -> StoredDesk:
        q = self.state.query
        meta = {r["key"]: r["value"] for r in q("SELECT key, value FROM desk_meta")}
        open_orders = [order_from_row(r) for r in q(f"SELECT * FROM desk_orders WHERE {_OPEN} ORDER BY seq")]
        client_ids = {r["client_order_id"]: r["order_id"] for r in q(
            "SELECT client_order_id, order_id FROM desk_orders WHERE client_order_id IS NOT NULL")}
        balances = {r["asset"]: r["total"] for r in q("SELECT asset, total FROM desk_balances")}
        positions = {r["symbol"]: position_from_row(r) for r in q("SELECT * FROM desk_positions")}
        settings: dict[str, tuple[float, MarginMode]] = {}
        for r in q("SELECT symbol, leverage, margin_mode FROM desk_settings_log ORDER BY seq"):
            settings[r["symbol"]] = (r["leverage"], r["margin_mode"])
        counters = {
            "order": _max(q("SELECT MAX(seq) FROM desk_orders")),
            "fill": _max(q("SELECT COUNT(*) FROM desk_fills")),
            "journal": max(_max(q(f"SELECT MAX(seq) FROM {t}")) for t in
                           ("desk_fills", "desk_funding", "desk_settings_log", "desk_deposits")),
        }
        last_funding = {}
        for r in q("SELECT f.* FROM desk_funding f JOIN (SELECT symbol, MAX(funding_time_ms) AS t FROM desk_funding "
                   "GROUP BY symbol) m ON f.symbol = m.symbol AND f.funding_time_ms = m.t"):
            last_funding[r["symbol"]] = _funding_from_row(r)
        return StoredDesk(meta, open_orders, client_ids, balances, positions, settings, counters, last_funding)

    def get_order(self, order_id: str) -> Order | None:
        rows = self.state.query("SELECT * FROM desk_orders WHERE order_id = ?", (order_id,))
        return order_from_row(rows[0]) if rows else None

    def list_orders(self, *, statuses: Sequence[str] | None, symbol: str | None, since_ms: int | None,
                    until_ms: int | None, limit: int) -> list[Order]:
        where, params = _filters(symbol=symbol, since_ms=since_ms, until_ms=until_ms, time_column="created_ms")
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += list(statuses)
        sql = f"SELECT * FROM desk_orders {_where(where)} ORDER BY seq DESC LIMIT ?"
        return [order_from_row(r) for r in self.state.query(sql, [*params, limit])]

    def list_fills(self, *, symbol: str | None, order_id: str | None, since_ms: int | None, until_ms: int | None,
                   liquidity: str | None, limit: int) -> list[Fill]:
        where, params = _filters(symbol=symbol, since_ms=since_ms, until_ms=until_ms, time_column="timestamp_ms")
        if order_id is not None:
            where.append("order_id = ?")
            params.append(order_id)
        if liquidity is not None:
            where.append("liquidity = ?")
            params.append(liquidity)
        sql = f"SELECT * FROM desk_fills {_where(where)} ORDER BY seq DESC LIMIT ?"
        return [fill_from_row(r) for r in self.state.query(sql, [*params, limit])]

    def list_funding(self, *, symbol: str | None, since_ms: int | None, until_ms: int | None,
                     only_payments: bool, limit: int) -> list[FundingPayment]:
        where, params = _filters(symbol=symbol, since_ms=since_ms, until_ms=until_ms, time_column="funding_time_ms")
        if only_payments:
            where.append("position_size != 0")
        sql = f"SELECT * FROM desk_funding {_where(where)} ORDER BY seq DESC LIMIT ?"
        return [_funding_from_row(r) for r in self.state.query(sql, [*params, limit])]

    def list_equity(self, *, since_ms: int | None, until_ms: int | None, limit: int) -> list[EquitySample]:
        where, params = _filters(symbol=None, since_ms=since_ms, until_ms=until_ms, time_column="timestamp_ms")
        sql = f"SELECT * FROM desk_equity {_where(where)} ORDER BY timestamp_ms DESC LIMIT ?"
        rows = self.state.query(sql, [*params, limit])
        return [EquitySample(r["timestamp_ms"], r["equity_usd"], r["wallet_usd"], r["unrealized_pnl_usd"],
                             r["spot_value_usd"], r["gross_exposure_usd"], r["net_exposure_usd"], r["drawdown_pct"])
                for r in reversed(rows)]

    def fee_totals(self) -> tuple[float, float]:
        """Fees paid and funding received, all time."""
        fees = self.state.query("SELECT COALESCE(SUM(fee_usd), 0) FROM desk_fills")[0][0]
        funding = self.state.query("SELECT COALESCE(SUM(payment_usd), 0) FROM desk_funding")[0][0]
        return float(fees), float(funding)


def _many(conn: sqlite3.Connection, sql: str, rows: list[Any]) -> None:
    """executemany, or execute for the usual single row (half the call overhead)."""
    if len(rows) == 1:
        conn.execute(sql, rows[0])
    else:
        conn.executemany(sql, rows)


def _funding_from_row(r: sqlite3.Row) -> FundingPayment:
    return FundingPayment(r["seq"], r["symbol"], r["funding_time_ms"], r["rate"], r["premium"], r["mark_price"],
                          r["position_size"], r["payment_usd"])


def _max(rows: list[sqlite3.Row]) -> int:
    value = rows[0][0] if rows else None
    return int(value) if value is not None else 0


def _filters(*, symbol: str | None, since_ms: int | None, until_ms: int | None,
             time_column: str) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if symbol is not None:
        where.append("symbol = ?")
        params.append(symbol)
    if since_ms is not None:
        where.append(f"{time_column} >= ?")
        params.append(since_ms)
    if until_ms is not None:
        where.append(f"{time_column} <= ?")
        params.append(until_ms)
    return where, params


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


@dataclass(slots=True)
class Replayed:
    balances: dict[str, float]
    positions: dict[str, Position]


def replay(state: SqlState, instruments: InstrumentTable) -> Replayed:
    """Rebuild balances and positions from empty out of the journal: deposits, settings, fills, funding.

    Uses only the journal records (never the stored balances or positions), in journal order, with the
    same arithmetic as the engine, so a consistent ledger gives back the stored state exactly.
    """
    records: list[tuple[int, str, sqlite3.Row]] = []
    for table, kind in (("desk_deposits", "deposit"), ("desk_settings_log", "setting"), ("desk_fills", "fill"),
                        ("desk_funding", "funding")):
        records += [(r["seq"], kind, r) for r in state.query(f"SELECT * FROM {table}")]
    records.sort(key=lambda item: item[0])
    balances: dict[str, float] = {}
    positions: dict[str, Position] = {}
    settings: dict[str, tuple[float, MarginMode]] = {}
    for _, kind, row in records:
        if kind == "deposit":
            add_balance(balances, row["asset"], row["amount"])
        elif kind == "setting":
            settings[row["symbol"]] = (row["leverage"], cast(MarginMode, row["margin_mode"]))
            if row["symbol"] in positions:
                positions[row["symbol"]].leverage, positions[row["symbol"]].margin_mode = settings[row["symbol"]]
        elif kind == "fill":
            instrument = instruments.by_symbol[row["symbol"]]
            if instrument.is_perpetual:
                leverage, mode = settings.get(row["symbol"], (1.0, "cross"))
                position = positions.setdefault(row["symbol"], Position(row["symbol"], margin_mode=mode,
                                                                        leverage=leverage))
                realized = apply_perp_fill(position, instrument, row["side"], row["quantity"], row["price"])
                position.fees_usd += row["fee_usd"]
                add_balance(balances, SETTLEMENT_ASSET, realized)
                add_balance(balances, SETTLEMENT_ASSET, -row["fee_usd"])
                if row["insurance_usd"]:
                    add_balance(balances, SETTLEMENT_ASSET, row["insurance_usd"])
            else:
                for asset, amount in spot_cash_flows(instrument, row["side"], row["quantity"], row["price"]):
                    add_balance(balances, asset, amount)
                add_balance(balances, instrument.quote, -row["fee_usd"])
        else:
            if row["payment_usd"] != 0.0:
                add_balance(balances, SETTLEMENT_ASSET, row["payment_usd"])
            if row["symbol"] in positions:
                positions[row["symbol"]].funding_usd += row["payment_usd"]
    return Replayed(balances, positions)
