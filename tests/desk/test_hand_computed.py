"""Cases computed by hand on hand-written markets: book walking, funding at the boundary, liquidation at the
computed price, and the trade-through rule for resting limits."""

from __future__ import annotations

import pytest

from quantdesk.tools.desk.model import OrderRequest

PERP, SPOT = "BTC-USDT-PERP", "BTC-USDT"
HOUR = 3_600_000
T0 = 1_735_689_600_000


def test_a_market_buy_walks_three_levels_with_exact_average_price_fee_and_slippage(desks, market_file, ev):
    path = market_file([ev.book(PERP, T0, [(94999.9, 1.0)], [(95000.0, 0.010), (95000.5, 0.020), (95001.0, 0.050)])])
    engine = desks.open(replay=path).engine

    result = engine.place_order(OrderRequest(PERP, "buy", "market", 0.05))

    assert [(f.price, f.quantity) for f in result.fills] == [(95000.0, 0.01), (95000.5, 0.02), (95001.0, 0.02)]
    assert result.order.status == "filled"
    # (0.01 x 95000.0 + 0.02 x 95000.5 + 0.02 x 95001.0) / 0.05 = 4750.03 / 0.05
    assert result.order.average_price == pytest.approx(95000.6, abs=1e-9)
    # taker 5 bps of 4750.03 USDT
    assert sum(f.fee_usd for f in result.fills) == pytest.approx(2.375015, abs=1e-9)
    assert result.order.fees_usd == pytest.approx(2.375015, abs=1e-9)
    assert all(f.liquidity == "taker" and f.reference_price == 95000.0 for f in result.fills)
    assert [round(f.slippage_bps, 9) for f in result.fills] == [0.0, round(0.5 / 95000 * 1e4, 9),
                                                                round(1.0 / 95000 * 1e4, 9)]
    # what the order took is gone from the book until the next snapshot
    assert engine.markets[PERP].book is not None and engine.markets[PERP].book.asks == [[95001.0, 0.03]]
    position = engine.positions[PERP]
    assert position.size == 0.05 and position.entry_price == pytest.approx(95000.6, abs=1e-9)
    assert engine.balances["USDT"] == pytest.approx(100_000 - 2.375015, abs=1e-9)


def test_funding_is_paid_at_the_interval_boundary_on_the_mark_price(desks, market_file, ev):
    # index (spot mid) 95000.0, mark (perpetual mid) 95095.0: premium 10 bps all period long
    path = market_file([ev.book(SPOT, T0, [(94999.99, 5.0)], [(95000.01, 5.0)]),
                        ev.book(PERP, T0, [(95094.9, 5.0)], [(95095.1, 5.0)])])
    desk = desks.open(replay=path)
    engine = desk.engine
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.1))

    engine.advance(T0 + 8 * HOUR - 1000)
    assert engine.ledger.list_funding(symbol=PERP, since_ms=None, until_ms=None, only_payments=False, limit=10) == []

    engine.advance(T0 + 8 * HOUR)
    [payment] = engine.ledger.list_funding(symbol=PERP, since_ms=None, until_ms=None, only_payments=False, limit=10)
    # binance: F = P + clamp(I - P, -0.05 %, 0.05 %) with I = 0.01 %, P = 0.1 %: F = 0.1 % - 0.05 % = 0.05 %
    assert payment.funding_time_ms == T0 + 8 * HOUR
    assert payment.premium == pytest.approx(0.001, abs=1e-12)
    assert payment.rate == pytest.approx(0.0005, abs=1e-12)
    assert payment.mark_price == 95095.0
    # a long pays: -0.1 x 95095.0 x 0.0005
    assert payment.payment_usd == pytest.approx(-4.75475, abs=1e-9)
    assert engine.positions[PERP].funding_usd == payment.payment_usd
    fee = 0.1 * 95095.1 * 5e-4
    assert engine.balances["USDT"] == pytest.approx(100_000 - fee - 4.75475, abs=1e-9)


