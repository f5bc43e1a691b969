"""The desk's records: orders, fills, positions, funding payments, equity samples, rejection reasons."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, SupportsIndex

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop_market", "stop_limit"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
OrderStatus = Literal["pending_trigger", "open", "partially_filled", "filled", "cancelled", "rejected", "expired"]
Liquidity = Literal["maker", "taker", "liquidation"]
MarginMode = Literal["cross", "isolated"]

OPEN_STATUSES: frozenset[str] = frozenset({"pending_trigger", "open", "partially_filled"})
FINAL_STATUSES: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "expired"})


def side_sign(side: Side) -> int:
    return 1 if side == "buy" else -1


@dataclass(frozen=True, slots=True)
class Reason:
    """A rejection or cancellation reason: a stable code a program can branch on, and a message for people."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class _NoReasons(list["Reason"]):
    """The one empty reasons list that orders without reasons share. The engine replaces an order's reasons
    (`[*order.reasons, reason]`), never changes them in place, and one list per open order was one more object
    for every full garbage collection to walk (twenty thousand of them with as many resting orders); changing
    this one in place raises instead of changing every order's."""

    def _refuse(self) -> NoReturn:
        raise TypeError("an order's reasons are replaced (order.reasons = [...]), not changed in place")

    def append(self, item: Reason) -> NoReturn:
        self._refuse()

    def extend(self, items: Iterable[Reason]) -> NoReturn:
        self._refuse()

    def insert(self, index: SupportsIndex, item: Reason) -> NoReturn:
        self._refuse()

    def remove(self, item: Reason) -> NoReturn:
        self._refuse()

    def pop(self, index: SupportsIndex = -1) -> NoReturn:
        self._refuse()

    def clear(self) -> NoReturn:
        self._refuse()

    def sort(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def reverse(self) -> NoReturn:
        self._refuse()

    def __setitem__(self, index: Any, value: Any) -> NoReturn:
        self._refuse()

    def __delitem__(self, index: Any) -> NoReturn:
        self._refuse()

    def __iadd__(self, items: Iterable[Reason]) -> NoReturn:  # type: ignore[override,misc]
        self._refuse()

    def __imul__(self, times: SupportsIndex) -> NoReturn:
        self._refuse()


NO_REASONS: list[Reason] = _NoReasons()


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as asked for, already checked for shape (types, bounds, finite numbers)."""

    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = "GTC"
    post_only: bool = False
    reduce_only: bool = False
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Vote:
    """One agent's vote behind an order intent (a list keeps two votes of one agent apart)."""

    agent_id: str
    confidence: float
    signal_id: str | None = None
    direction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "confidence": self.confidence, "signal_id": self.signal_id,
                "direction": self.direction}


@dataclass(frozen=True, slots=True)
class IntentContext:
    """Where an order intent comes from, for the decision log."""

    source: str = "tool:place_order"
    agent_votes: tuple[Vote, ...] = ()
    signal_id: str | None = None
    summary: str | None = None
    operator: bool = False
    """A control-plane close (deleverage, flatten): allowed while paused or killed, always reduce-only."""


