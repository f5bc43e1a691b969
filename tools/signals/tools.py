"""Signals and strategy tools: signals with TTLs, the strategy loop, profiles, halt and resume on the control
plane's latch, and signal, performance and system metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import anyio.to_thread
from pydantic import Field

from quantdesk.server.registry import CallContext, ToolInput, ToolSet
from quantdesk.tools.bus.bus import MAX_QUEUE, EventBus
from quantdesk.tools.bus.tools import BusEventOut, StreamEventsInput, Topic, stream_events
from quantdesk.tools.desk.service import DeskService
from quantdesk.tools.risk.service import RiskService
from quantdesk.tools.signals.model import SIGNAL_TOPICS
from quantdesk.tools.signals.models import (
    CycleInput,
    CycleOutput,
    HaltInput,
    HaltOutput,
    ListSignalsInput,
    LoopInput,
    LoopStatusOutput,
    NoArguments,
    PerformanceInput,
    PerformanceOutput,
    ProfileInput,
    ProfileOutput,
    ResumeInput,
    ResumeOutput,
    RunInput,
    RunOutput,
    SignalMetricsInput,
    SignalMetricsOutput,
    SignalsOutput,
    SystemMetricsOutput,
    TradingHealthOutput,
    TradingPortfolioOutput,
)
from quantdesk.tools.signals.service import SignalService

tools = ToolSet("signals")
T = TypeVar("T")


def _open(services: Any) -> SignalService:
    return SignalService(services.get(DeskService), services.get(RiskService), services.get(EventBus),
                         services.state, background=bool(services.settings.get("background", True)))


tools.service(SignalService, _open, at_start=True)



async def on_signals(ctx: CallContext, work: Callable[[SignalService], T]) -> T:
    """Off the event loop: a cycle takes the desk's lock and may wait for an advance."""
    service = ctx.services.get(SignalService)
    return await anyio.to_thread.run_sync(work, service)


@tools.tool(scope="read", title="Signals", read_only=True, idempotent=True)
async def list_signals(args: ListSignalsInput, ctx: CallContext) -> SignalsOutput:
    """Signals from the pipeline, newest first: each with its id, symbol, type (momentum, mean_reversion,
    funding_carry, regime), direction, strength, confidence, the price it was made at, its creation time and its
    TTL by strategy layer (scalping 300 s, momentum 1800 s, mean reversion 3600 s, investor 86400 s), and whether
    it has expired. Filter by type, symbol, time (since, ISO-8601, or since_ms) or live_only."""
    since = args.since_value()
    return SignalsOutput.model_validate(await on_signals(ctx, lambda s: s.list_signals(
        limit=args.limit, signal_type=args.signal_type, symbol=args.symbol, since_ms=since, live_only=args.live_only)))


@tools.tool(scope="trade", title="Generate signals")
async def generate_signals(args: NoArguments, ctx: CallContext) -> SignalsOutput:
    """Run every generator on every symbol at the desk's time: the signals made are stored and published on the
    event bus (topic `signal`). Nothing is traded."""
    return SignalsOutput.model_validate(await on_signals(ctx, lambda s: s.generate()))


@tools.tool(scope="trade", title="Run one strategy cycle")
async def run_strategy_cycle(args: CycleInput, ctx: CallContext) -> CycleOutput:
    """One cycle of the strategy loop at the desk's time: generate signals, combine the live ones by weight per
    symbol, size an entry with the active profile (scaled for drawdown and volatility), check it against the
    control plane and the profile, and place market orders carrying their signal_id. Each considered trade gets
    a decision-log entry with the votes, the chosen signal, the verdict (APPROVED, SIZED_DOWN, REJECTED) and the
    reasons. Expired signals are never acted on; paused means no new exposure; halted means no orders."""
    return CycleOutput.model_validate(await on_signals(ctx, lambda s: s.cycle(args.generate)))


