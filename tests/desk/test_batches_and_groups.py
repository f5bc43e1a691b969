"""Batch placement and grouped market steps keep the one-order-at-a-time rules: a batch gives the same orders,
fills, decisions, events and balances as the same orders placed one by one; a failure in the middle of a
batch or of a group of trade prints leaves the ledger as it was before it; an older ledger's index is
migrated and its open orders restored."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from quantdesk.server.errors import InvalidArgument, QuantdeskError
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.desk.ledger import replay
from quantdesk.tools.desk.model import OrderRequest

PERP, SPOT = "BTC-USDT-PERP", "BTC-USDT"
T0 = 1_735_689_600_000
SECOND = 1_000


@pytest.fixture
def market(market_file: Any, ev: Any) -> Any:
    """Deep books, then a falling tape of prints that goes through a ladder of resting bids."""
    return market_file([
        ev.book(SPOT, T0, [(94999.99, 5.0)], [(95000.01, 5.0)]),
        ev.book(PERP, T0, [(94999.9, 0.5), (94999.0, 0.5), (94998.0, 5.0)],
                [(95000.1, 0.5), (95001.0, 0.5), (95002.0, 5.0)]),
        *[ev.trade(PERP, T0 + (10 + k) * SECOND, 94900.0 - 10.0 * k, 0.05) for k in range(30)],
    ])


def _orders() -> list[OrderRequest]:
    return [
        OrderRequest(PERP, "buy", "market", 0.7),  # walks two levels
        OrderRequest(PERP, "sell", "limit", 0.1, price=95100.0, client_order_id="ask-1"),
        OrderRequest(PERP, "buy", "limit", 0.1, price=95000.1, post_only=True),  # would take: rejected
        OrderRequest(PERP, "buy", "limit", 0.1, price=94999.95),  # off the tick: an error naming the field
        OrderRequest(PERP, "sell", "limit", 0.3, price=95200.0, client_order_id="ask-1"),  # replays the first
        OrderRequest(PERP, "sell", "market", 0.9, reduce_only=True),  # clamped to the live position
        OrderRequest(SPOT, "buy", "market", 0.2),
        OrderRequest("DOGE-USDT", "buy", "market", 1.0),  # unknown symbol
        *[OrderRequest(PERP, "buy", "limit", 0.01, price=94890.0 - 10.0 * k) for k in range(12)],
    ]


def _outcome(result: Any) -> dict[str, Any]:
    if isinstance(result, QuantdeskError):
        return {"error": type(result).__name__, "message": str(result)}
    return {"order": result.order.to_dict(), "fills": [f.to_dict() for f in result.fills], "replayed": result.replayed}


def _record(desk: Any, bus_events: list[Any]) -> bytes:
    engine = desk.engine
    decisions = [d.to_dict() for d in desk.control.log.entries(limit=1000)]
    orders = [o.to_dict() for o in engine.ledger.list_orders(statuses=None, symbol=None, since_ms=None,
                                                             until_ms=None, limit=1000)]
    fills = [f.to_dict() for f in engine.ledger.list_fills(symbol=None, order_id=None, since_ms=None, until_ms=None,
                                                           liquidity=None, limit=1000)]
    positions = {s: p.key() for s, p in engine.positions.items()}
    events = [{k: v for k, v in e.to_dict().items() if k != "published_ms"} for e in bus_events]
    return json.dumps({"decisions": decisions, "orders": orders, "fills": fills, "balances": engine.balances,
                       "positions": positions, "events": events}, sort_keys=True).encode()


def test_a_batch_gives_exactly_what_the_same_orders_placed_one_by_one_give(desks: Any, market: Any) -> None:
    one_bus, batch_bus = EventBus(), EventBus()
    one, batch = desks.open("one", replay=market, bus=one_bus), desks.open("batch", replay=market, bus=batch_bus)
    one_events, batch_events = one_bus.subscribe(max_queue=10_000), batch_bus.subscribe(max_queue=10_000)

    singles = []
    for request in _orders():
        try:
            singles.append(one.engine.place_order(request))
        except QuantdeskError as exc:
            singles.append(exc)
    results = batch.engine.place_orders(_orders())

    assert [_outcome(r) for r in results] == [_outcome(r) for r in singles]
    assert [type(r).__name__ for r in results[2:8]] == ["PlaceResult", "InvalidArgument", "PlaceResult",
                                                        "PlaceResult", "PlaceResult", "InvalidArgument"]
    assert results[4].replayed is True and results[4].order.order_id == results[1].order.order_id
    assert [r.code for r in results[5].order.reasons] == ["REDUCE_ONLY_CLAMPED"]
    for desk in (one, batch):  # the resting ladder fills on the tape, in one group of prints
        desk.engine.advance(T0 + 60 * SECOND)
    assert _record(batch, batch_events.poll()) == _record(one, one_events.poll())
    filled = [o for o in batch.engine.ledger.list_orders(statuses=["filled"], symbol=PERP, since_ms=None,
                                                         until_ms=None, limit=100) if o.price is not None]
    assert len(filled) > 5, "the tape went through the ladder"


def test_a_late_subscriber_gets_the_same_events_from_the_history_as_a_live_one(desks: Any, market: Any) -> None:
    bus = EventBus()
    desk = desks.open(replay=market, bus=bus)
    live = bus.subscribe(max_queue=10_000)
    start = bus.last_seq
    desk.engine.place_orders(_orders())
    desk.engine.advance(T0 + 60 * SECOND)
    late = bus.subscribe(since_seq=start, max_queue=10_000)
    seen = [e.to_dict() for e in live.poll()]
    assert len(seen) > 50 and [e.to_dict() for e in late.poll()] == seen


def test_a_breaker_tripped_inside_a_batch_commits_what_came_before_and_refuses_the_rest(
        desks: Any, market: Any) -> None:
    desk = desks.open(replay=market)
    desk.control.set_limits({"max_drawdown_pct": 1e-6}, "tester")
    results = desk.engine.place_orders([OrderRequest(PERP, "buy", "market", 0.1),
                                        OrderRequest(PERP, "sell", "market", 0.1),
                                        OrderRequest(PERP, "buy", "limit", 0.1, price=94000.0)])
    first, second, third = (r.order for r in results)
    assert first.status == "filled"
    assert (second.status, third.status) == ("rejected", "rejected")
    assert [r.code for r in second.reasons] == ["TRADING_HALTED"]
    assert [r.code for r in third.reasons] == ["TRADING_HALTED", "DRAWDOWN_LIMIT"]
    status = desk.control.status()
    assert (status["state"], status["actor"]) == ("killed", "risk_engine")
    assert status["kill_reason"].startswith("DRAWDOWN_LIMIT")


def _fail_on(state_path: Any, table: str, seq: int) -> None:
    """A real SQLite failure on one row (what a full disk or an I/O error looks like to the engine)."""
    with sqlite3.connect(state_path) as conn:
        conn.execute(f"CREATE TRIGGER fail_once BEFORE INSERT ON {table} WHEN NEW.seq = {seq} "
                     "BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END")


def _clear_failure(state_path: Any) -> None:
    with sqlite3.connect(state_path) as conn:
        conn.execute("DROP TRIGGER fail_once")


def _state(desk: Any) -> tuple[Any, ...]:
    engine = desk.engine
    return ({s: p.key() for s, p in engine.positions.items()}, dict(engine.balances),
            {i: o.to_dict() for i, o in engine.open_orders.items()}, engine.now_ms, engine.metrics.fills)


def test_a_failure_in_the_middle_of_a_batch_leaves_nothing_of_it(desks: Any, market: Any) -> None:
    desk = desks.open(replay=market)
    engine = desk.engine
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.1))
    before = _state(desk)[:4]
    path = desk.state.path
    _fail_on(path, "desk_orders", engine._order_seq + 3)
    with pytest.raises(sqlite3.DatabaseError, match="simulated storage failure"):
        engine.place_orders([OrderRequest(PERP, "buy", "market", 0.1)] * 5)
    assert _state(desk)[:4] == before
    assert len(engine.ledger.list_orders(statuses=None, symbol=None, since_ms=None, until_ms=None, limit=100)) == 1
    _clear_failure(path)
    assert [r.order.order_id for r in engine.place_orders([OrderRequest(PERP, "sell", "market", 0.1)])] == [
        "ord-00000002"]


def test_a_failure_inside_a_group_of_prints_rolls_the_group_back_and_a_second_advance_redoes_it(
        desks: Any, market: Any) -> None:
    reference, failing = desks.open("reference", replay=market), desks.open("failing", replay=market)
    ladder = [OrderRequest(PERP, "buy", "limit", 0.01, price=94890.0 - 10.0 * k) for k in range(12)]
    for desk in (reference, failing):
        desk.engine.place_orders(ladder)
    before = _state(failing)
    path = failing.state.path
    _fail_on(path, "desk_fills", failing.engine._journal_seq + 5)
    with pytest.raises(sqlite3.DatabaseError, match="simulated storage failure"):
        failing.engine.advance(T0 + 60 * SECOND)
    assert _state(failing)[:3] == before[:3], "the whole group of prints rolled back"
    assert replay(failing.state, failing.engine.instruments).balances == failing.engine.balances
    _clear_failure(path)
    for desk in (reference, failing):
        desk.engine.advance(T0 + 60 * SECOND)
    assert _state(failing)[:4] == _state(reference)[:4]
    assert failing.engine.ledger.list_fills(symbol=None, order_id=None, since_ms=None, until_ms=None, liquidity=None,
                                            limit=100) == reference.engine.ledger.list_fills(
        symbol=None, order_id=None, since_ms=None, until_ms=None, liquidity=None, limit=100)


def test_an_older_ledger_gets_the_open_order_index_rebuilt_and_keeps_its_open_orders(desks: Any, market: Any) -> None:
    desk = desks.open(replay=market)
    ids = [r.order.order_id for r in desk.engine.place_orders(
        [OrderRequest(PERP, "buy", "limit", 0.1, price=p) for p in (94000.0, 93000.0)])]
    path = desk.state.path
    desks.close(desk)
    with sqlite3.connect(path) as conn:  # the index as the first ledgers were made
        conn.execute("DROP INDEX desk_orders_open")
        conn.execute("CREATE INDEX desk_orders_open ON desk_orders (status) "
                     "WHERE status IN ('pending_trigger', 'open', 'partially_filled')")

    again = desks.open(replay=market)
    assert list(again.engine.open_orders) == ids
    with sqlite3.connect(path) as conn:
        [(sql,)] = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'desk_orders_open'").fetchall()
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM desk_orders WHERE status = 'open' OR "
                            "status = 'partially_filled' OR status = 'pending_trigger'").fetchall()
    assert " IN (" not in sql and "desk_orders_open" in str(plan)


def test_an_invalid_order_in_a_batch_names_its_field_and_leaves_its_decision(desks: Any, market: Any) -> None:
    desk = desks.open(replay=market)
    [result] = desk.engine.place_orders([OrderRequest(PERP, "buy", "limit", 0.0015, price=94000.0)])
    assert isinstance(result, InvalidArgument)
    assert [p.path for p in result.problems] == ["$.quantity"] and "QUANTITY_NOT_ON_LOT" in str(result)
    [decision] = desk.control.log.entries(limit=10, decision_type="order_intent")
    assert decision.risk_passed is False and decision.risk_reasons == ["QUANTITY_NOT_ON_LOT"]