@dataclass(slots=True)
class Order:
    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: float
    """Current total quantity; a resting reduce-only order shrinks with its position."""
    original_quantity: float
    price: float | None
    stop_price: float | None
    post_only: bool
    reduce_only: bool
    status: OrderStatus
    created_ms: int
    updated_ms: int
    source: str
    seq: int
    filled_quantity: float = 0.0
    average_price: float | None = None
    fees_usd: float = 0.0
    decision_id: str | None = None
    signal_id: str | None = None
    reference_price: float | None = None
    """The best opposite price when the order started to execute; fills' slippage is measured from it."""
    triggered_ms: int | None = None
    reasons: list[Reason] = field(default_factory=list)
    """Why it was rejected, cancelled, expired or shrunk."""

    @property
    def remaining(self) -> float:
        return max(0.0, self.quantity - self.filled_quantity)

    def snapshot(self) -> Order:
        """A copy of the order as it is now."""
        return Order.from_state(self.state())

    def state(self) -> tuple[Any, ...]:
        """The order as it is now, as a tuple of plain values (the reasons as (code, message) pairs): what an
        event keeps, since the order object moves on and a tuple of plain values costs the garbage collector
        nothing."""
        return (self.order_id, self.client_order_id, self.symbol, self.side, self.order_type, self.time_in_force,
                self.quantity, self.original_quantity, self.price, self.stop_price, self.post_only,
                self.reduce_only, self.status, self.created_ms, self.updated_ms, self.source, self.seq,
                self.filled_quantity, self.average_price, self.fees_usd, self.decision_id, self.signal_id,
                self.reference_price, self.triggered_ms,
                tuple([(r.code, r.message) for r in self.reasons]) if self.reasons else ())

    @staticmethod
    def from_state(state: tuple[Any, ...]) -> Order:
        values = list(state)
        values[24] = [Reason(code, message) for code, message in state[24]] if state[24] else NO_REASONS
        return Order(*values)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id, "client_order_id": self.client_order_id, "symbol": self.symbol,
            "side": self.side, "order_type": self.order_type, "time_in_force": self.time_in_force,
            "quantity": self.quantity, "original_quantity": self.original_quantity, "price": self.price,
            "stop_price": self.stop_price, "post_only": self.post_only, "reduce_only": self.reduce_only,
            "status": self.status, "filled_quantity": self.filled_quantity,
            "remaining_quantity": self.remaining if self.is_open else 0.0,
            "average_price": self.average_price, "fees_usd": self.fees_usd, "created_ms": self.created_ms,
            "updated_ms": self.updated_ms, "triggered_ms": self.triggered_ms, "source": self.source,
            "decision_id": self.decision_id, "signal_id": self.signal_id, "reference_price": self.reference_price,
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    seq: int
    order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    notional_usd: float
    fee_usd: float
    liquidity: Liquidity
    reference_price: float | None
    slippage_bps: float
    """Signed cost against the reference price: positive when the fill was worse (buy above, sell below)."""
    realized_pnl_usd: float
    insurance_usd: float
    """Loss the simulated insurance fund took over in a liquidation (the account never goes below zero)."""
    timestamp_ms: int

    def state(self) -> tuple[Any, ...]:
        """The fill as a tuple of plain values, in the constructor's order."""
        return (self.fill_id, self.seq, self.order_id, self.symbol, self.side, self.quantity, self.price,
                self.notional_usd, self.fee_usd, self.liquidity, self.reference_price, self.slippage_bps,
                self.realized_pnl_usd, self.insurance_usd, self.timestamp_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fill_id": self.fill_id, "order_id": self.order_id, "symbol": self.symbol, "side": self.side,
            "quantity": self.quantity, "price": self.price, "notional_usd": self.notional_usd,
            "fee_usd": self.fee_usd, "fee_asset": "USDT", "liquidity": self.liquidity,
            "reference_price": self.reference_price, "slippage_bps": self.slippage_bps,
            "realized_pnl_usd": self.realized_pnl_usd, "insurance_usd": self.insurance_usd,
            "timestamp_ms": self.timestamp_ms, "seq": self.seq,
        }


@dataclass(slots=True)
class Position:
    """A USDT-margined perpetual position (one-way mode: one net size per symbol)."""

    symbol: str
    size: float = 0.0
    entry_price: float = 0.0
    margin_mode: MarginMode = "cross"
    leverage: float = 5.0
    isolated_margin_usd: float = 0.0
    realized_pnl_usd: float = 0.0
    fees_usd: float = 0.0
    funding_usd: float = 0.0
    """Net funding received (negative: paid)."""
    opened_ms: int | None = None
    updated_ms: int = 0

    def copy(self) -> Position:
        return Position(self.symbol, self.size, self.entry_price, self.margin_mode, self.leverage,
                        self.isolated_margin_usd, self.realized_pnl_usd, self.fees_usd, self.funding_usd,
                        self.opened_ms, self.updated_ms)

    def key(self) -> tuple[float, ...]:
        """The numbers a ledger replay must reproduce exactly."""
        return (self.size, self.entry_price, self.isolated_margin_usd, self.realized_pnl_usd, self.fees_usd,
                self.funding_usd)


@dataclass(frozen=True, slots=True)
class FundingPayment:
    seq: int
    symbol: str
    funding_time_ms: int
    rate: float
    premium: float
    mark_price: float
    position_size: float
    payment_usd: float
    """Cash to the position: negative when it paid (a long pays when the rate is positive)."""

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "funding_time_ms": self.funding_time_ms, "funding_rate": self.rate,
                "funding_rate_bps": self.rate * 1e4, "premium": self.premium, "mark_price": self.mark_price,
                "position_size": self.position_size, "payment_usd": self.payment_usd}


@dataclass(frozen=True, slots=True)
class EquitySample:
    timestamp_ms: int
    equity_usd: float
    wallet_usd: float
    unrealized_pnl_usd: float
    spot_value_usd: float
    gross_exposure_usd: float
    net_exposure_usd: float
    drawdown_pct: float

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp_ms": self.timestamp_ms, "equity_usd": self.equity_usd, "wallet_usd": self.wallet_usd,
                "unrealized_pnl_usd": self.unrealized_pnl_usd, "spot_value_usd": self.spot_value_usd,
                "gross_exposure_usd": self.gross_exposure_usd, "net_exposure_usd": self.net_exposure_usd,
                "drawdown_pct": self.drawdown_pct}