@tools.tool(scope="trade", title="Run the strategy on the simulated clock")
async def run_strategy(args: RunInput, ctx: CallContext) -> RunOutput:
    """On a simulated clock: `cycles` times, advance the desk to the next cycle boundary (every order, fill,
    funding payment and equity sample in between) and run a strategy cycle. Stops at once when the kill switch
    (or halt_trading) asks the desk to stop. Returns the orders placed, the verdicts and the wall time."""
    return RunOutput.model_validate(await on_signals(ctx, lambda s: s.run(cycles=args.cycles)))


@tools.tool(scope="control", title="Start the strategy loop", idempotent=True)
async def start_strategy_loop(args: LoopInput, ctx: CallContext) -> LoopStatusOutput:
    """Run a strategy cycle at every cycle_seconds of desk time, in the background (on a simulated clock, once
    per boundary the clock passes when something advances it). The setting persists across restarts."""
    who = ctx.principal.actor
    return LoopStatusOutput.model_validate(await on_signals(ctx, lambda s: s.set_loop(True, args.cycle_seconds,
                                                                                       who)))


@tools.tool(scope="control", title="Stop the strategy loop", idempotent=True)
async def stop_strategy_loop(args: NoArguments, ctx: CallContext) -> LoopStatusOutput:
    """Stop running strategy cycles in the background. Positions and orders stay as they are (halt_trading
    stops trading itself)."""
    who = ctx.principal.actor
    return LoopStatusOutput.model_validate(await on_signals(ctx, lambda s: s.set_loop(False, None, who)))


@tools.tool(scope="read", title="Strategy status", read_only=True, idempotent=True)
async def get_strategy_status(args: NoArguments, ctx: CallContext) -> LoopStatusOutput:
    """The strategy loop: enabled or not, its cycle, the active profile, generator weights and layers with their
    TTLs, the traded symbols, the last cycle and the control state."""
    return LoopStatusOutput.model_validate(await on_signals(ctx, lambda s: s.loop_status()))


@tools.tool(scope="read", title="Strategy profile", read_only=True, idempotent=True)
async def get_strategy_profile(args: NoArguments, ctx: CallContext) -> ProfileOutput:
    """The active strategy profile and its risk parameters (per-trade risk, stop and take-profit multiples,
    leverage cap, position cap, daily loss limit, allowed signal types), and every profile's."""
    return ProfileOutput.model_validate(await on_signals(ctx, lambda s: s.profile()))


@tools.tool(scope="control", title="Set the strategy profile", idempotent=True)
async def set_strategy_profile(args: ProfileInput, ctx: CallContext) -> ProfileOutput:
    """Switch the active profile (conservative, balanced, aggressive) atomically: the setting and its
    decision-log entry commit together and durably; the next cycle sizes with it."""
    who = ctx.principal.actor
    return ProfileOutput.model_validate(await on_signals(ctx, lambda s: s.set_profile(args.profile, who)))


@tools.tool(scope="control", title="Halt trading", destructive=True, idempotent=True)
async def halt_trading(args: HaltInput, ctx: CallContext) -> HaltOutput:
    """Halt all trading at once: the control plane's kill switch (the same latch as trigger_kill_switch, written
    durably; every open order cancelled; positions kept). The strategy loop and every other order source stop.
    Leave it with resume_halted_trading."""
    who = ctx.principal.actor
    return HaltOutput.model_validate(await on_signals(ctx, lambda s: s.halt(args.reason, who)))


@tools.tool(scope="admin", title="Resume trading after a halt")
async def resume_halted_trading(args: ResumeInput, ctx: CallContext) -> ResumeOutput:
    """Resume after a halt: reset the kill switch (killed -> paused) and resume (paused -> running), each step
    logged by the control plane; a paused desk is only resumed. An admin action, like reset_kill_switch."""
    who = ctx.principal.actor
    return ResumeOutput.model_validate(await on_signals(ctx, lambda s: s.resume(args.reason, who)))


