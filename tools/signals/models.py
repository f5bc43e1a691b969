"""The signals tools' input and output models (strict: unknown fields are refused, bounds stated)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quantdesk.server.registry import ToolInput, ToolOutput
from quantdesk.tools.desk.models import Symbol, TimeMs

SignalType = Literal["momentum", "mean_reversion", "funding_carry", "regime"]
ProfileName = Literal["conservative", "balanced", "aggressive"]
Verdict = Literal["APPROVED", "SIZED_DOWN", "REJECTED"]
Reason = Field(min_length=1, max_length=500, description="Why: recorded with the control state and in the decision "
                                                         "log.")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArguments(ToolInput):
    pass


def parse_since(value: str | None) -> int | None:
    """An ISO-8601 timestamp (Z or an offset; naive means UTC) as ms since the epoch."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {value!r} (e.g. 2025-01-01T00:00:00Z)") from exc
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class SinceMixin(ToolInput):
    since: str | None = Field(None, max_length=40, description="ISO-8601 timestamp (UTC when no offset): only rows "
                                                              "at or after it. Use since or since_ms, not both.")
    since_ms: TimeMs | None = None

    @field_validator("since")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        parse_since(value)
        return value

    def since_value(self) -> int | None:
        if self.since is not None and self.since_ms is not None:
            from quantdesk.server.errors import InvalidArgument, Problem

            raise InvalidArgument.from_problems([Problem("$.since", "give since or since_ms, not both")])
        return parse_since(self.since) if self.since is not None else self.since_ms


class ListSignalsInput(SinceMixin):
    limit: int = Field(100, ge=1, le=10_000, description="At most this many signals, newest first.")
    signal_type: SignalType | None = None
    symbol: Symbol | None = None
    live_only: bool = Field(False, description="Only signals whose TTL has not run out at the desk's time.")


class SignalOut(_Out):
    signal_id: str
    symbol: str
    signal_type: str
    layer: str
    direction: Literal["long", "short"]
    strength: float
    confidence: float
    score: float = Field(description="Signed strength (+ long, - short): what IC is computed on.")
    created_ms: int
    created_at: str | None
    ttl_seconds: int
    expires_ms: int
    expires_at: str | None
    price: float = Field(description="The symbol's mid when the signal was made.")
    details: dict[str, Any]
    expired: bool | None = None


class SignalsOutput(ToolOutput):
    signals: list[SignalOut]
    count: int
    desk_time_ms: int
    desk_time: str | None = None
    data_source: str


class CycleInput(ToolInput):
    generate: bool = Field(True, description="Run the generators first (false: act only on the stored live "
                                             "signals).")


class DecisionOut(_Out):
    decision_id: str
    symbol: str
    action: str = Field(description="open_long, open_short or close.")
    verdict: Verdict
    quantity: float
    signal_id: str | None = Field(description="The order's signal_id (an exit carries the signal it unwinds).")
    order_id: str | None
    order_status: str | None
    combined_score: float
    reasons: list[dict[str, str]]
    votes: list[dict[str, Any]]


class CycleOutput(ToolOutput):
    desk_time_ms: int
    desk_time: str | None
    profile: str
    control_state: str
    signals_made: int
    decisions: list[DecisionOut]
    orders_placed: int
    cycle_wall_ms: float
    data_source: str


class RunInput(ToolInput):
    cycles: int = Field(ge=1, le=20_160, description="How many cycles: each advances the simulated clock to the next "
                                                     "cycle boundary and runs one cycle (20 160 = two weeks of "
                                                     "minutes).")


class RunOutput(ToolOutput):
    cycles: int
    from_ms: int
    to_ms: int
    from_: str | None = Field(alias="from")
    to: str | None
    orders_placed: int
    verdicts: dict[str, int]
    stopped: str | None = Field(description="Why the run stopped early (a halt), or null.")
    wall_seconds: float
    control_state: str
    equity_usd: float
    data_source: str

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LoopInput(ToolInput):
    cycle_seconds: int | None = Field(None, ge=10, le=86_400, description="Desk seconds between cycles (default "
                                                                          "60).")


class LoopStatusOutput(ToolOutput):
    enabled: bool
    cycle_seconds: int
    clock: str
    profile: str
    weights: dict[str, float]
    generators: dict[str, dict[str, Any]]
    traded_symbols: list[str]
    last_cycle_ms: int | None
    last_cycle: str | None
    cycles: int
    cycle_wall_ms_median: float | None
    control_state: str
    desk_time_ms: int


