"""Risk tools: portfolio risk metrics, exposure and limits, position sizing, hedging that trades, the portfolio
and its trades, recorded metric series, alerts, and market regimes. Everything reads the paper desk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from quantdesk.server.registry import CallContext, ToolSet
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.desk.service import DeskService
from quantdesk.tools.risk.models import (
    AcknowledgeInput,
    AcknowledgeOutput,
    AlertsInput,
    AlertsOutput,
    AnalyzeRegimeInput,
    AnalyzeRegimeOutput,
    CloseHedgesInput,
    CreateRuleInput,
    CurrentRegimeOutput,
    DeleteRuleOutput,
    ExposureInput,
    ExposureOutput,
    HedgeAnalysisInput,
    HedgeAnalysisOutput,
    HedgeExecuteInput,
    HedgeExecutionOutput,
    LatestMetricInput,
    LatestMetricOutput,
    LimitUsageOutput,
    MetricSeriesInput,
    MetricSeriesOutput,
    NoArguments,
    PortfolioInput,
    PortfolioOutput,
    PositionSizeInput,
    PositionSizeOutput,
    RegimeHistoryInput,
    RegimeHistoryOutput,
    RegimeRef,
    ReloadOutput,
    RiskMetricsInput,
    RiskMetricsOutput,
    RuleOutput,
    RuleRef,
    RulesOutput,
    SetUsdLimitsInput,
    TrackingInput,
    TrackingOutput,
    TradesInput,
    TradesOutput,
)
from quantdesk.tools.risk.service import RiskService

tools = ToolSet("risk")
T = TypeVar("T")


def _open(services: Any) -> RiskService:
    return RiskService(services.get(DeskService), services.get(EventBus), services.state,
                       background=bool(services.settings.get("background", True)))


tools.service(RiskService, _open, at_start=True)



async def on_risk(ctx: CallContext, work: Callable[[RiskService], T]) -> T:
    """Run off the event loop: the work may wait for the desk's lock or read the market feed."""
    service = ctx.services.get(RiskService)
    return await anyio.to_thread.run_sync(work, service)


# --- metrics, exposure, limits, sizing ------------------------------------------------------------------

@tools.tool(scope="read", title="Portfolio risk metrics", read_only=True, idempotent=True)
async def get_risk_metrics(args: RiskMetricsInput, ctx: CallContext) -> RiskMetricsOutput:
    """Risk metrics of the desk's portfolio, computed on its equity series (not on a market proxy): volatility,
    VaR and CVaR at 95 % and at confidence_level by the historical, parametric and Cornish-Fisher methods,
    max drawdown, Sharpe, Sortino, Calmar and CAGR.

    The equity is taken at every `bar` boundary (UTC); periods per year follow from the bar on a 365-day year
    (1d = 365, 1h = 8760); the annual risk-free rate is de-annualized geometrically; losses are positive. A
    metric that is undefined (no variation, no downside, no drawdown) is null with its reason in null_reasons.
    Every answer states the method, periods per year, the window and the number of observations. Too short a
    window is an error naming how many returns are needed.
    """
    return RiskMetricsOutput.model_validate(await on_risk(ctx, lambda s: s.risk_metrics(
        bar=args.bar, since_ms=args.since_ms, until_ms=args.until_ms, window_days=args.window_days,
        risk_free_rate_annual=args.risk_free_rate_annual,
        min_acceptable_return_annual=args.min_acceptable_return_annual, confidence_level=args.confidence_level,
        var_method=args.var_method)))


@tools.tool(scope="read", title="Exposure per asset", read_only=True, idempotent=True)
async def get_exposure(args: ExposureInput, ctx: CallContext) -> ExposureOutput:
    """Exposure per asset and in total, spot holdings and perpetual positions together: quantities, values,
    average entry prices, net and gross exposure in USD and as fractions of equity, and each asset's hedge
    ratio (-perpetual size / spot holding). Use it to see what the portfolio is exposed to now."""
    return ExposureOutput.model_validate(await on_risk(ctx, lambda s: s.exposure(args.include_flat)))


@tools.tool(scope="read", title="Risk limits in USD and their use", read_only=True, idempotent=True)
async def get_risk_limit_usage(args: NoArguments, ctx: CallContext) -> LimitUsageOutput:
    """The control plane's enforced limits shown in USD at the current equity (position, margin = gross
    exposure the leverage limit allows, gross and net exposure, drawdown and daily-loss breakers), how much
    of each is in use now, and the enforced values themselves. What this shows is what the engine enforces."""
    return LimitUsageOutput.model_validate(await on_risk(ctx, lambda s: s.limits()))