@tools.tool(scope="read", title="Signal metrics", read_only=True, idempotent=True)
async def get_signal_metrics(args: SignalMetricsInput, ctx: CallContext) -> SignalMetricsOutput:
    """What the signals are worth, alphalens conventions: per signal type and symbol, the Spearman IC of the
    signed strength against forward returns at 1, 5 and 10 cycles (pairs sampled every h cycles, so returns do
    not overlap), IC mean, std, IR and t-statistic over blocks, hit rate with a 95 % Wilson interval; and each
    signal's contribution to P&L from the signal_id on the strategy's fills, sorted by absolute P&L."""
    return SignalMetricsOutput.model_validate(await on_signals(ctx, lambda s: s.signal_metrics(
        signal_type=args.signal_type, symbol=args.symbol, block=args.block)))


@tools.tool(scope="read", title="Performance metrics", read_only=True, idempotent=True)
async def get_performance_metrics(args: PerformanceInput, ctx: CallContext) -> PerformanceOutput:
    """Sharpe and Sortino of the desk's equity (tools/risk conventions, 365-day year), max drawdown, and the
    strategy's round trips: win rate, profit factor, average trade duration and its P&L. Undefined values are
    null with the reason."""
    return PerformanceOutput.model_validate(await on_signals(ctx, lambda s: s.performance_metrics(args.bar)))


@tools.tool(scope="read", title="System metrics", read_only=True, idempotent=True)
async def get_system_metrics(args: NoArguments, ctx: CallContext) -> SystemMetricsOutput:
    """Strategy-cycle latency (p50/p95/p99/max wall ms), order and strategy rejection rates by reason, circuit
    breaker and kill-switch activations, and event-bus counts, since the process started."""
    return SystemMetricsOutput.model_validate(await on_signals(ctx, lambda s: s.system_metrics()))


@tools.tool(scope="read", title="Trading health", read_only=True, idempotent=True)
async def get_trading_health(args: NoArguments, ctx: CallContext) -> TradingHealthOutput:
    """Health of the trading services: the state store, the desk engine, the market feed, the control plane, the
    event bus and the signal engine, each healthy or unhealthy."""
    return TradingHealthOutput.model_validate(await on_signals(ctx, lambda s: s.health()))


@tools.tool(scope="read", title="Trading portfolio", read_only=True, idempotent=True)
async def get_trading_portfolio(args: NoArguments, ctx: CallContext) -> TradingPortfolioOutput:
    """The portfolio in the TRADEOS shape: total value (equity), cash, unrealized P&L, realized P&L today (less
    fees, since 00:00 UTC desk time), drawdown from the equity peak, and every holding and position."""
    return TradingPortfolioOutput.model_validate(await on_signals(ctx, lambda s: s.trading_portfolio()))


TRADING_TOPICS = cast(tuple[Topic, ...], ("portfolio", "fill", "risk_event", "regime_change", *SIGNAL_TOPICS))


class TradingStreamInput(ToolInput):
    max_events: int = Field(100, ge=1, le=10**9, description="Stop after this many events (WebSocket clients may "
                                                             "follow the bus for good).")
    duration_seconds: float = Field(5.0, gt=0, le=30 * 86_400, allow_inf_nan=False,
                                    description="Stop after this long (WebSocket clients may ask for days).")
    max_queue: int = Field(1_000, ge=1, le=MAX_QUEUE, description="This subscriber's queue; the oldest queued "
                                                                   "events are dropped when the reader is slow.")


@tools.stream(scope="stream", event_model=BusEventOut, title="Stream trading events", max_batch=10_000)
async def stream_trading_events(args: TradingStreamInput, ctx: CallContext) -> AsyncIterator[BusEventOut]:
    """Stream the trading events from the event bus: portfolio snapshots, new signals, fills, risk events
    (refusals, breaker trips), regime changes and strategy-profile switches, as they happen."""
    # The bus's own stream, on the trading topics: one subscription loop for every realtime door.
    topics: list[Topic] = list(TRADING_TOPICS)
    async for event in stream_events(StreamEventsInput(topics=topics, max_events=args.max_events,
                                                       duration_seconds=args.duration_seconds,
                                                       max_queue=args.max_queue), ctx):
        yield event


tools.metrics("quantdesk_signals", lambda services: services.get(SignalService).metrics(),
              labels={"verdicts_total": "verdict"})
