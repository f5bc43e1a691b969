"""Order types and their rules on a hand-written market: idempotent client ids, FOK/IOC, post-only, stops,
reduce-only for an order's whole life, spot balances, isolated margin, cancels of the wrong order."""

from __future__ import annotations

import pytest

from quantdesk.server.errors import Conflict, InvalidArgument, NotFound
from quantdesk.tools.desk.model import OrderRequest

PERP, SPOT = "BTC-USDT-PERP", "BTC-USDT"
T0 = 1_735_689_600_000
SECOND = 1_000


@pytest.fixture
def market(market_file, ev):
    return market_file([
        ev.book(SPOT, T0, [(94999.99, 2.0)], [(95000.01, 2.0)]),
        ev.book(PERP, T0, [(94999.9, 0.5), (94999.0, 0.5)], [(95000.1, 0.5), (95001.0, 0.5)]),
        ev.trade(PERP, T0 + 10 * SECOND, 95100.0, 1.0, "buy"),
        ev.trade(PERP, T0 + 20 * SECOND, 94800.0, 2.0),
        ev.trade(PERP, T0 + 30 * SECOND, 94700.0, 2.0),
    ])


def test_a_repeated_client_order_id_returns_the_first_order(desks, market):
    engine = desks.open(replay=market).engine
    first = engine.place_order(OrderRequest(PERP, "buy", "market", 0.1, client_order_id="abc-1"))
    again = engine.place_order(OrderRequest(PERP, "buy", "market", 0.3, client_order_id="abc-1"))
    assert again.replayed is True and again.order.order_id == first.order.order_id
    assert [f.fill_id for f in again.fills] == [f.fill_id for f in first.fills]
    assert engine.positions[PERP].size == 0.1
    assert engine.find_order(None, "abc-1").order_id == first.order.order_id


def test_fok_fills_completely_or_not_at_all_and_ioc_expires_its_remainder(desks, market):
    engine = desks.open(replay=market).engine
    fok = engine.place_order(OrderRequest(PERP, "buy", "limit", 0.8, price=95000.1, time_in_force="FOK"))
    assert fok.order.status == "expired" and fok.fills == [] and [r.code for r in fok.order.reasons] == [
        "FOK_NOT_FILLABLE"]
    ioc = engine.place_order(OrderRequest(PERP, "buy", "limit", 0.8, price=95000.1, time_in_force="IOC"))
    assert ioc.order.status == "expired" and ioc.order.filled_quantity == 0.5
    assert [r.code for r in ioc.order.reasons] == ["IOC_REMAINDER"]
    market_order = engine.place_order(OrderRequest(PERP, "buy", "market", 0.8))
    assert market_order.order.time_in_force == "IOC"
    assert (market_order.order.status, market_order.order.filled_quantity) == ("expired", 0.5)


def test_a_marketable_gtc_limit_takes_what_it_can_and_rests_the_rest_as_maker(desks, market):
    engine = desks.open(replay=market).engine
    result = engine.place_order(OrderRequest(PERP, "buy", "limit", 0.7, price=95000.1))
    assert [(f.price, f.quantity, f.liquidity) for f in result.fills] == [(95000.1, 0.5, "taker")]
    assert result.order.status == "partially_filled" and result.order.remaining == pytest.approx(0.2)
    engine.advance(T0 + 25 * SECOND)  # the print at 94,800 goes through 95,000.1
    done = engine.get_order(result.order.order_id)
    assert done.status == "filled"
    last = engine.ledger.list_fills(symbol=None, order_id=done.order_id, since_ms=None, until_ms=None,
                                    liquidity=None, limit=1)[0]
    assert (last.price, last.quantity, last.liquidity) == (95000.1, 0.2, "maker")


def test_a_stop_waits_for_a_trade_at_its_price_then_executes_as_a_market_order(desks, market):
    engine = desks.open(replay=market).engine
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.2))
    stop = engine.place_order(OrderRequest(PERP, "sell", "stop_market", 0.2, stop_price=94850.0,
                                           reduce_only=True)).order
    assert stop.status == "pending_trigger"
    engine.advance(T0 + 15 * SECOND)
    assert engine.get_order(stop.order_id).status == "pending_trigger"
    engine.advance(T0 + 25 * SECOND)
    done = engine.get_order(stop.order_id)
    assert done.status == "filled" and done.triggered_ms == T0 + 20 * SECOND
    assert done.reference_price == 94999.9 and engine.positions[PERP].size == 0.0
    immediate = engine.place_order(OrderRequest(PERP, "buy", "stop_market", 0.1, stop_price=94000.0)).order
    assert [r.code for r in immediate.reasons] == ["STOP_WOULD_TRIGGER_IMMEDIATELY"]


