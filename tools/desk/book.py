"""The live L2 book of one symbol: the feed's latest snapshot minus what the desk's own orders took from it.

Taking liquidity consumes it: a second market order before the next snapshot walks what the first
left. The next snapshot from the feed replaces the book (the market refilled it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Level = list[float]  # [price, size], best first


@dataclass(slots=True)
class LiveBook:
    bids: list[Level]
    asks: list[Level]
    timestamp_ms: int

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> float | None:
        if self.bids and self.asks:
            return (self.bids[0][0] + self.asks[0][0]) / 2.0
        return None

    def touch(self, taker_side: str) -> float | None:
        """Best price a taker on `taker_side` meets: the best ask for a buy, the best bid for a sell."""
        return self.best_ask if taker_side == "buy" else self.best_bid

    def _levels(self, taker_side: str) -> list[Level]:
        return self.asks if taker_side == "buy" else self.bids

    def fillable(self, taker_side: str, limit: float | None) -> float:
        """Quantity a taker could take now, up to a limit price (None: any price)."""
        total = 0.0
        for price, size in self._levels(taker_side):
            if limit is not None and _beyond(taker_side, price, limit):
                break
            total += size
        return total

    def crosses(self, taker_side: str, limit: float) -> bool:
        touch = self.touch(taker_side)
        return touch is not None and not _beyond(taker_side, touch, limit)

    def estimate(self, taker_side: str, quantity: float, limit: float | None) -> float | None:
        """Average price a taker would get for `quantity` (what the book has, if less), without consuming."""
        got = cost = 0.0
        for price, size in self._levels(taker_side):
            if limit is not None and _beyond(taker_side, price, limit):
                break
            take = min(size, quantity - got)
            got += take
            cost += take * price
            if got >= quantity:
                break
        return cost / got if got > 0 else None

    def take(self, taker_side: str, quantity: float, limit: float | None,
             round_qty: Callable[[float], float] | int) -> list[tuple[float, float]]:
        """Consume liquidity level by level; returns (price, quantity) per level touched, best first.

        `round_qty` snaps quantities to the lot grid: a function, or the grid's decimal places (the engine's
        fast path: `round(x, decimals)` without a call through a function)."""
        if not isinstance(round_qty, int):
            return self._take_with(taker_side, quantity, limit, round_qty)
        decimals = round_qty
        levels = self._levels(taker_side)
        out: list[tuple[float, float]] = []
        left = quantity
        while levels and left > 0:
            price, size = levels[0]
            if limit is not None and _beyond(taker_side, price, limit):
                break
            take = round(size if size <= left else left, decimals)
            if take <= 0:
                break
            out.append((price, take))
            left = round(left - take, decimals)
            rest = round(size - take, decimals)
            if rest <= 0:
                levels.pop(0)
            else:
                levels[0][1] = rest
        return out

    def _take_with(self, taker_side: str, quantity: float, limit: float | None,
                   round_qty: Callable[[float], float]) -> list[tuple[float, float]]:
        levels = self._levels(taker_side)
        out: list[tuple[float, float]] = []
        left = quantity
        while levels and left > 0:
            price, size = levels[0]
            if limit is not None and _beyond(taker_side, price, limit):
                break
            take = size if size <= left else left
            take = round_qty(take)
            if take <= 0:
                break
            out.append((price, take))
            left = round_qty(left - take)
            rest = round_qty(size - take)
            if rest <= 0:
                levels.pop(0)
            else:
                levels[0][1] = rest
        return out


def _beyond(taker_side: str, price: float, limit: float) -> bool:
    """True when a level is past the taker's limit (above it for a buy, below it for a sell)."""
    return price > limit if taker_side == "buy" else price < limit
