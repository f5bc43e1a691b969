"""A signal, the strategy layers that give it a lifetime, and the bus events of the signals domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

Layer = Literal["scalping", "momentum", "mean_reversion", "investor"]
Direction = Literal["long", "short"]

LAYER_TTL_SECONDS: dict[str, int] = {"scalping": 300, "momentum": 1800, "mean_reversion": 3600, "investor": 86_400}
"""TRADEOS policy hint (spec/desk.md §7.3): a signal's lifetime by strategy layer."""
DEFAULT_TTL_SECONDS = 3600
"""TRADEOS's default for a layer it does not know."""


def iso(t_ms: int | None) -> str | None:
    if t_ms is None:
        return None
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Signal:
    signal_id: str
    symbol: str
    signal_type: str
    """The generator's name: momentum, mean_reversion, funding_carry, regime."""
    layer: str
    direction: Direction
    strength: float
    """In [0, 1]: how far the generator's statistic is past its threshold."""
    confidence: float
    """In [0, 1]: how much the generator trusts its own reading."""
    created_ms: int
    ttl_seconds: int
    price: float
    """The symbol's mid when the signal was made (the start of its forward returns)."""
    details: dict[str, Any]

    @property
    def expires_ms(self) -> int:
        return self.created_ms + self.ttl_seconds * 1000

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "long" else -1.0

    @property
    def score(self) -> float:
        """Signed strength: the value IC is computed on."""
        return self.sign * self.strength

    def live(self, now_ms: int) -> bool:
        return now_ms < self.expires_ms

    def to_dict(self, now_ms: int | None = None) -> dict[str, Any]:
        out = {"signal_id": self.signal_id, "symbol": self.symbol, "signal_type": self.signal_type,
               "layer": self.layer, "direction": self.direction, "strength": self.strength,
               "confidence": self.confidence, "score": self.score, "created_ms": self.created_ms,
               "created_at": iso(self.created_ms), "ttl_seconds": self.ttl_seconds, "expires_ms": self.expires_ms,
               "expires_at": iso(self.expires_ms), "price": self.price, "details": dict(self.details)}
        if now_ms is not None:
            out["expired"] = not self.live(now_ms)
        return out


@dataclass(frozen=True, slots=True)
class SignalCreated:
    """A new signal, published on the bus (the TRADEOS WebSocket's `signal` message)."""

    signal: Signal

    topic: ClassVar[str] = "signal"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.signal.created_ms, "signal": self.signal.to_dict()}


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    timestamp_ms: int
    previous: str
    profile: str
    actor: str

    topic: ClassVar[str] = "strategy_profile"

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.topic, "timestamp_ms": self.timestamp_ms, "previous_profile": self.previous,
                "profile": self.profile, "actor": self.actor}


SIGNAL_TOPICS: tuple[str, ...] = ("signal", "strategy_profile")
