"""The event bus: a slow subscriber loses its oldest events (counted) and never holds the publisher; history
lets a subscriber start after a known sequence number; an asyncio consumer is woken from another thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
import pytest

from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.desk.model import OrderRequest


@dataclass(frozen=True)
class Tick:
    n: int

    topic: ClassVar[str] = "tick"

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n}


@dataclass(frozen=True)
class Tock(Tick):
    topic: ClassVar[str] = "tock"


def test_a_slow_subscriber_loses_its_oldest_events_and_the_drops_are_counted():
    bus = EventBus()
    slow = bus.subscribe(name="slow", max_queue=10)
    fast = bus.subscribe(name="fast", max_queue=10_000)
    for n in range(1000):
        bus.publish(Tick(n))
    assert [e.event.n for e in slow.poll()] == list(range(990, 1000))  # type: ignore[attr-defined]
    assert len(fast.poll()) == 1000
    assert (slow.dropped, fast.dropped) == (990, 0)
    stats = bus.stats()
    assert stats.published == 1000 and stats.dropped_total == 990
    assert {s.name: (s.delivered, s.dropped) for s in stats.subscribers} == {"slow": (10, 990), "fast": (1000, 0)}
    slow.close()
    assert [s.name for s in bus.stats().subscribers] == ["fast"] and bus.stats().dropped_total == 990


def test_topics_filter_and_history_lets_a_subscriber_start_after_a_known_event():
    bus = EventBus(history=100)
    for n in range(10):
        bus.publish(Tick(n) if n % 2 else Tock(n))
    late = bus.subscribe(["tick"], since_seq=4)
    assert [(e.seq, e.topic) for e in late.poll()] == [(6, "tick"), (8, "tick"), (10, "tick")]
    bus.publish(Tock(10))
    bus.publish(Tick(11))
    assert [e.seq for e in late.poll()] == [12]


@pytest.mark.anyio
async def test_an_async_consumer_is_woken_by_a_publish_from_another_thread():
    bus = EventBus()
    with bus.subscribe(["tick"]) as subscription:
        thread = threading.Thread(target=lambda: [bus.publish(Tick(n)) for n in range(3)])
        with anyio.fail_after(10):
            thread.start()
            got: list[int] = []
            while len(got) < 3:
                got += [e.event.n for e in await subscription.next_batch(5.0)]  # type: ignore[attr-defined]
        thread.join()
    assert got == [0, 1, 2]


def test_the_desk_publishes_typed_events_for_an_order_and_its_fills(desks, market_file, ev):
    bus = EventBus()
    path = market_file([ev.book("BTC-USDT-PERP", ev.T0, [(94999.9, 1.0)], [(95000.1, 1.0)])])
    desk = desks.open(replay=path, bus=bus)
    desk.engine.sync()  # the first market access records the opening equity sample
    with bus.subscribe() as subscription:
        desk.engine.place_order(OrderRequest("BTC-USDT-PERP", "buy", "market", 0.1))
        topics = [e.topic for e in subscription.poll()]
    assert topics == ["decision", "order_accepted", "fill", "position"]
