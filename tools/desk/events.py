"""The desk's typed bus events. Each names its topic; `to_dict` is the JSON every realtime door sends.

The frequent events (orders, fills, positions) hold plain values (the order as it was, as a tuple) and
render their JSON only when a door asks: most of them sit in the bus history and are never read. They
also pack into tuples of plain values (`packed`/`unpacked`), which is how the bus keeps its history
without the garbage collector walking it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from quantdesk.tools.desk.model import Fill, Order

DESK_TOPICS: tuple[str, ...] = (
    "order_accepted", "order_rejected", "order_cancelled", "order_expired", "order_triggered", "order_amended",
    "fill", "position", "funding", "liquidation", "equity",
)


@dataclass(frozen=True, slots=True)
class _OrderEvent:
    timestamp_ms: int
    state: tuple[Any, ...]
    """`Order.state()` when the event happened (the engine's order object moves on)."""

    topic: ClassVar[str] = ""

    @property
    def order(self) -> dict[str, Any]:
        return Order.from_state(self.state).to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "symbol": self.state[2],
                "order": self.order}

    def packed(self) -> tuple[Any, ...]:
        return self.timestamp_ms, self.state

    @classmethod
    def unpacked(cls, packed: tuple[Any, ...]) -> Self:
        return cls(*packed)


class OrderAccepted(_OrderEvent):
    topic: ClassVar[str] = "order_accepted"


class OrderRejected(_OrderEvent):
    topic: ClassVar[str] = "order_rejected"


class OrderCancelled(_OrderEvent):
    topic: ClassVar[str] = "order_cancelled"


class OrderExpired(_OrderEvent):
    """An IOC/FOK remainder, or a market order the book could not fill completely."""

    topic: ClassVar[str] = "order_expired"


class OrderTriggered(_OrderEvent):
    topic: ClassVar[str] = "order_triggered"


class OrderAmended(_OrderEvent):
    """A resting reduce-only order shrank because its position did."""

    topic: ClassVar[str] = "order_amended"


@dataclass(frozen=True, slots=True)
class FillEvent:
    record: Fill
    state: tuple[Any, ...] | None = None
    """`record.state()`, when the publisher has it already."""

    topic: ClassVar[str] = "fill"

    @property
    def fill(self) -> dict[str, Any]:
        return self.record.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.record.timestamp_ms, "symbol": self.record.symbol,
                "fill": self.record.to_dict()}

    def packed(self) -> tuple[Any, ...]:
        return self.state if self.state is not None else self.record.state()

    @classmethod
    def unpacked(cls, packed: tuple[Any, ...]) -> Self:
        return cls(Fill(*packed), packed)


POSITION_KEYS: tuple[str, ...] = (
    "symbol", "side", "size", "entry_price", "mark_price", "notional_usd", "unrealized_pnl_usd", "realized_pnl_usd",
    "fees_usd", "funding_usd", "net_pnl_usd", "margin_mode", "leverage", "isolated_margin_usd", "initial_margin_usd",
    "maintenance_margin_usd", "liquidation_price", "opened_ms", "updated_ms")
"""The fields of a described position (DeskEngine.describe_position), in order."""


@dataclass(frozen=True, slots=True)
class PositionEvent:
    timestamp_ms: int
    state: tuple[Any, ...]
    """The position as described when it changed: values in POSITION_KEYS order."""

    topic: ClassVar[str] = "position"

    @property
    def position(self) -> dict[str, Any]:
        return dict(zip(POSITION_KEYS, self.state, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "symbol": self.state[0],
                "position": self.position}

    def packed(self) -> tuple[Any, ...]:
        return self.timestamp_ms, self.state

    @classmethod
    def unpacked(cls, packed: tuple[Any, ...]) -> Self:
        return cls(*packed)


@dataclass(frozen=True, slots=True)
class FundingEvent:
    funding: dict[str, Any]

    topic: ClassVar[str] = "funding"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.funding["funding_time_ms"],
                "symbol": self.funding["symbol"], "funding": self.funding}


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    timestamp_ms: int
    symbol: str
    margin_mode: str
    size: float
    mark_price: float
    liquidation_price: float | None
    realized_pnl_usd: float
    fee_usd: float
    insurance_usd: float
    fill_id: str

    topic: ClassVar[str] = "liquidation"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "symbol": self.symbol,
                "liquidation": {"margin_mode": self.margin_mode, "size": self.size, "mark_price": self.mark_price,
                                "liquidation_price": self.liquidation_price,
                                "realized_pnl_usd": self.realized_pnl_usd, "fee_usd": self.fee_usd,
                                "insurance_usd": self.insurance_usd, "fill_id": self.fill_id}}


@dataclass(frozen=True, slots=True)
class EquityEvent:
    sample: dict[str, Any]

    topic: ClassVar[str] = "equity"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.sample["timestamp_ms"], "equity": self.sample}
