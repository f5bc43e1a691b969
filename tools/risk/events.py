"""The risk domain's typed bus events; `to_dict` is the JSON every realtime door sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

RISK_TOPICS: tuple[str, ...] = ("metrics", "alert", "regime_change", "portfolio")


@dataclass(frozen=True, slots=True)
class MetricsRecorded:
    """The newest recorded values after the desk clock moved (one event per batch of equity samples)."""

    timestamp_ms: int
    values: dict[str, float]
    samples: int
    """Equity samples recorded in this batch."""

    topic: ClassVar[str] = "metrics"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "values": dict(self.values),
                "samples": self.samples}


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """An alert raised by a rule, or acknowledged."""

    change: str
    """raised or acknowledged."""
    alert: dict[str, Any]

    topic: ClassVar[str] = "alert"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.alert["timestamp_ms"], "change": self.change,
                "alert": dict(self.alert)}


@dataclass(frozen=True, slots=True)
class RegimeChanged:
    symbol: str
    timeframe: str
    timestamp_ms: int
    previous: str
    regime: str
    confidence: float
    probabilities: dict[str, float]

    topic: ClassVar[str] = "regime_change"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "symbol": self.symbol,
                "timeframe": self.timeframe, "previous_regime": self.previous, "regime": self.regime,
                "confidence": self.confidence, "probabilities": dict(self.probabilities)}


@dataclass(frozen=True, slots=True)
class PortfolioUpdated:
    """The portfolio after the desk changed it (fills, funding, liquidations) or its clock moved."""

    timestamp_ms: int
    portfolio: dict[str, Any]

    topic: ClassVar[str] = "portfolio"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "portfolio": dict(self.portfolio)}
