"""Price-keyed L2 books and the per-stream state the continuity rules act on."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from quantdesk.tools.normalize.outcomes import BookStatus
from quantdesk.tools.normalize.values import Level


class PriceBook:
    """Absolute sizes by price, with each side's prices kept sorted so the best level is at index 0.

    Bid keys are stored negated so both sides sort ascending. Optional text keeps the venue's
    price and size strings for checksums (OKX) that are computed over them.
    """

    __slots__ = ("_bid_keys", "_ask_keys", "bids", "asks", "bid_text", "ask_text")

    def __init__(self) -> None:
        self._bid_keys: list[float] = []
        self._ask_keys: list[float] = []
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bid_text: dict[float, tuple[str, str]] = {}
        self.ask_text: dict[float, tuple[str, str]] = {}

    def clear(self) -> None:
        self._bid_keys.clear()
        self._ask_keys.clear()
        self.bids.clear()
        self.asks.clear()
        self.bid_text.clear()
        self.ask_text.clear()

    def set_bid(self, price: float, size: float, text: tuple[str, str] | None = None) -> None:
        _set(self.bids, self._bid_keys, -price, price, size, self.bid_text, text)

    def set_ask(self, price: float, size: float, text: tuple[str, str] | None = None) -> None:
        _set(self.asks, self._ask_keys, price, price, size, self.ask_text, text)

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        """Apply absolute sizes (0 deletes); one loop per side, as diffs carry many levels."""
        _apply(self.bids, self._bid_keys, bids, self.bid_text, -1.0)
        _apply(self.asks, self._ask_keys, asks, self.ask_text, 1.0)

    def best_bid(self) -> float | None:
        return -self._bid_keys[0] if self._bid_keys else None

    def best_ask(self) -> float | None:
        return self._ask_keys[0] if self._ask_keys else None

    def top_bids(self, n: int | None = None) -> list[Level]:
        keys = self._bid_keys if n is None else self._bid_keys[:n]
        bids = self.bids
        return [(-k, bids[-k]) for k in keys]

    def top_asks(self, n: int | None = None) -> list[Level]:
        keys = self._ask_keys if n is None else self._ask_keys[:n]
        asks = self.asks
        return [(k, asks[k]) for k in keys]

    def top_bid_prices(self, n: int) -> list[float]:
        return [-k for k in self._bid_keys[:n]]

    def top_ask_prices(self, n: int) -> list[float]:
        return self._ask_keys[:n]


def _apply(sizes: dict[float, float], keys: list[float], levels: list[Level], texts: dict[float, tuple[str, str]],
           sign: float) -> None:
    for price, size in levels:
        if size == 0.0:
            if sizes.pop(price, None) is not None:
                del keys[bisect_left(keys, sign * price)]
                if texts:
                    texts.pop(price, None)
        else:
            if price not in sizes:
                insort(keys, sign * price)
            sizes[price] = size


def _set(sizes: dict[float, float], keys: list[float], key: float, price: float, size: float,
         texts: dict[float, tuple[str, str]], text: tuple[str, str] | None) -> None:
    if size == 0.0:
        # Removing a level the book does not hold is not an error (Tardis ignores it too).
        if sizes.pop(price, None) is not None:
            del keys[bisect_left(keys, key)]
            texts.pop(price, None)
        return
    if price not in sizes:
        insort(keys, key)
    sizes[price] = size
    if text is not None:
        texts[price] = text


@dataclass(slots=True, eq=False)
class BookState:
    """One maintained book: (exchange, symbol, raw symbol, channel), its sync state and history."""

    exchange: str
    symbol: str
    raw_symbol: str
    channel: str
    book: PriceBook = field(default_factory=PriceBook)
    synced: bool = False
    last_seq: int | None = None
    # True between a snapshot and the first delta applied on it (binance's overlap rule differs there).
    fresh: bool = False
    snapshots: int = 0
    gaps: int = 0
    last_problem: str | None = None
    pending: deque[Any] = field(default_factory=deque)

    def desync(self, problem: str) -> None:
        """Drop the book: deltas now wait for the next snapshot."""
        self.book.clear()
        self.synced = False
        self.fresh = False
        self.last_problem = problem

    def resync(self, seq: int | None) -> None:
        """Mark the book valid after a snapshot was applied to it."""
        self.synced = True
        self.fresh = True
        self.last_seq = seq
        self.snapshots += 1

    def status(self) -> BookStatus:
        b = self.book
        return BookStatus(
            exchange=self.exchange, symbol=self.symbol, raw_symbol=self.raw_symbol, channel=self.channel,
            state="synced" if self.synced else "awaiting_snapshot", last_seq=self.last_seq,
            bid_levels=len(b.bids), ask_levels=len(b.asks), best_bid=b.best_bid(), best_ask=b.best_ask(),
            snapshots=self.snapshots, gaps=self.gaps, pending=len(self.pending), last_problem=self.last_problem)
