"""The desk's typed bus events. Each names its topic; `to_dict` is the JSON every realtime door sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

DESK_TOPICS: tuple[str, ...] = (
    "order_accepted", "order_rejected", "order_cancelled", "order_expired", "order_triggered", "order_amended",
    "fill", "position", "funding", "liquidation", "equity",
)


@dataclass(frozen=True, slots=True)
class _OrderEvent:
    timestamp_ms: int
    order: dict[str, Any]

    topic: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "symbol": self.order["symbol"],
                "order": self.order}


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
    fill: dict[str, Any]

    topic: ClassVar[str] = "fill"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.fill["timestamp_ms"], "symbol": self.fill["symbol"],
                "fill": self.fill}


@dataclass(frozen=True, slots=True)
class PositionEvent:
    timestamp_ms: int
    position: dict[str, Any]

    topic: ClassVar[str] = "position"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "symbol": self.position["symbol"],
                "position": self.position}


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