@tools.tool(scope="control", title="Set risk limits in USD", idempotent=True)
async def set_risk_limits_usd(args: SetUsdLimitsInput, ctx: CallContext) -> LimitUsageOutput:
    """Set the control plane's limits from USD amounts: position, gross and net exposure and per-order limits
    directly; margin, drawdown and daily loss converted at the current equity into the ratios the engine
    enforces (max_leverage, max_drawdown_pct, max_daily_loss_pct). Written durably and logged in the decision
    log; returns the limits now in force. To switch a limit off use set_risk_limits."""
    values = {k: v for k, v in args.model_dump().items() if v is not None}
    who = ctx.principal.actor
    return LimitUsageOutput.model_validate(await on_risk(ctx, lambda s: s.set_limits(values, who)))


@tools.tool(scope="read", title="Position size", read_only=True, idempotent=True)
async def get_position_size(args: PositionSizeInput, ctx: CallContext) -> PositionSizeOutput:
    """Recommend a position size for an asset: fixed-fractional from equity, entry and an ATR stop, capped by
    a fractional Kelly estimate, a volatility target and the desk's limits and margin, with the stop-loss and
    take-profit prices for a long or a short. Every factor and cap comes back with its value and why, and
    binding_constraint says which one set the size. Nothing is traded."""
    from quantdesk.tools.risk.sizing import SizingRequest

    request = SizingRequest(side=args.side, profile=args.profile, risk_per_trade_pct=args.risk_per_trade_pct,
                            stop_atr_multiple=args.stop_atr_multiple,
                            take_profit_r_multiple=args.take_profit_r_multiple, kelly_fraction=args.kelly_fraction,
                            stop_price_usd=args.stop_price_usd, max_stop_pct=args.max_stop_pct,
                            target_volatility_annual=args.target_volatility_annual)
    return PositionSizeOutput.model_validate(await on_risk(ctx, lambda s: s.position_size(
        args.asset, args.instrument, request, entry_price_usd=args.entry_price_usd, atr_usd=args.atr_usd,
        atr_period=args.atr_period, timeframe=args.timeframe, volatility_annual=args.volatility_annual,
        win_rate=args.win_rate, payoff_ratio=args.payoff_ratio)))


# --- hedging ---------------------------------------------------------------------------------------------

@tools.tool(scope="read", title="Analyze hedges", read_only=True, idempotent=True)
async def analyze_hedge(args: HedgeAnalysisInput, ctx: CallContext) -> HedgeAnalysisOutput:
    """Analyze how the spot holdings are hedged by their perpetuals: per asset the spot, futures and net
    exposure, hedge ratio, margin use and the spot/hedge correlation, and the adjustments (side, quantity,
    priority) that would bring each to target_hedge_ratio (1 = fully hedged) within the lot, leverage,
    exposure and margin limits, with a commentary written from the numbers. Nothing is traded: use
    execute_hedge to place the adjustments."""
    return HedgeAnalysisOutput.model_validate(await on_risk(ctx, lambda s: s.hedge_analysis(
        args.target_hedge_ratio, args.assets, args.correlation_lookback_hours)))


@tools.tool(scope="trade", title="Execute hedge adjustments")
async def execute_hedge(args: HedgeExecuteInput, ctx: CallContext) -> HedgeExecutionOutput:
    """Bring each spot holding's hedge to target_hedge_ratio by placing market orders on its perpetual: real
    paper orders through the desk's risk checks, each with a decision-log entry (source risk:hedge). Returns
    the executed trades with their fills, every order (refused ones with their reasons), what was skipped and
    the exposure after. With a request_id, a retry never places a second order for an asset: it finds nothing
    left to do, or gets the first order back (idempotent_replay)."""
    who = ctx.principal.actor
    return HedgeExecutionOutput.model_validate(await on_risk(ctx, lambda s: s.execute_hedge(
        args.target_hedge_ratio, args.assets, args.request_id, who)))


@tools.tool(scope="trade", title="Close all hedges", destructive=True)
async def close_all_hedges(args: CloseHedgesInput, ctx: CallContext) -> HedgeExecutionOutput:
    """Close every hedge (a short perpetual position against a spot holding) with reduce-only market orders
    and return the executed trades with their fills; with include_unhedged, every perpetual position. Spot
    holdings are not sold. Reduce-only orders pass while the desk is paused."""
    who = ctx.principal.actor
    return HedgeExecutionOutput.model_validate(await on_risk(ctx, lambda s: s.close_hedges(
        args.include_unhedged, args.request_id, who)))


