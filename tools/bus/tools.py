"""Event-bus tools: stream the desk's (and later domains') events, and read the bus's delivery statistics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.tools.bus.bus import MAX_QUEUE, EventBus

tools = ToolSet("bus")
tools.service(EventBus, lambda services: EventBus())

Topic = Literal["order_accepted", "order_rejected", "order_cancelled", "order_expired", "order_triggered",
                "order_amended", "fill", "position", "funding", "liquidation", "equity", "state_change",
                "risk_event", "decision", "metrics", "alert", "regime_change", "portfolio", "signal",
                "strategy_profile", "agent"]


class StreamEventsInput(ToolInput):
    topics: list[Topic] | None = Field(None, max_length=32, description="Only these topics (default: all).")
    symbol: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$",
                               description="Only events about this symbol (events without a symbol are kept).")
    since_seq: int | None = Field(None, ge=0, le=2**53, description="Start with the buffered events after this "
                                  "sequence number (from an earlier event or get_event_bus_stats.last_seq), so "
                                  "nothing between two calls is missed while it is still in the bus's history.")
    max_events: int = Field(100, ge=1, le=10**9, description="Stop after this many events (over MCP a call "
                            "returns at most 10,000; SSE and WebSocket clients may follow the bus for good).")
    duration_seconds: float = Field(5.0, gt=0, le=30 * 86_400, allow_inf_nan=False,
                                    description="Stop after this long (SSE and WebSocket clients may ask for days).")
    max_queue: int = Field(1_000, ge=1, le=MAX_QUEUE, description="This subscriber's queue; when the consumer is "
                           "slower than the desk, the oldest queued events are dropped and counted.")


class BusEventOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int = Field(description="Position in the bus's total order.")
    topic: str
    published_ms: int = Field(description="Wall-clock time of publication.")
    timestamp_ms: int | None = Field(None, description="Desk time of the event (simulated or real clock).")
    symbol: str | None = None
    dropped_so_far: int = Field(description="Events this subscription lost to a full queue before this one.")
    data: dict[str, Any] = Field(description="The event: an order, a fill, a position, a state change, ...")


@tools.stream(scope="stream", event_model=BusEventOut, title="Stream desk events", max_batch=10_000)
async def stream_events(args: StreamEventsInput, ctx: CallContext) -> AsyncIterator[BusEventOut]:
    """Stream the desk's live events: orders accepted, rejected, cancelled, triggered; fills; positions;
    funding; liquidations; equity samples; control state changes; risk events; decisions.

    Use it to follow what the desk does without polling. Filter by topic and symbol; pass since_seq to
    start right after an event you already saw. Over MCP the call returns the events collected within
    duration_seconds (at most max_events); over SSE (Accept: text/event-stream) they arrive as they happen.
    A slow reader never slows the desk: its oldest queued events are dropped, and dropped_so_far says so.
    """
    bus = ctx.services.get(EventBus)
    deadline = time.monotonic() + args.duration_seconds
    sent = 0
    with bus.subscribe(args.topics, name=f"stream_events:{ctx.request_id}", max_queue=args.max_queue,
                       since_seq=args.since_seq) as subscription:
        while sent < args.max_events:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for envelope in await subscription.next_batch(left, max_items=args.max_events - sent):
                data = envelope.event.to_dict()
                symbol = data.get("symbol")
                if args.symbol is not None and symbol is not None and symbol != args.symbol:
                    continue
                yield BusEventOut(seq=envelope.seq, topic=envelope.topic, published_ms=envelope.published_ms,
                                  timestamp_ms=data.get("timestamp_ms"), symbol=symbol,
                                  dropped_so_far=subscription.dropped, data=data)
                sent += 1
                if sent >= args.max_events:
                    return


class NoArguments(ToolInput):
    pass


class SubscriberOut(ToolOutput):
    subscriber_id: int
    name: str
    topics: list[str] | None
    max_queue: int
    queued: int
    delivered: int
    dropped: int


class BusStatsOutput(ToolOutput):
    published: int = Field(description="Events published since the server started.")
    dropped_total: int = Field(description="Events dropped from full subscriber queues, all subscribers ever.")
    last_seq: int
    subscribers: list[SubscriberOut]


@tools.tool(scope="read", title="Event bus statistics", read_only=True, idempotent=True)
async def get_event_bus_stats(args: NoArguments, ctx: CallContext) -> BusStatsOutput:
    """Report the event bus: events published, the last sequence number, and per subscriber its queue,
    deliveries and drops (a dropped event is one a slow subscriber missed; the desk never waits for it)."""
    stats = ctx.services.get(EventBus).stats()
    return BusStatsOutput(published=stats.published, dropped_total=stats.dropped_total, last_seq=stats.last_seq,
                          subscribers=[SubscriberOut(subscriber_id=s.subscriber_id, name=s.name,
                                                     topics=list(s.topics) if s.topics else None,
                                                     max_queue=s.max_queue, queued=s.queued,
                                                     delivered=s.delivered, dropped=s.dropped)
                                       for s in stats.subscribers])
