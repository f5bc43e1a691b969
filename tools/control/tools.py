"""Control-plane tools: status, pause and resume, the kill switch and its reset, cancel-all, deleverage,
risk limits, the decision log and risk events."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.tools.desk.models import FillOut, Limit, OrderOut, Symbol, TimeMs
from quantdesk.tools.desk.service import DeskService
from quantdesk.tools.desk.tools import on_desk

tools = ToolSet("control")

Reason = Field(min_length=1, max_length=500, description="Why: recorded with the state and in the decision log.")



class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArguments(ToolInput):
    pass


class ControlStatusOutput(ToolOutput):
    state: Literal["running", "paused", "killed", "unknown"] = Field(
        description="unknown: the control store cannot be read, and every order is refused (fail closed).")
    control_store_ok: bool
    control_store_error: str | None
    is_trading_allowed: bool = Field(description="True only when running.")
    is_new_exposure_allowed: bool
    are_reduce_only_orders_allowed: bool
    execution_mode: Literal["paper"]
    reason: str | None
    actor: str | None
    episode: int | None = Field(description="How many times the kill switch has been latched.")
    updated_at: str | None
    paused_at: str | None
    killed_at: str | None
    kill_reason: str | None
    flattened_this_episode: bool
    daily_loss_pct: float | None
    drawdown_pct: float | None
    max_daily_loss_pct: float | None
    max_drawdown_pct: float | None
    timestamp: str | None
    timestamp_ms: int


@tools.tool(scope="read", title="Control status", read_only=True, idempotent=True)
async def get_control_status(args: NoArguments, ctx: CallContext) -> ControlStatusOutput:
    """The desk's control state: running, paused, killed, or unknown when the control store cannot be read
    (then every order is refused), with who set it, why and when, whether trading and new exposure are
    allowed, and the daily-loss and drawdown breakers against their limits."""
    status = await on_desk(ctx, lambda desk: desk.control.status())
    return ControlStatusOutput.model_validate(status)


class ReasonInput(ToolInput):
    reason: str = Reason


class OptionalReasonInput(ToolInput):
    reason: str | None = Field(None, min_length=1, max_length=500, description="Why, for the decision log.")


class TransitionOutput(ToolOutput):
    action: str = Field(description="paused / resumed, or already_paused / already_running, or refused.")
    state: Literal["running", "paused", "killed", "unknown"]
    reason: str | None
    paused_at: str | None = None
    message: str | None = None


@tools.tool(scope="control", title="Pause trading", idempotent=True)
async def pause_trading(args: ReasonInput, ctx: CallContext) -> TransitionOutput:
    """Pause the desk: orders that add exposure are refused; cancels and orders that only reduce a position
    still go through, and resting orders stay. Refused (action `refused`) when the desk is killed."""
    result = await on_desk(ctx, lambda desk: desk.control.pause(args.reason, ctx.principal.actor))
    return TransitionOutput.model_validate(result)


@tools.tool(scope="control", title="Resume trading", idempotent=True)
async def resume_trading(args: OptionalReasonInput, ctx: CallContext) -> TransitionOutput:
    """Resume a paused desk. Refused (action `refused`) when the kill switch is latched: only
    reset_kill_switch leaves killed, and it goes to paused."""
    result = await on_desk(ctx, lambda desk: desk.control.resume(args.reason, ctx.principal.actor))
    return TransitionOutput.model_validate(result)


class KillInput(ToolInput):
    reason: str = Reason
    flatten: bool = Field(False, description="Also close every perpetual position with reduce-only market orders "
                          "(at most once per kill episode).")


class CancelResultOut(_Out):
    order_id: str
    client_order_id: str | None
    symbol: str
    ok: bool
    status: str
    error: str | None


class CancelInstruction(_Out):
    tool: Literal["cancel_all_orders", "cancel_spot_all_orders"]
    symbol: str


class KillOutput(ToolOutput):
    action: Literal["killed"]
    already_killed: bool
    state: Literal["killed"]
    reason: str | None
    episode: int
    killed_at: str | None
    latched_durably: bool = Field(description="The latch was written and fsynced before this answer.")
    cancelled: list[CancelResultOut] = Field(description="One result per order the kill cancelled.")
    cancel_instructions: list[CancelInstruction] = Field(
        description="The AIS document's instruction shape, for clients that expect it; the cancels are done.")
    flatten_requested: bool
    already_flattened: bool
    flatten_orders: list[OrderOut]
    flatten_fills: list[FillOut]


@tools.tool(scope="control", title="Trigger the kill switch", destructive=True)
async def trigger_kill_switch(args: KillInput, ctx: CallContext) -> KillOutput:
    """Emergency stop: latch the desk in `killed` (written durably before this answers, so it survives a
    crash and a restart), cancel every open order and return one result per order; with flatten, also close
    every perpetual position with reduce-only market orders and return their fills. While killed every new
    order is refused. Repeating it is safe (already_killed). Only reset_kill_switch (admin) leaves killed.
    """
    desk = ctx.services.get(DeskService)
    desk.engine.request_interrupt()  # a running advance stops at its next step instead of delaying the kill
    result = await on_desk(ctx, lambda d: d.control.kill(args.reason, flatten=args.flatten, actor=ctx.principal.actor))
    return KillOutput.model_validate(result)


class ResetInput(ToolInput):
    reason: str = Reason
    confirm: Literal[True] = Field(description="Must be true: resetting re-opens the desk (to paused).")


class ResetOutput(ToolOutput):
    action: Literal["reset"]
    previous_state: str
    state: Literal["paused"]
    reason: str
    paused_at: str | None
    message: str


@tools.tool(scope="admin", title="Reset the kill switch")
async def reset_kill_switch(args: ResetInput, ctx: CallContext) -> ResetOutput:
    """Clear a latched kill switch (or an unreadable control store) with a reason: the desk goes to `paused`,
    never straight to running, and nothing is re-opened; resume_trading then restarts trading. An error
    when the desk is not killed."""
    result = await on_desk(ctx, lambda desk: desk.control.reset(args.reason, ctx.principal.actor))
    return ResetOutput.model_validate(result)


class CancelAllInput(ToolInput):
    symbols: list[Symbol] | None = Field(None, max_length=32, description="Only these symbols (null: all): "
                                         "canonical (BTC-USDT-PERP) or venue symbols (BTCUSDT = spot and perpetual).")


class CancelAllOutput(ToolOutput):
    cancelled: list[CancelResultOut]
    count: int
    symbols: list[str] | None
    cancel_instructions: list[CancelInstruction]


@tools.tool(scope="control", title="Cancel all orders", destructive=True, idempotent=True)
async def cancel_all_orders(args: CancelAllInput, ctx: CallContext) -> CancelAllOutput:
    """Cancel every open order and untriggered stop (of the given symbols, or all), returning one result per
    order; with nothing open the list is empty. Works in every control state."""
    result = await on_desk(ctx, lambda desk: desk.control.cancel_all(args.symbols, ctx.principal.actor))
    return CancelAllOutput.model_validate(result)


class DeleverageInput(ToolInput):
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$",
                        description="The perpetual: canonical (BTC-USDT-PERP) or its venue symbol (BTCUSDT).")
    reduce_pct: float = Field(1.0, gt=0, le=1, allow_inf_nan=False,
                              description="Share of the live position to close, 0 < reduce_pct <= 1.")


class DeleverageOutput(ToolOutput):
    symbol: str
    reduce_pct: float
    action: Literal["deleveraged", "not_filled", "no_position", "too_small"]
    side: Literal["buy", "sell"] | None
    quantity: float
    position_size_before: float
    position_size_after: float
    order: OrderOut | None
    fills: list[FillOut]


@tools.tool(scope="control", title="Deleverage a position", destructive=True)
async def deleverage_position(args: DeleverageInput, ctx: CallContext) -> DeleverageOutput:
    """Reduce a perpetual position by reduce_pct of its live size with a reduce-only market order (side and
    quantity computed here, rounded down to the lot) and return the order and its fills. Allowed while paused
    or killed: it can only reduce."""
    result = await on_desk(ctx, lambda desk: desk.control.deleverage(args.symbol, args.reduce_pct, ctx.principal.actor))
    return DeleverageOutput.model_validate(result)


class LimitsOutput(ToolOutput):
    max_order_notional_usd: float | None
    max_position_notional_usd: float | None
    max_gross_exposure_usd: float | None
    max_net_exposure_usd: float | None
    max_leverage: float | None
    max_daily_loss_pct: float | None = Field(description="Breaker: the kill switch trips at this daily loss.")
    max_drawdown_pct: float | None = Field(description="Breaker: the kill switch trips at this drawdown.")
    max_orders_per_second: int | None


@tools.tool(scope="read", title="Risk limits", read_only=True, idempotent=True)
async def get_risk_limits(args: NoArguments, ctx: CallContext) -> LimitsOutput:
    """The pre-trade limits and circuit breakers in force (null = off). They persist across restarts."""
    from dataclasses import asdict

    limits = await on_desk(ctx, lambda desk: desk.control.limits())
    return LimitsOutput.model_validate(asdict(limits))


_USD = Field(None, gt=0, le=1e12, allow_inf_nan=False)


class SetLimitsInput(ToolInput):
    max_order_notional_usd: float | None = _USD
    max_position_notional_usd: float | None = _USD
    max_gross_exposure_usd: float | None = _USD
    max_net_exposure_usd: float | None = _USD
    max_leverage: float | None = Field(None, gt=0, le=200, allow_inf_nan=False)
    max_daily_loss_pct: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    max_drawdown_pct: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    max_orders_per_second: int | None = Field(None, ge=1, le=1_000_000)
    disable: list[Literal["max_order_notional_usd", "max_position_notional_usd", "max_gross_exposure_usd",
                          "max_net_exposure_usd", "max_leverage", "max_daily_loss_pct", "max_drawdown_pct",
                          "max_orders_per_second"]] = Field(default_factory=list, max_length=8,
                                                            description="Limits to switch off.")


@tools.tool(scope="control", title="Set risk limits", idempotent=True)
async def set_risk_limits(args: SetLimitsInput, ctx: CallContext) -> LimitsOutput:
    """Change pre-trade limits and breakers: the fields given are set, those in `disable` are switched off,
    the others keep their values. Written durably and logged in the decision log; returns the limits now in
    force."""
    from dataclasses import asdict

    changes: dict[str, Any] = {k: v for k, v in args.model_dump(exclude={"disable"}).items() if v is not None}
    clash = sorted(set(changes) & set(args.disable))
    if clash:
        raise InvalidArgument.from_problems([Problem(f"$.{name}", "is both set and disabled") for name in clash])
    changes.update({name: None for name in args.disable})
    if not changes:
        raise InvalidArgument.from_problems([Problem("$", "give at least one limit to set or disable")])
    limits = await on_desk(ctx, lambda desk: desk.control.set_limits(changes, ctx.principal.actor))
    return LimitsOutput.model_validate(asdict(limits))


class DecisionsInput(ToolInput):
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    risk_passed: bool | None = Field(None, description="Outcome: true = passed the risk checks, false = refused.")
    symbol: Symbol | None = None
    decision_type: Literal["order_intent", "control"] | None = None
    limit: Limit = 100


class VoteOut(_Out):
    agent_id: str
    confidence: float
    signal_id: str | None
    direction: str | None
    # The strategy loop's votes also say how each signal counted (tools/signals/loop.py).
    strength: float | None = None
    weight: float | None = None
    vote: float | None = Field(None, description="weight x direction x strength x confidence, when counted.")
    counted: bool | None = None
    excluded_reason: str | None = Field(None, description="Why a signal did not count: signal_ttl_expired, "
                                        "signal_type_not_allowed, zero_weight.")


class DecisionOut(_Out):
    decision_id: str
    timestamp_ms: int
    decision_type: str
    source: str
    symbol: str | None
    summary: str
    agent_votes: list[VoteOut]
    selected_signal_id: str | None
    selected_order_id: str | None
    risk_passed: bool
    risk_reasons: list[str] = Field(description="Reason codes (empty when passed).")
    risk_messages: list[str]
    details: dict[str, Any]


class DecisionsOutput(ToolOutput):
    decisions: list[DecisionOut]
    count: int


@tools.tool(scope="read", title="Decision log", read_only=True, idempotent=True)
async def list_decisions(args: DecisionsInput, ctx: CallContext) -> DecisionsOutput:
    """The append-only decision log, newest first: one entry per order intent (from a tool call, a control
    action, later hedges and strategies) with the votes behind it, the order it became, whether it passed
    the risk checks and the reason codes; control actions too. Filter by time, outcome, symbol and type."""
    rows = await on_desk(ctx, lambda desk: desk.control.log.entries(
        since_ms=args.since_ms, until_ms=args.until_ms, risk_passed=args.risk_passed, symbol=args.symbol,
        decision_type=args.decision_type, limit=args.limit))
    return DecisionsOutput.model_validate({"decisions": [d.to_dict() for d in rows], "count": len(rows)})


class RiskEventsInput(ToolInput):
    since_ms: TimeMs | None = None
    code: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Z_]+$")
    limit: Limit = 100


class RiskEventOut(_Out):
    seq: int
    timestamp_ms: int
    code: str
    message: str
    details: dict[str, Any]


class RiskEventsOutput(ToolOutput):
    events: list[RiskEventOut]
    count: int


@tools.tool(scope="read", title="Risk events", read_only=True, idempotent=True)
async def list_risk_events(args: RiskEventsInput, ctx: CallContext) -> RiskEventsOutput:
    """Circuit-breaker trips (DAILY_LOSS_LIMIT, DRAWDOWN_LIMIT), newest first, with the equity figures that
    tripped them. Refused orders are in list_decisions (risk_passed=false)."""
    rows = await on_desk(ctx, lambda desk: desk.control.log.risk_events(since_ms=args.since_ms, code=args.code,
                                                                        limit=args.limit))
    return RiskEventsOutput.model_validate({"events": [r.to_dict() for r in rows], "count": len(rows)})