# --- portfolio, trades, series ----------------------------------------------------------------------------

@tools.tool(scope="read", title="Portfolio", read_only=True, idempotent=True)
async def get_portfolio(args: PortfolioInput, ctx: CallContext) -> PortfolioOutput:
    """The desk's portfolio now: total value (equity), cash (USDT), and every spot holding and perpetual
    position with quantity, price, value, allocation, average entry and unrealized P&L; with include_history,
    the total value at every history_bar over history_days from the recorded equity series."""
    return PortfolioOutput.model_validate(await on_risk(ctx, lambda s: s.portfolio(
        args.include_history, args.history_bar, args.history_days, args.refresh)))


@tools.tool(scope="read", title="Reload the portfolio", read_only=True, idempotent=True)
async def reload_portfolio(args: NoArguments, ctx: CallContext) -> ReloadOutput:
    """Bring the desk up to its clock and re-read the portfolio from its ledger (there is no exchange to
    re-query: the desk is a paper desk), recording any equity samples not recorded yet."""
    return ReloadOutput.model_validate(await on_risk(ctx, lambda s: s.reload()))


@tools.tool(scope="read", title="Trade history", read_only=True, idempotent=True)
async def list_trades(args: TradesInput, ctx: CallContext) -> TradesOutput:
    """The desk's trades (fills), newest first, with the order's source (tool:place_order, risk:hedge,
    control:..., liquidation): filter by symbol or asset, side, source, liquidity and time."""
    return TradesOutput.model_validate(await on_risk(ctx, lambda s: s.trades(
        symbol=args.symbol, side=args.side, source=args.source, liquidity=args.liquidity, since_ms=args.since_ms,
        until_ms=args.until_ms, limit=args.limit)))


@tools.tool(scope="read", title="Metric series", read_only=True, idempotent=True)
async def get_metric_series(args: MetricSeriesInput, ctx: CallContext) -> MetricSeriesOutput:
    """A recorded metric over time, aggregated (avg, min, max, sum, count or last) in buckets aligned to the
    UTC epoch. Portfolio metrics (value, P&L, daily P&L and loss, exposure, leverage, drawdown) are recorded at
    every desk equity sample; risk metrics (volatility, VaR, CVaR, Sharpe, Sortino of the trailing 30 days of
    hourly returns) at every desk hour. Default range: the 24 hours before the desk clock."""
    return MetricSeriesOutput.model_validate(await on_risk(ctx, lambda s: s.metric_series(
        args.metric_type, args.start_ms, args.end_ms, args.aggregation, args.bucket_seconds)))


@tools.tool(scope="read", title="Latest metric value", read_only=True, idempotent=True)
async def get_latest_metric(args: LatestMetricInput, ctx: CallContext) -> LatestMetricOutput:
    """The newest recorded value of a metric and its change over 24 hours (relative and absolute, against
    the last value at least 24 hours older; null with a reason when there is none)."""
    return LatestMetricOutput.model_validate(await on_risk(ctx, lambda s: s.latest_metric(args.metric_type)))


# --- alerts ------------------------------------------------------------------------------------------------

@tools.tool(scope="read", title="Alert rules", read_only=True, idempotent=True)
async def list_alert_rules(args: NoArguments, ctx: CallContext) -> RulesOutput:
    """The alert rules: metric, condition, threshold (fixed or a fraction of a control-plane limit, with its
    value now), severity, and whether the last point met the condition."""
    rules, source = await on_risk(ctx, lambda s: (s.rules(), s.data_source()))
    return RulesOutput.model_validate({"rules": rules, "count": len(rules), "data_source": source})


@tools.tool(scope="control", title="Create an alert rule")
async def create_alert_rule(args: CreateRuleInput, ctx: CallContext) -> RuleOutput:
    """Create a rule on a recorded metric: an alert is raised (stored, and published on the event bus) when a
    point crosses the threshold, either fixed or a fraction of a control-plane limit (drawdown_pct >= 0.8 x
    max_drawdown_pct). One alert per crossing: the rule re-arms when the metric comes back."""
    rule, source = await on_risk(ctx, lambda s: (s.create_rule(
        name=args.name, metric=args.metric, operator=args.operator, threshold=args.threshold, of_limit=args.of_limit,
        limit_fraction=args.limit_fraction, severity=args.severity, message=args.message), s.data_source()))
    return RuleOutput.model_validate({"rule": rule, "data_source": source})


