"""The control plane's typed bus events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from quantdesk.tools.control.decisions import decision_from_row

CONTROL_TOPICS: tuple[str, ...] = ("state_change", "risk_event", "decision")


@dataclass(frozen=True, slots=True)
class StateChanged:
    timestamp_ms: int
    previous: str
    state: str
    actor: str
    reason: str | None
    episode: int

    topic: ClassVar[str] = "state_change"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "previous_state": self.previous,
                "state": self.state, "actor": self.actor, "reason": self.reason, "episode": self.episode}


@dataclass(frozen=True, slots=True)
class RiskEventOccurred:
    """A breach that tripped a breaker, or an order refused by the risk checks."""

    timestamp_ms: int
    code: str
    message: str
    symbol: str | None
    details: dict[str, Any]

    topic: ClassVar[str] = "risk_event"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "code": self.code,
                "message": self.message, "symbol": self.symbol, "details": self.details}


@dataclass(frozen=True, slots=True)
class DecisionRecorded:
    row: tuple[Any, ...]
    """The decision-log row as stored (plain values); the decision's JSON is rendered when a door reads it."""

    topic: ClassVar[str] = "decision"

    @property
    def decision(self) -> dict[str, Any]:
        return decision_from_row(self.row).to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.row[2], "symbol": self.row[5],
                "decision": self.decision}

    def packed(self) -> tuple[Any, ...]:
        return self.row

    @classmethod
    def unpacked(cls, packed: tuple[Any, ...]) -> Self:
        return cls(packed)
