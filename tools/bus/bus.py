"""One in-process bus of typed events that every realtime door subscribes to.

Publishing never waits for a subscriber: each subscriber has its own bounded queue, and when a
queue is full its oldest event is dropped and counted (a dashboard wants the newest state; the
count tells it that it missed some and should re-read). Publishing costs one lock and one append
per interested subscriber, from any thread; an asyncio consumer is woken through its own loop.
A short history lets a new subscriber start from a sequence number it already knows, so an action
and the events it caused can be read without a race. An event that can pack itself into a tuple of plain
values (`PackableEvent`) is kept in the history in that form, which the garbage collector does not track:
ten thousand events held as objects would cost every collection a walk over them (the desk publishes
four events per order); the event object is rebuilt only for a subscriber that asks for the history.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

DEFAULT_QUEUE = 1_000
MAX_QUEUE = 100_000
DEFAULT_HISTORY = 10_000


@runtime_checkable
class BusEvent(Protocol):
    """What a publisher hands the bus: a typed event that names its topic and renders itself as JSON data."""

    topic: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...


class PackableEvent(BusEvent, Protocol):
    """An event that the history can hold as a tuple of plain values (str, int, float, bool, None, tuples of
    them) and rebuild exactly."""

    def packed(self) -> tuple[Any, ...]: ...

    @classmethod
    def unpacked(cls, packed: tuple[Any, ...]) -> Self: ...


_Packed = tuple[int, int, int, tuple[Any, ...]]
"""A history entry of a packable event: (seq, index of its class, published_ms, packed event)."""


@dataclass(slots=True)
class Envelope:
    """An event as delivered: its place in the bus's total order, its topic and the wall time it was published.

    Read-only by convention (not frozen: several are made per order, and a frozen dataclass pays an
    `object.__setattr__` per field)."""

    seq: int
    topic: str
    published_ms: int
    event: BusEvent

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "topic": self.topic, "published_ms": self.published_ms, **self.event.to_dict()}


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    subscriber_id: int
    name: str
    topics: tuple[str, ...] | None
    max_queue: int
    queued: int
    delivered: int
    dropped: int


@dataclass(frozen=True, slots=True)
class BusStats:
    published: int
    dropped_total: int
    """Drops over every subscriber the bus has had, including closed ones."""
    last_seq: int
    subscribers: tuple[SubscriberStats, ...]


class Subscription:
    """A bounded queue of envelopes for one consumer; close it (or use it as a context manager) when done."""

    def __init__(self, bus: EventBus, subscriber_id: int, name: str, topics: frozenset[str] | None,
                 max_queue: int) -> None:
        self._bus = bus
        self.subscriber_id = subscriber_id
        self.name = name
        self.topics = topics
        self.max_queue = max_queue
        self._queue: deque[Envelope] = deque()
        self._lock = threading.Lock()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.delivered = 0
        self.dropped = 0
        self.closed = False

    def wants(self, topic: str) -> bool:
        return self.topics is None or topic in self.topics

    def offer(self, envelope: Envelope) -> None:
        """Called by the bus: never blocks on the consumer; a full queue loses its oldest event."""
        with self._lock:
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.dropped += 1
                self._bus._count_drop()
            self._queue.append(envelope)
            waiter = self._waiter
        if waiter is not None:
            _wake(*waiter)

    def offer_all(self, envelopes: list[Envelope]) -> None:
        """`offer` for the envelopes this subscriber wants, under one lock and with one wake-up."""
        wanted = envelopes if self.topics is None else [e for e in envelopes if e.topic in self.topics]
        if not wanted:
            return
        with self._lock:
            for envelope in wanted:
                if len(self._queue) >= self.max_queue:
                    self._queue.popleft()
                    self.dropped += 1
                    self._bus._count_drop()
                self._queue.append(envelope)
            waiter = self._waiter
        if waiter is not None:
            _wake(*waiter)

    def poll(self, max_items: int = MAX_QUEUE) -> list[Envelope]:
        """Take what is queued now, without waiting."""
        with self._lock:
            count = min(max_items, len(self._queue))
            items = [self._queue.popleft() for _ in range(count)]
            self.delivered += count
        return items

    async def next_batch(self, timeout_seconds: float, max_items: int = 1_000) -> list[Envelope]:
        """Queued events, waiting up to `timeout_seconds` for the first one; [] on timeout or when closed."""
        items = self.poll(max_items)
        if items or self.closed or timeout_seconds <= 0:
            return items
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        with self._lock:
            if self._queue:
                ready.set()
            self._waiter = (loop, ready)
        try:
            try:
                await asyncio.wait_for(ready.wait(), timeout_seconds)
            except TimeoutError:
                return []
        finally:
            with self._lock:
                self._waiter = None
        return self.poll(max_items)

    def stats(self) -> SubscriberStats:
        with self._lock:
            queued = len(self._queue)
        return SubscriberStats(self.subscriber_id, self.name, tuple(sorted(self.topics)) if self.topics else None,
                               self.max_queue, queued, self.delivered, self.dropped)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            with self._lock:
                waiter = self._waiter
            if waiter is not None:
                _wake(*waiter)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
        return
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:
        pass  # the consumer's loop is closed: nobody is waiting any more


class EventBus:
    """Publish typed events; subscribe with a topic filter and a bounded queue."""

    def __init__(self, *, history: int = DEFAULT_HISTORY, clock_ms: Callable[[], int] | None = None) -> None:
        # re-entrant: a subscription pre-filled from the history may count a drop while the bus lock is held
        self._lock = threading.RLock()
        self._seq = 0
        self._ids = itertools.count(1)
        self._subscribers: tuple[Subscription, ...] = ()
        self._history: deque[Envelope | _Packed] = deque(maxlen=history)
        self._kinds: dict[type, int] = {}
        """Per event class: its index in `_classes` if it packs, else -1."""
        self._classes: list[type[PackableEvent]] = []
        self._dropped_total = 0
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    def publish(self, event: BusEvent) -> Envelope:
        with self._lock:
            self._seq += 1
            envelope = Envelope(self._seq, event.topic, self._clock_ms(), event)
            self._history.append(self._entry(envelope))
            subscribers = self._subscribers
        for subscriber in subscribers:
            if subscriber.wants(envelope.topic):
                subscriber.offer(envelope)
        return envelope

    def publish_all(self, events: Iterable[BusEvent]) -> None:
        """Publish several events in order, as one step's outcome: one lock and one wall-clock reading for all."""
        with self._lock:
            now = self._clock_ms()
            seq = self._seq
            subscribers = self._subscribers
            envelopes: list[Envelope] = []
            append = self._history.append
            kinds = self._kinds
            for event in events:
                seq += 1
                kind = kinds.get(type(event))
                if kind is None:
                    kind = self._register(type(event))
                if kind >= 0:
                    append((seq, kind, now, event.packed()))  # type: ignore[attr-defined]
                    if subscribers:
                        envelopes.append(Envelope(seq, event.topic, now, event))
                else:
                    envelope = Envelope(seq, event.topic, now, event)
                    append(envelope)
                    envelopes.append(envelope)
            self._seq = seq
        if envelopes:
            for subscriber in subscribers:
                subscriber.offer_all(envelopes)

    def _register(self, cls: type) -> int:
        packs = callable(getattr(cls, "packed", None)) and callable(getattr(cls, "unpacked", None))
        self._kinds[cls] = len(self._classes) if packs else -1
        if packs:
            self._classes.append(cls)
        return self._kinds[cls]

    def _entry(self, envelope: Envelope) -> Envelope | _Packed:
        """What the history keeps of an envelope (called under the bus lock)."""
        cls = type(envelope.event)
        kind = self._kinds.get(cls)
        if kind is None:
            kind = self._register(cls)
        if kind < 0:
            return envelope
        return envelope.seq, kind, envelope.published_ms, envelope.event.packed()  # type: ignore[attr-defined]

    def _envelope(self, entry: Envelope | _Packed) -> Envelope:
        if isinstance(entry, Envelope):
            return entry
        seq, kind, published_ms, packed = entry
        cls = self._classes[kind]
        return Envelope(seq, cls.topic, published_ms, cls.unpacked(packed))

    def subscribe(self, topics: Iterable[str] | None = None, *, name: str = "subscriber",
                  max_queue: int = DEFAULT_QUEUE, since_seq: int | None = None) -> Subscription:
        """A new subscription; with `since_seq`, events after that sequence still in the history come first."""
        if not 1 <= max_queue <= MAX_QUEUE:
            raise ValueError(f"max_queue must be within 1..{MAX_QUEUE}")
        wanted = frozenset(topics) if topics is not None else None
        with self._lock:
            subscription = Subscription(self, next(self._ids), name, wanted, max_queue)
            if since_seq is not None:
                for entry in self._history:
                    seq = entry[0] if isinstance(entry, tuple) else entry.seq
                    if seq > since_seq:
                        envelope = self._envelope(entry)
                        if subscription.wants(envelope.topic):
                            subscription.offer(envelope)
            self._subscribers = (*self._subscribers, subscription)
        return subscription

    @property
    def last_seq(self) -> int:
        return self._seq

    def stats(self) -> BusStats:
        with self._lock:
            subscribers = self._subscribers
            published, dropped = self._seq, self._dropped_total
        return BusStats(published, dropped, published, tuple(s.stats() for s in subscribers))

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscription)

    def _count_drop(self) -> None:
        with self._lock:
            self._dropped_total += 1

    def close(self) -> None:
        for subscription in self._subscribers:
            subscription.close()