def test_an_isolated_long_is_liquidated_at_the_first_mark_below_its_computed_price(desks, market_file, ev):
    events = [ev.book(PERP, T0, [(94999.9, 5.0)], [(95000.1, 5.0)])]
    for minute, mid in ((1, 90_000.0), (2, 86_000.0), (3, 85_900.0), (4, 85_800.0), (5, 85_000.0)):
        events.append(ev.book(PERP, T0 + minute * 60_000, [(mid - 0.1, 5.0)], [(mid + 0.1, 5.0)]))
    desk = desks.open(replay=market_file(events))
    engine = desk.engine
    engine.set_margin_mode(PERP, "isolated")
    engine.set_leverage(PERP, 10)
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.1))
    position = engine.positions[PERP]
    # margin 0.1 x 95000.1 / 10; liquidation where margin + 0.1 (mark - 95000.1) = 0.1 x mark x 0.4 %
    margin = 0.1 * 95000.1 / 10
    expected = (0.1 * 95000.1 - margin) / (0.1 * (1 - 0.004))
    assert position.isolated_margin_usd == pytest.approx(margin, abs=1e-9)
    assert engine.describe_position(position)["liquidation_price"] == pytest.approx(expected, abs=1e-6)
    assert 85_800.0 < expected < 85_900.0

    engine.advance(T0 + 3 * 60_000)
    assert engine.positions[PERP].size == 0.1
    engine.advance(T0 + 10 * 60_000)

    assert engine.positions[PERP].size == 0.0
    [fill] = engine.ledger.list_fills(symbol=PERP, order_id=None, since_ms=None, until_ms=None,
                                      liquidity="liquidation", limit=10)
    assert (fill.price, fill.quantity, fill.side, fill.timestamp_ms) == (85_800.0, 0.1, "sell", T0 + 4 * 60_000)
    assert fill.realized_pnl_usd == pytest.approx(0.1 * (85_800.0 - 95_000.1), abs=1e-9)
    assert fill.fee_usd == pytest.approx(0.1 * 85_800.0 * 5e-4, abs=1e-12)
    assert fill.insurance_usd == 0.0


def test_a_resting_limit_fills_only_on_trades_through_its_price_and_at_most_their_size(desks, market_file, ev):
    events = [ev.book(PERP, T0, [(94999.9, 5.0)], [(95000.1, 5.0)]),
              ev.trade(PERP, T0 + 10_000, 94995.0, 1.0),   # above the bid: never reaches it
              ev.trade(PERP, T0 + 20_000, 94990.0, 1.0),   # at the bid: the queue ahead may have taken it
              ev.trade(PERP, T0 + 30_000, 94989.9, 0.03),  # through: fills, but no more than the print
              ev.trade(PERP, T0 + 40_000, 94985.0, 1.0)]
    engine = desks.open(replay=market_file(events)).engine
    order = engine.place_order(OrderRequest(PERP, "buy", "limit", 0.05, price=94990.0)).order
    assert order.status == "open"

    engine.advance(T0 + 25_000)
    assert engine.get_order(order.order_id).filled_quantity == 0.0
    engine.advance(T0 + 30_000)
    assert engine.get_order(order.order_id).filled_quantity == 0.03
    engine.advance(T0 + 60_000)

    done = engine.get_order(order.order_id)
    assert (done.status, done.filled_quantity, done.average_price) == ("filled", 0.05, 94990.0)
    fills = engine.ledger.list_fills(symbol=PERP, order_id=order.order_id, since_ms=None, until_ms=None,
                                     liquidity=None, limit=10)[::-1]
    assert [(f.quantity, f.price, f.liquidity, f.timestamp_ms) for f in fills] == [
        (0.03, 94990.0, "maker", T0 + 30_000), (0.02, 94990.0, "maker", T0 + 40_000)]
    # maker 2 bps, in USDT
    assert sum(f.fee_usd for f in fills) == pytest.approx(0.05 * 94990.0 * 2e-4, abs=1e-12)
