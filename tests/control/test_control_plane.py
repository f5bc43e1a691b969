"""Pause, kill with flatten, breakers, deleverage, cancel-all, risk reason codes and the decision log, on a
real desk (control plane, engine, SQLite) driven by a hand-written market on a simulated clock."""

from __future__ import annotations

import sqlite3

import pytest

from quantdesk.server.errors import InvalidArgument
from quantdesk.tools.desk.model import IntentContext, OrderRequest, Vote

PERP, SPOT = "BTC-USDT-PERP", "BTC-USDT"
T0 = 1_735_689_600_000
MINUTE = 60_000


@pytest.fixture
def flat_market(market_file, ev):
    """BTC spot and perpetual around 95,000 with deep books, then trades at 94,000 a minute later."""
    return market_file([
        ev.book(SPOT, T0, [(94999.99, 50.0)], [(95000.01, 50.0)]),
        ev.book(PERP, T0, [(94999.9, 50.0), (94999.0, 50.0)], [(95000.1, 50.0), (95001.0, 50.0)]),
        ev.trade(PERP, T0 + MINUTE, 94000.0, 100.0),
    ])


def codes(order) -> list[str]:
    return [r.code for r in order.reasons]


def test_pause_refuses_new_exposure_but_lets_reductions_cancels_and_resting_orders_through(desks, flat_market):
    desk = desks.open(replay=flat_market)
    engine, control = desk.engine, desk.control
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.3))
    resting = engine.place_order(OrderRequest(PERP, "buy", "limit", 0.1, price=94500.0)).order
    to_cancel = engine.place_order(OrderRequest(PERP, "buy", "limit", 0.1, price=94400.0)).order

    assert control.pause("review", "tester")["action"] == "paused"
    assert control.pause("again", "tester")["action"] == "already_paused"
    more = engine.place_order(OrderRequest(PERP, "buy", "market", 0.1)).order
    assert more.status == "rejected" and codes(more) == ["TRADING_PAUSED"]
    spot = engine.place_order(OrderRequest(SPOT, "buy", "market", 0.01)).order
    assert codes(spot) == ["TRADING_PAUSED"]
    flagged = engine.place_order(OrderRequest(PERP, "sell", "market", 0.1, reduce_only=True)).order
    assert flagged.status == "filled"
    # a plain order that only reduces goes through, and stays unable to add exposure for its whole life
    plain = engine.place_order(OrderRequest(PERP, "sell", "limit", 0.1, price=96000.0)).order
    assert plain.status == "open" and plain.reduce_only is True
    assert engine.cancel_order(to_cancel.order_id, None).status == "cancelled"

    engine.advance(T0 + 2 * MINUTE)  # the print at 94,000 goes through the bid that rested before the pause
    assert engine.get_order(resting.order_id).status == "filled"
    assert engine.positions[PERP].size == pytest.approx(0.3)
    assert control.resume(None, "tester")["action"] == "resumed"
    assert engine.place_order(OrderRequest(PERP, "buy", "market", 0.1)).order.status == "filled"


def test_kill_cancels_everything_flattens_once_per_episode_and_answers_in_the_ais_shape(desks, flat_market):
    desk = desks.open(replay=flat_market)
    engine, control = desk.engine, desk.control
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.3))
    engine.place_order(OrderRequest(SPOT, "buy", "market", 0.5))
    open_ids = {engine.place_order(OrderRequest(PERP, "buy", "limit", 0.01, price=p)).order.order_id
                for p in (94000.0, 93000.0)}

    first = control.kill("drill", flatten=True, actor="tester")
    assert first["already_killed"] is False and first["state"] == "killed"
    assert {c["order_id"] for c in first["cancelled"]} == open_ids
    assert first["cancel_instructions"][:2] == [{"tool": "cancel_all_orders", "symbol": "BTCUSDT"},
                                                {"tool": "cancel_spot_all_orders", "symbol": "BTCUSDT"}]
    [close] = first["flatten_orders"]
    assert (close["symbol"], close["side"], close["reduce_only"], close["status"]) == (PERP, "sell", True, "filled")
    assert sum(f["quantity"] for f in first["flatten_fills"]) == pytest.approx(0.3)
    assert engine.positions[PERP].size == 0.0
    assert engine.balances["BTC"] == pytest.approx(0.5), "spot holdings are not positions: flatten leaves them"

    second = control.kill("again", flatten=True, actor="tester")
    assert second["already_killed"] is True and second["already_flattened"] is True
    assert second["cancelled"] == [] and second["flatten_orders"] == []
    assert control.status()["flattened_this_episode"] is True
    assert codes(engine.place_order(OrderRequest(PERP, "buy", "market", 0.01)).order) == ["TRADING_HALTED"]