class ProfileInput(ToolInput):
    profile: ProfileName = Field(description="conservative, balanced or aggressive.")


class ProfileOutput(ToolOutput):
    profile: ProfileName
    parameters: dict[str, Any]
    profiles: dict[str, dict[str, Any]]
    previous_profile: str | None = None
    changed: bool | None = None
    decision_id: str | None = None


class HaltInput(ToolInput):
    reason: str = Field("halted through the trading API", min_length=1, max_length=500,
                        description="Why: recorded with the latch and in the decision log.")


class HaltOutput(ToolOutput):
    status: Literal["halted"]
    state: str
    already_halted: bool
    reason: str | None
    halted_at: str | None
    cancelled_orders: int
    episode: int


class ResumeInput(ToolInput):
    reason: str = Field("resumed through the trading API", min_length=1, max_length=500,
                        description="Why: recorded in the decision log.")


class ResumeOutput(ToolOutput):
    status: Literal["resumed", "already_running"]
    state: str
    steps: list[str] = Field(description="The control-plane steps taken: reset_kill_switch, resume_trading.")
    reason: str


class SignalMetricsInput(ToolInput):
    signal_type: SignalType | None = None
    symbol: Symbol | None = None
    block: int = Field(20, ge=3, le=1000, description="Kept pairs per IC block (IC mean/std/IR/t are over blocks).")


class SignalMetricsOutput(ToolOutput):
    metrics: list[dict[str, Any]]
    contributions: list[dict[str, Any]] = Field(description="P&L per signal, sorted by |P&L|.")
    contributions_by_signal_type: list[dict[str, Any]]
    strategy_pnl_usd: float
    funding_usd: float
    bar_seconds: int
    block: int
    method: str
    desk_time_ms: int
    data_source: str


class PerformanceInput(ToolInput):
    bar: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = Field("1h", description="Equity sampling bar for Sharpe "
                                                                               "and Sortino (365-day year).")


class PerformanceOutput(ToolOutput):
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown_pct: float | None
    volatility_annual: float | None
    total_return_pct: float | None
    periods_per_year: float | None
    bar: str
    observations: int | None
    closed_trades: int
    open_trades: int
    win_rate: float | None
    profit_factor: float | None
    avg_trade_duration_seconds: float | None
    strategy_pnl_usd: float
    funding_usd: float
    null_reasons: dict[str, str]
    conventions: str
    desk_time_ms: int
    data_source: str


class SystemMetricsOutput(ToolOutput):
    cycle_latency_ms: dict[str, float | int | None]
    orders_submitted: int
    orders_rejected: int
    order_rejection_rate: float | None
    order_rejections_by_reason: dict[str, int]
    order_rejection_rates_by_reason: dict[str, float] = Field(description="Share of submitted orders, per code.")
    strategy_decisions: int
    strategy_verdicts: dict[str, int]
    strategy_rejection_rate: float | None
    strategy_rejections_by_reason: dict[str, int]
    strategy_rejection_rates_by_reason: dict[str, float] = Field(description="Share of strategy decisions, per "
                                                                             "code.")
    circuit_breaker_activations: int = Field(description="Daily-loss and drawdown breaker trips since start.")
    circuit_breaker_activations_logged: dict[str, int] = Field(description="Breaker trips in the risk-event log, "
                                                                           "all time, by code.")
    kill_switch_activations: int
    kill_switch_activations_by_actor: dict[str, int]
    control_state: str
    counters: dict[str, int]
    event_bus: dict[str, int]
    since: str
    desk_time_ms: int
    data_source: str


class TradingHealthOutput(ToolOutput):
    status: Literal["healthy", "degraded"]
    services: dict[str, Literal["healthy", "unhealthy"]]
    timestamp: str | None
    control_state: str
    data_source: str | None


class TradingPortfolioOutput(ToolOutput):
    total_value: float = Field(description="Equity, USD.")
    cash: float = Field(description="USDT balance.")
    unrealized_pnl: float
    realized_pnl_today: float = Field(description="Realized P&L less fees since 00:00 UTC of the desk's day.")
    drawdown: float = Field(description="Fraction below the equity peak.")
    positions: list[dict[str, Any]]
    timestamp: str | None
    desk_time_ms: int
    data_source: str
    execution_mode: Literal["paper"]
