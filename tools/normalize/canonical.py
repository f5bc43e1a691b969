"""Builders of canonical event dicts (the TradeEvent / BookEvent shape, every field present)."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from quantdesk.tools.normalize.values import Level

_PRICE = itemgetter(0)
TRADE_KEYS = ("event_type", "exchange", "symbol", "raw_symbol", "timestamp_ms", "capture_time_ms", "side", "price",
              "size", "trade_id", "notional_usd", "seq_first", "seq_last", "seq_prev")


def trade_event(exchange: str, symbol: str, raw_symbol: str, timestamp_ms: int, capture_time_ms: int, side: str,
                price: float, size: float, trade_id: str, notional_usd: float | None, seq_first: int | None = None,
                seq_last: int | None = None, seq_prev: int | None = None) -> dict[str, Any]:
    return {"event_type": "trade", "exchange": exchange, "symbol": symbol, "raw_symbol": raw_symbol,
            "timestamp_ms": timestamp_ms, "capture_time_ms": capture_time_ms, "side": side, "price": price,
            "size": size, "trade_id": trade_id, "notional_usd": notional_usd, "seq_first": seq_first,
            "seq_last": seq_last, "seq_prev": seq_prev}


def book_event(exchange: str, symbol: str, raw_symbol: str, timestamp_ms: int | None, capture_time_ms: int | None,
               bids: list[Level], asks: list[Level], *, is_snapshot: bool, best_bid: float | None,
               best_ask: float | None, seq_first: int | None = None, seq_last: int | None = None,
               seq_prev: int | None = None, checksum: int | None = None, gap: bool = False) -> dict[str, Any]:
    """A book event; `best_bid`/`best_ask` describe the maintained book after the event (None when unknown)."""
    mid = spread = None
    if best_bid is not None and best_ask is not None:
        mid = (best_bid + best_ask) / 2.0
        spread = (best_ask - best_bid) / mid * 1e4
    return {"event_type": "book", "exchange": exchange, "symbol": symbol, "raw_symbol": raw_symbol,
            "timestamp_ms": timestamp_ms, "capture_time_ms": capture_time_ms,
            "bids": [{"price": p, "size": s} for p, s in bids], "asks": [{"price": p, "size": s} for p, s in asks],
            "is_snapshot": is_snapshot, "best_bid": best_bid, "best_ask": best_ask, "mid_price": mid,
            "spread_bps": spread, "seq_first": seq_first, "seq_last": seq_last, "seq_prev": seq_prev,
            "checksum": checksum, "depth": len(bids) + len(asks), "gap": gap}


def best_first(bids: list[Level], asks: list[Level]) -> tuple[list[Level], list[Level]]:
    """Delta levels ordered best first (bids by price descending, asks ascending); repeats keep their order."""
    return sorted(bids, key=_PRICE, reverse=True), sorted(asks, key=_PRICE)
