"""Per-symbol priority queues of the desk's resting limits and pending stops.

Heaps with lazy deletion: an order that was filled, cancelled or triggered stays in its heap until
it reaches the top, where `top` drops it. Best price first, then the earlier order (its sequence).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from quantdesk.tools.desk.model import Order

_Entry = tuple[float, int, str]


@dataclass(slots=True)
class RestingOrders:
    bids: list[_Entry] = field(default_factory=list)
    """Buy limits: (-price, seq, order_id)."""
    asks: list[_Entry] = field(default_factory=list)
    """Sell limits: (price, seq, order_id)."""
    buy_stops: list[_Entry] = field(default_factory=list)
    """Buy stops trigger at or above their stop: (stop, seq, order_id)."""
    sell_stops: list[_Entry] = field(default_factory=list)
    """Sell stops trigger at or below their stop: (-stop, seq, order_id)."""

    def add_limit(self, order: Order) -> None:
        assert order.price is not None
        if order.side == "buy":
            heapq.heappush(self.bids, (-order.price, order.seq, order.order_id))
        else:
            heapq.heappush(self.asks, (order.price, order.seq, order.order_id))

    def add_stop(self, order: Order) -> None:
        assert order.stop_price is not None
        if order.side == "buy":
            heapq.heappush(self.buy_stops, (order.stop_price, order.seq, order.order_id))
        else:
            heapq.heappush(self.sell_stops, (-order.stop_price, order.seq, order.order_id))


def top(heap: list[_Entry], valid: Callable[[str], bool]) -> _Entry | None:
    while heap:
        if valid(heap[0][2]):
            return heap[0]
        heapq.heappop(heap)
    return None


def pop(heap: list[_Entry]) -> None:
    heapq.heappop(heap)