def test_a_resting_reduce_only_order_shrinks_with_its_position_and_is_cancelled_when_it_closes(desks, market):
    engine = desks.open(replay=market).engine
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.4))
    take_profit = engine.place_order(OrderRequest(PERP, "sell", "limit", 0.4, price=99000.0, reduce_only=True))
    clamped = engine.place_order(OrderRequest(PERP, "sell", "limit", 0.9, price=99500.0, reduce_only=True))
    assert clamped.order.quantity == 0.4 and [r.code for r in clamped.order.reasons] == ["REDUCE_ONLY_CLAMPED"]

    engine.place_order(OrderRequest(PERP, "sell", "market", 0.3))
    shrunk = engine.get_order(take_profit.order.order_id)
    assert shrunk.status == "open" and shrunk.quantity == pytest.approx(0.1)
    assert shrunk.reasons[-1].code == "REDUCE_ONLY_SHRUNK"
    engine.place_order(OrderRequest(PERP, "sell", "market", 0.1))
    for order_id in (take_profit.order.order_id, clamped.order.order_id):
        closed = engine.get_order(order_id)
        assert closed.status == "cancelled" and closed.reasons[-1].code == "REDUCE_ONLY_POSITION_CLOSED"
    assert engine.positions[PERP].size == 0.0


def test_spot_fills_move_both_assets_and_charge_the_fee_in_the_quote(desks, market):
    engine = desks.open(replay=market).engine
    buy = engine.place_order(OrderRequest(SPOT, "buy", "market", 0.5))
    assert engine.balances["BTC"] == 0.5
    assert engine.balances["USDT"] == pytest.approx(100_000 - 0.5 * 95000.01 * 1.001, abs=1e-9)
    assert buy.fills[0].fee_usd == pytest.approx(0.5 * 95000.01 * 10e-4, abs=1e-12)
    resting = engine.place_order(OrderRequest(SPOT, "sell", "limit", 0.4, price=96000.0)).order
    over = engine.place_order(OrderRequest(SPOT, "sell", "market", 0.2)).order
    assert [r.code for r in over.reasons] == ["INSUFFICIENT_BALANCE"], "0.4 of the 0.5 BTC is locked by an order"
    engine.cancel_order(resting.order_id, None)
    assert engine.place_order(OrderRequest(SPOT, "sell", "market", 0.5)).order.status == "filled"
    assert engine.balances["BTC"] == 0.0


def test_an_isolated_position_reserves_its_own_margin_and_its_mode_is_fixed_while_open(desks, market):
    engine = desks.open(replay=market).engine
    engine.set_margin_mode(PERP, "isolated")
    engine.set_leverage(PERP, 8)
    assert engine.place_order(OrderRequest(PERP, "buy", "market", 0.4)).order.status == "filled"
    position = engine.positions[PERP]
    assert position.isolated_margin_usd == pytest.approx(0.4 * 95000.1 / 8, abs=1e-9)
    with pytest.raises(Conflict):
        engine.set_margin_mode(PERP, "cross")
    with pytest.raises(InvalidArgument) as caught:
        engine.set_leverage(PERP, 500)
    assert caught.value.problems[0].path == "$.leverage"
    with pytest.raises(InvalidArgument):
        engine.set_leverage(SPOT, 2)


def test_cancelling_a_filled_or_unknown_order_is_a_clear_error_that_changes_nothing(desks, market):
    engine = desks.open(replay=market).engine
    filled = engine.place_order(OrderRequest(PERP, "buy", "market", 0.1)).order
    balances = dict(engine.balances)
    with pytest.raises(Conflict) as caught:
        engine.cancel_order(filled.order_id, None)
    assert "order_id" in caught.value.message and "filled" in caught.value.message
    with pytest.raises(NotFound):
        engine.cancel_order("ord-99999999", None)
    with pytest.raises(NotFound):
        engine.cancel_order(None, "never-used")
    assert engine.balances == balances and engine.get_order(filled.order_id).status == "filled"


@pytest.mark.parametrize(("request_", "path"), [
    (OrderRequest("DOGE-USDT", "buy", "market", 1.0), "$.symbol"),
    (OrderRequest(PERP, "buy", "limit", 0.1), "$.price"),
    (OrderRequest(PERP, "buy", "market", 0.1, price=95000.0), "$.price"),
    (OrderRequest(PERP, "buy", "stop_limit", 0.1, price=95000.0), "$.stop_price"),
    (OrderRequest(PERP, "buy", "market", 0.1, post_only=True), "$.post_only"),
    (OrderRequest(SPOT, "sell", "market", 0.1, reduce_only=True), "$.reduce_only"),
], ids=["unknown-symbol", "limit-without-price", "market-with-price", "stop-without-stop", "post-only-market",
        "reduce-only-spot"])
def test_malformed_orders_name_the_field_and_change_nothing(desks, market, request_, path):
    engine = desks.open(replay=market).engine
    with pytest.raises(InvalidArgument) as caught:
        engine.place_order(request_)
    assert caught.value.problems[0].path == path
    assert engine.open_orders == {} and engine.positions == {}
    assert engine.balances == {"USDT": 100_000.0}