@tools.tool(scope="control", title="Delete an alert rule", destructive=True, idempotent=True)
async def delete_alert_rule(args: RuleRef, ctx: CallContext) -> DeleteRuleOutput:
    """Delete an alert rule; the alerts it raised stay in the history."""
    deleted, source = await on_risk(ctx, lambda s: (s.delete_rule(args.rule_id), s.data_source()))
    return DeleteRuleOutput(rule_id=args.rule_id, deleted=deleted, data_source=source)


@tools.tool(scope="read", title="Alerts", read_only=True, idempotent=True)
async def list_alerts(args: AlertsInput, ctx: CallContext) -> AlertsOutput:
    """The stored alerts, newest first, with the value and threshold that raised them and their
    acknowledgement; filter by severity, acknowledged, rule and time."""
    alerts, source = await on_risk(ctx, lambda s: (s.alert_history(
        severity=args.severity, acknowledged=args.acknowledged, rule_id=args.rule_id, since_ms=args.since_ms,
        until_ms=args.until_ms, limit=args.limit), s.data_source()))
    return AlertsOutput.model_validate({"alerts": alerts, "count": len(alerts), "data_source": source})


@tools.tool(scope="control", title="Acknowledge an alert", idempotent=True)
async def acknowledge_alert(args: AcknowledgeInput, ctx: CallContext) -> AcknowledgeOutput:
    """Acknowledge an alert (who and when are stored; the first acknowledgement is kept and a repeat says
    already_acknowledged). The acknowledgement is published on the event bus."""
    who = ctx.principal.actor
    (alert, already), source = await on_risk(ctx, lambda s: (s.acknowledge(args.alert_id, who, args.note),
                                                             s.data_source()))
    return AcknowledgeOutput.model_validate({"alert": alert, "already_acknowledged": already, "data_source": source})


# --- regimes -------------------------------------------------------------------------------------------

@tools.tool(scope="read", title="Current market regime", read_only=True, idempotent=True)
async def get_market_regime(args: RegimeRef, ctx: CallContext) -> CurrentRegimeOutput:
    """The current market regime of a tracked symbol (BULL, BEAR, SIDEWAYS, HIGH_VOLATILITY, CRISIS, or
    UNKNOWN while warming up) from a Gaussian HMM on the desk's market bars, read by forward filtering only
    (a label never uses later bars), with its confidence, per-regime probabilities, since when, the fitted
    states and the trading parameters of the regime."""
    return CurrentRegimeOutput.model_validate(await on_risk(ctx, lambda s: s.current_regime(args.symbol,
                                                                                           args.timeframe)))


@tools.tool(scope="read", title="Regime history", read_only=True, idempotent=True)
async def get_regime_history(args: RegimeHistoryInput, ctx: CallContext) -> RegimeHistoryOutput:
    """The regime transitions of a tracked symbol over the last `hours` of desk time, and the regime periods
    (start, end, confidence) they make, the current one last."""
    return RegimeHistoryOutput.model_validate(await on_risk(ctx, lambda s: s.regime_history(
        args.symbol, args.timeframe, args.hours)))


@tools.tool(scope="read", title="Analyze the market regime", read_only=True, idempotent=True)
async def analyze_market_regime(args: AnalyzeRegimeInput, ctx: CallContext) -> AnalyzeRegimeOutput:
    """Fit the regime model on a symbol's bars up to the desk clock and return the regime at the last bar with
    its confidence and probabilities, the window's features (annualized volatility, trend strength, volume
    ratio) and the fitted states. Works for any symbol and timeframe, tracked or not; the first call on a long
    window reads the market feed and can take seconds."""
    return AnalyzeRegimeOutput.model_validate(await on_risk(ctx, lambda s: s.analyze_regime(
        args.symbol, args.timeframe, args.lookback_hours, args.n_states)))


@tools.tool(scope="control", title="Track a market regime", idempotent=True)
async def set_regime_tracking(args: TrackingInput, ctx: CallContext) -> TrackingOutput:
    """Follow (or stop following) a symbol's regime on the desk clock: at every closed bar of the timeframe the
    regime is updated, transitions are stored and published as regime_change events. Returns what is tracked."""
    tracked, source = await on_risk(ctx, lambda s: (s.set_tracking(args.symbol, args.timeframe, args.lookback_hours,
                                                                   args.enabled), s.data_source()))
    return TrackingOutput.model_validate({"tracked": tracked, "data_source": source})


tools.metrics("quantdesk_risk", lambda services: services.get(RiskService).metrics(),
              labels={"alerts_raised_total": "severity", "regime": "tracked"})