def test_a_daily_loss_breach_trips_the_same_kill_switch_and_records_a_risk_event(desks, market_file, ev):
    falling = market_file([ev.book(PERP, T0, [(94999.9, 50.0)], [(95000.1, 50.0)]),
                           ev.book(PERP, T0 + MINUTE, [(93999.9, 50.0)], [(94000.1, 50.0)]),
                           ev.book(PERP, T0 + 2 * MINUTE, [(89999.9, 50.0)], [(90000.1, 50.0)])])
    desk = desks.open(replay=falling)
    engine, control = desk.engine, desk.control
    control.set_limits({"max_daily_loss_pct": 0.02}, "tester")
    engine.place_order(OrderRequest(PERP, "buy", "market", 1.0))
    resting = engine.place_order(OrderRequest(PERP, "sell", "limit", 0.5, price=99000.0)).order

    engine.advance(T0 + MINUTE)  # down about 1 %: below the limit
    assert control.status()["state"] == "running"
    engine.advance(T0 + 3 * MINUTE)  # down about 5 %

    status = control.status()
    assert (status["state"], status["actor"]) == ("killed", "risk_engine")
    assert status["kill_reason"].startswith("DAILY_LOSS_LIMIT")
    assert engine.get_order(resting.order_id).status == "cancelled"
    [event] = control.log.risk_events(since_ms=None, code=None, limit=10)
    assert event.code == "DAILY_LOSS_LIMIT" and event.details["day_start_equity_usd"] == 100_000.0
    assert engine.positions[PERP].size == 1.0, "a breaker cancels orders; it does not close positions"
    assert desk.control.metrics.breaker_trips == 1


def test_deleverage_sells_a_share_of_the_live_position_even_when_killed(desks, flat_market):
    desk = desks.open(replay=flat_market)
    engine, control = desk.engine, desk.control
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.3))
    half = control.deleverage("BTCUSDT", 0.5, "tester")  # the venue symbol names the perpetual
    assert (half["action"], half["side"], half["quantity"]) == ("deleveraged", "sell", 0.15)
    assert half["order"]["reduce_only"] is True and half["position_size_after"] == pytest.approx(0.15)
    control.kill("stop", flatten=False, actor="tester")
    rest = control.deleverage(PERP, 1.0, "tester")
    assert rest["action"] == "deleveraged" and rest["position_size_after"] == 0.0
    assert control.deleverage(PERP, 1.0, "tester")["action"] == "no_position"
    with pytest.raises(InvalidArgument) as caught:
        control.deleverage(SPOT, 0.5, "tester")
    assert caught.value.problems[0].path == "$.symbol"
    sources = {d.source for d in control.log.entries(decision_type="order_intent")}
    assert "control:deleverage" in sources


def test_cancel_all_gives_one_result_per_order_and_nothing_the_second_time(desks, flat_market):
    desk = desks.open(replay=flat_market)
    engine, control = desk.engine, desk.control
    ids = [engine.place_order(OrderRequest(PERP, "buy", "limit", 0.01, price=94000.0 - i)).order.order_id
           for i in range(3)]
    first = control.cancel_all(None, "tester")
    assert [c["order_id"] for c in first["cancelled"]] == ids and first["count"] == 3
    assert control.cancel_all(None, "tester")["cancelled"] == []
    venue = engine.place_order(OrderRequest(PERP, "buy", "limit", 0.01, price=94000.0)).order
    by_venue = control.cancel_all(["BTCUSDT"], "tester")
    assert [c["order_id"] for c in by_venue["cancelled"]] == [venue.order_id]
    assert by_venue["symbols"] == [SPOT, PERP]
    with pytest.raises(InvalidArgument) as caught:
        control.cancel_all(["BTC-USDT-PERP", "DOGE-USDT"], "tester")
    assert caught.value.problems[0].path == "$.symbols[1]"


