"""Same seed and same calls give the same fills, to the byte; the market itself is a function of (seed, time)."""

from __future__ import annotations

import json

from quantdesk.tools.desk.model import OrderRequest

PERP = "BTC-USDT-PERP"


def _session(desk) -> bytes:
    engine = desk.engine
    desk.control.set_limits({"max_orders_per_second": None}, "test")
    mid = engine.market(engine.instruments.by_symbol[PERP]).book.mid
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.25))
    engine.place_order(OrderRequest(PERP, "sell", "limit", 0.1, price=round(mid + 30.0, 1)))
    engine.place_order(OrderRequest(PERP, "buy", "limit", 0.1, price=round(mid - 30.0, 1)))
    engine.place_order(OrderRequest(PERP, "sell", "stop_market", 0.05, stop_price=round(mid - 80.0, 1),
                                    reduce_only=True))
    engine.place_order(OrderRequest("ETH-USDT", "buy", "market", 1.5))
    engine.advance(engine.now_ms + 9 * 3_600_000)
    engine.place_order(OrderRequest(PERP, "sell", "market", 0.1))
    engine.advance(engine.now_ms + 600_000)
    fills = engine.ledger.list_fills(symbol=None, order_id=None, since_ms=None, until_ms=None, liquidity=None,
                                     limit=1000)
    funding = engine.ledger.list_funding(symbol=None, since_ms=None, until_ms=None, only_payments=False, limit=100)
    equity = engine.ledger.list_equity(since_ms=None, until_ms=None, limit=100_000)
    return json.dumps({"fills": [f.to_dict() for f in fills], "funding": [f.to_dict() for f in funding],
                       "equity": [e.to_dict() for e in equity], "balances": engine.balances}, sort_keys=True).encode()


def test_the_same_seed_and_calls_give_byte_identical_fills_funding_and_equity(desks):
    first = _session(desks.open("a", seed=7))
    second = _session(desks.open("b", seed=7))
    assert first == second
    assert b'"liquidity": "maker"' in first and b'"liquidity": "taker"' in first


def test_another_seed_gives_another_market(desks):
    assert _session(desks.open("a", seed=7)) != _session(desks.open("b", seed=8))


def test_the_feed_answers_a_range_the_same_however_it_was_reached(desks):
    engine = desks.open(seed=3).engine
    feed = engine.feed
    start = engine.now_ms
    whole = feed.chunk(PERP, start + 3_000_000, start + 3_600_000)
    feed.chunk(PERP, start + 90_000_000, start + 90_060_000)  # far ahead, then back
    again = feed.chunk(PERP, start + 3_000_000, start + 3_600_000)
    assert whole.n_books == again.n_books and whole.n_trades == again.n_trades
    assert (whole.trade_px == again.trade_px).all() and (whole.mark == again.mark).all()
