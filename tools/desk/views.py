"""Read-only views of the engine for the tools: quotes, books, balances, account summary. Call under its lock."""

from __future__ import annotations

from typing import Any

from quantdesk.tools.desk.accounting import maintenance_margin, unrealized_pnl
from quantdesk.tools.desk.engine import DeskEngine
from quantdesk.tools.desk.instruments import SETTLEMENT_ASSET


def quote(engine: DeskEngine, symbol: str) -> dict[str, Any]:
    instrument = engine.instruments.get(symbol)
    market = engine.market(instrument)
    book = market.book
    bid, ask = (book.best_bid, book.best_ask) if book else (None, None)
    mid = book.mid if book else None
    funding = predicted = next_ms = None
    if instrument.is_perpetual and instrument.funding is not None:
        from quantdesk.tools.desk.advance import funding_rate
        from quantdesk.tools.funding.schedule import HOUR_MS, align_period_start

        f = instrument.funding
        funding = market.last_funding.rate if market.last_funding else None
        predicted = funding_rate(f, market.premium_samples)[0] if market.premium_samples else None
        next_ms = align_period_start(engine.now_ms, f.interval_hours, f.schedule_anchor_utc_hour) \
            + round(f.interval_hours * HOUR_MS)
    return {"symbol": symbol, "kind": instrument.kind, "last_price": market.last_price,
            "last_trade_ms": market.last_trade_ms, "mark_price": market.mark, "index_price": market.index,
            "best_bid": bid, "best_ask": ask, "mid_price": mid,
            "spread_bps": (ask - bid) / mid * 1e4 if bid is not None and ask is not None and mid else None,
            "book_ms": book.timestamp_ms if book else None, "funding_rate": funding,
            "predicted_funding_rate": predicted, "next_funding_ms": next_ms,
            "data_source": engine.feed.data_source, "desk_time_ms": engine.now_ms}


def order_book(engine: DeskEngine, symbol: str, depth: int) -> dict[str, Any]:
    instrument = engine.instruments.get(symbol)
    book = engine.market(instrument).book
    return {"symbol": symbol,
            "bids": [{"price": p, "size": s} for p, s in (book.bids[:depth] if book else [])],
            "asks": [{"price": p, "size": s} for p, s in (book.asks[:depth] if book else [])],
            "book_ms": book.timestamp_ms if book else None,
            "note": "the feed's latest book less what the desk's own orders took from it since",
            "data_source": engine.feed.data_source, "desk_time_ms": engine.now_ms}


def balances(engine: DeskEngine) -> list[dict[str, Any]]:
    account = engine.account()
    used_margin = account.wallet_usd - account.available_usd
    out = []
    for asset in sorted(set(engine.balances) | set(engine.instruments.assets)):
        total = engine.balances.get(asset, 0.0)
        locked = used_margin if asset == SETTLEMENT_ASSET else engine._reserved.get(asset, 0.0)
        out.append({"asset": asset, "total": total, "locked": locked, "available": total - locked})
    return out


def account_summary(engine: DeskEngine) -> dict[str, Any]:
    account = engine.account()
    upnl = realized = fees = funding = im = mm = 0.0
    open_positions = 0
    for symbol, p in engine.positions.items():
        realized += p.realized_pnl_usd
        fees += p.fees_usd
        funding += p.funding_usd
        if p.size == 0.0:
            continue
        open_positions += 1
        mark = engine.markets[symbol].reference_mark() or p.entry_price
        upnl += unrealized_pnl(p, mark)
        rate = engine.instruments.by_symbol[symbol].maintenance_margin_rate or 0.0
        mm += maintenance_margin(p, mark, rate)
        im += p.isolated_margin_usd if p.margin_mode == "isolated" else abs(p.size) * mark / p.leverage
    spot_fees, _ = engine.ledger.fee_totals()
    return {"equity_usd": account.equity_usd, "wallet_usd": account.wallet_usd,
            "available_usd": account.available_usd, "unrealized_pnl_usd": upnl, "realized_pnl_usd": realized,
            "fees_usd": spot_fees, "funding_usd": funding, "gross_exposure_usd": account.gross_exposure_usd,
            "net_exposure_usd": account.net_exposure_usd,
            "leverage": account.leverage if account.equity_usd > 0 else 0.0, "initial_margin_usd": im,
            "maintenance_margin_usd": mm, "peak_equity_usd": account.peak_equity_usd,
            "drawdown_pct": account.drawdown_pct, "day_start_equity_usd": account.day_start_equity_usd,
            "daily_pnl_usd": account.equity_usd - account.day_start_equity_usd,
            "open_orders": account.open_orders, "positions": open_positions, "desk_time_ms": engine.now_ms}