@pytest.mark.parametrize(("limits", "request_", "code"), [
    ({"max_order_notional_usd": 1_000.0}, OrderRequest(PERP, "buy", "market", 0.02), "NOTIONAL_EXCEEDS_MAX_PER_ORDER"),
    ({"max_position_notional_usd": 1_000.0}, OrderRequest(PERP, "buy", "market", 0.02), "POSITION_LIMIT_EXCEEDED"),
    ({"max_gross_exposure_usd": 1_000.0}, OrderRequest(PERP, "buy", "market", 0.02), "GROSS_EXPOSURE_LIMIT"),
    ({"max_net_exposure_usd": 1_000.0}, OrderRequest(PERP, "sell", "market", 0.02), "NET_EXPOSURE_LIMIT"),
    ({"max_leverage": 0.01}, OrderRequest(PERP, "buy", "market", 0.02), "LEVERAGE_LIMIT"),
    ({"max_order_notional_usd": None, "max_position_notional_usd": None, "max_leverage": None},
     OrderRequest(PERP, "buy", "market", 6.0), "INSUFFICIENT_MARGIN"),
    ({}, OrderRequest(SPOT, "buy", "market", 1.1), "INSUFFICIENT_BALANCE"),
    ({}, OrderRequest(SPOT, "sell", "market", 0.01), "INSUFFICIENT_BALANCE"),
    ({}, OrderRequest(PERP, "sell", "market", 0.01, reduce_only=True), "REDUCE_ONLY_WOULD_INCREASE_POSITION"),
    ({}, OrderRequest(PERP, "buy", "limit", 0.01, price=95000.1, post_only=True), "POST_ONLY_WOULD_TAKE"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_each_risk_check_refuses_with_its_stable_code(desks, flat_market, limits, request_, code):
    desk = desks.open(replay=flat_market)
    if limits:
        desk.control.set_limits(limits, "tester")
    balances = dict(desk.engine.balances)
    order = desk.engine.place_order(request_).order
    assert order.status == "rejected" and code in codes(order)
    assert desk.engine.balances == balances and desk.engine.open_orders == {}
    [decision] = desk.control.log.entries(decision_type="order_intent")
    assert decision.risk_passed is False and code in decision.risk_reasons


def test_the_order_rate_limit_counts_orders_in_the_last_second_of_desk_time(desks, flat_market):
    desk = desks.open(replay=flat_market)
    desk.control.set_limits({"max_orders_per_second": 3}, "tester")
    engine = desk.engine
    results = [engine.place_order(OrderRequest(PERP, "buy", "limit", 0.01, price=90000.0)).order for _ in range(4)]
    assert [o.status for o in results] == ["open", "open", "open", "rejected"]
    assert codes(results[3]) == ["RATE_LIMIT_EXCEEDED"]
    engine.advance(engine.now_ms + 1000)
    assert engine.place_order(OrderRequest(PERP, "buy", "limit", 0.01, price=90000.0)).order.status == "open"


@pytest.mark.parametrize(("request_", "path", "code"), [
    (OrderRequest(PERP, "buy", "limit", 0.01, price=95000.05), "$.price", "PRICE_NOT_ON_TICK"),
    (OrderRequest(PERP, "buy", "market", 0.0105), "$.quantity", "QUANTITY_NOT_ON_LOT"),
    (OrderRequest(PERP, "buy", "market", 0.001), "$.quantity", "NOTIONAL_BELOW_MINIMUM"),
    (OrderRequest(PERP, "buy", "stop_limit", 0.01, price=96000.0, stop_price=96000.05), "$.stop_price",
     "PRICE_NOT_ON_TICK"),
], ids=["tick", "lot", "min-notional", "stop-tick"])
def test_grid_problems_are_errors_naming_the_field_with_their_code_and_are_logged(desks, flat_market, request_,
                                                                                 path, code):
    desk = desks.open(replay=flat_market)
    with pytest.raises(InvalidArgument) as caught:
        desk.engine.place_order(request_)
    assert caught.value.problems[0].path == path and caught.value.problems[0].message.startswith(code)
    assert desk.engine.open_orders == {} and desk.engine.ledger.list_orders(
        statuses=None, symbol=None, since_ms=None, until_ms=None, limit=10) == []
    [decision] = desk.control.log.entries(decision_type="order_intent")
    assert decision.risk_reasons == [code] and decision.selected_order_id is None


def test_the_decision_log_keeps_every_vote_filters_and_refuses_edits(desks, flat_market):
    desk = desks.open(replay=flat_market)
    engine, log = desk.engine, desk.control.log
    votes = (Vote("momentum", 0.6, "sig-1", "long"), Vote("momentum", 0.7, "sig-2", "long"))
    passed = engine.place_order(OrderRequest(PERP, "buy", "market", 0.01),
                                IntentContext(source="strategy:test", agent_votes=votes, signal_id="sig-2")).order
    engine.place_order(OrderRequest(PERP, "sell", "market", 0.05, reduce_only=True))
    engine.place_order(OrderRequest(SPOT, "buy", "market", 0.01))

    [entry] = log.entries(source="strategy:test")
    assert [v["signal_id"] for v in entry.agent_votes] == ["sig-1", "sig-2"]
    assert (entry.selected_signal_id, entry.selected_order_id, entry.risk_passed) == ("sig-2", passed.order_id, True)
    assert entry.decision_id.startswith("decision_") and passed.decision_id == entry.decision_id
    assert [d.symbol for d in log.entries(risk_passed=True, decision_type="order_intent")] == [SPOT, PERP, PERP]
    assert len(log.entries(symbol=SPOT)) == 1 and len(log.entries(since_ms=T0 + 1)) == 0
    with pytest.raises(sqlite3.DatabaseError):
        with desk.state.transaction() as conn:
            conn.execute("UPDATE control_decisions SET risk_passed = 1")
    with pytest.raises(sqlite3.DatabaseError):
        with desk.state.transaction() as conn:
            conn.execute("DELETE FROM control_decisions")


def test_limits_persist_across_a_restart(desks, flat_market):
    desk = desks.open("persist", replay=flat_market)
    desk.control.set_limits({"max_leverage": 3.0, "max_drawdown_pct": 0.1}, "tester")
    desk.control.set_limits({"max_orders_per_second": None}, "tester")
    desks.close(desk)
    again = desks.open("persist", replay=flat_market).control.limits()
    assert (again.max_leverage, again.max_drawdown_pct, again.max_orders_per_second) == (3.0, 0.1, None)
