"""The risk tools' argument and result models (JSON Schemas every door advertises).

Fields ending in `_pct` or `_fraction` are fractions (0.05 = 5 %), as in the desk's and the control
plane's models; `_usd` amounts are USD (USDT); `_ms` times are milliseconds since the epoch, desk time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.server.registry import ToolInput, ToolOutput
from quantdesk.tools.desk.models import MAX_TIME_MS, FillOut, OrderOut

Bar = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
MetricType = Literal["portfolio_value_usd", "pnl_usd", "daily_pnl_usd", "daily_loss_pct", "gross_exposure_usd",
                     "net_exposure_usd", "leverage", "drawdown_pct", "volatility_annual", "var_95_pct", "cvar_95_pct",
                     "sharpe_ratio", "sortino_ratio"]
VarMethod = Literal["historical", "parametric", "cornish_fisher"]
RegimeName = Literal["BULL", "BEAR", "SIDEWAYS", "HIGH_VOLATILITY", "CRISIS", "UNKNOWN"]
Asset = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$",
                             description="A base asset (BTC), a canonical symbol (BTC-USDT-PERP) or a venue symbol "
                                         "(BTCUSDT).")]
TimeMs = Annotated[int, Field(ge=0, le=MAX_TIME_MS, description="ms since the epoch (UTC), desk time.")]
Usd = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)]
RequestId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._:-]+$",
                                 description="Idempotency key: a retry never places a second order per asset (the "
                                             "first one comes back with idempotent_replay).")]


# Below a hundred-millionth of a dollar no coin trades, and a quantity would overflow to infinity.
PRICE_FLOOR_USD = 1e-8


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArguments(ToolInput):
    pass


# --- risk metrics ------------------------------------------------------------------------------------------

class RiskMetricsInput(ToolInput):
    bar: Bar = Field("1d", description="Bar of the equity grid the returns are taken on; sets periods per year "
                     "(365 days a year: 1d = 365, 1h = 8760).")
    window_days: float | None = Field(None, gt=0, le=3660, allow_inf_nan=False,
                                      description="Only the last this many days (ending at until_ms or now).")
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    confidence_level: float = Field(0.99, ge=0.8, le=0.999, allow_inf_nan=False,
                                    description="The second VaR/CVaR level (95 % is always reported).")
    var_method: VarMethod = Field("historical", description="Method of var_95_pct, cvar_95_pct, var_pct and "
                                  "cvar_pct (all three are in tail_risk).")
    risk_free_rate_annual: float = Field(0.0, ge=-0.1, le=1.0, allow_inf_nan=False,
                                         description="Annual rate, de-annualized geometrically per bar.")
    min_acceptable_return_annual: float | None = Field(None, ge=-0.5, le=5.0, allow_inf_nan=False,
                                                       description="Sortino's target (default: the risk-free rate).")


class TailRiskOut(Out):
    method: VarMethod
    method_used: VarMethod = Field(description="Cornish-Fisher falls back to historical outside its domain.")
    confidence_level: float
    var_pct: float = Field(description="Loss positive, one bar ahead (negative: even the tail is a gain).")
    cvar_pct: float
    low_confidence: bool = Field(description="Fewer than one observation in the tail.")
    note: str | None


class RiskMetricsOutput(ToolOutput):
    var_method: VarMethod
    var_method_used: VarMethod
    periods_per_year: float
    bar: Bar
    bar_seconds: int
    horizon_bars: int = Field(description="VaR/CVaR horizon in bars (1).")
    observations: int = Field(description="Returns in the window (equity_points - 1).")
    equity_points: int
    window_start_ms: int
    window_end_ms: int
    window_start: str | None
    window_end: str | None
    start_equity_usd: float
    end_equity_usd: float
    total_return_pct: float | None
    volatility_annual: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown_pct: float = Field(description="Largest fall from a peak, positive (0.3 = 30 %).")
    cagr: float | None
    calmar_ratio: float | None
    var_95_pct: float
    cvar_95_pct: float
    confidence_level: float
    var_pct: float
    cvar_pct: float
    mean_return_per_bar: float
    std_return_per_bar: float
    skewness: float | None
    excess_kurtosis: float | None
    risk_free_rate_annual: float
    risk_free_rate_per_bar: float
    min_acceptable_return_per_bar: float
    tail_risk: list[TailRiskOut]
    low_confidence: bool
    null_reasons: dict[str, str] = Field(description="Why each null metric is null.")
    data_source: str
    execution_mode: Literal["paper"]
    desk_time_ms: int


# --- exposure and limits ------------------------------------------------------------------------------------

class ExposureInput(ToolInput):
    include_flat: bool = Field(False, description="Also list assets with neither a holding nor a position.")


class AssetExposureOut(Out):
    asset: str
    spot_symbol: str | None
    perpetual_symbol: str | None
    spot_quantity: float
    spot_price_usd: float | None
    spot_value_usd: float
    spot_avg_entry_price_usd: float | None = Field(description="Average cost of the holding from the desk's spot "
                                                   "fills (null when part of it was deposited).")
    futures_quantity: float = Field(description="Perpetual size, negative = short.")
    futures_mark_price_usd: float | None
    futures_value_usd: float = Field(description="Signed perpetual notional.")
    futures_entry_price_usd: float | None
    futures_leverage: float | None
    futures_margin_mode: str | None
    futures_initial_margin_usd: float
    futures_unrealized_pnl_usd: float
    net_exposure_usd: float
    gross_exposure_usd: float
    net_exposure_fraction: float = Field(description="Net exposure / equity.")
    gross_exposure_fraction: float
    hedge_ratio: float | None = Field(description="-perpetual size / spot holding (base units); 1 = fully hedged.")
    hedge_ratio_by_value: float | None


class ExposureOutput(ToolOutput):
    assets: list[AssetExposureOut]
    equity_usd: float
    total_net_exposure_usd: float
    total_gross_exposure_usd: float
    total_net_exposure_fraction: float
    total_gross_exposure_fraction: float
    data_source: str
    execution_mode: Literal["paper"]
    desk_time_ms: int


class _Default(Out):
    default: float | None = Field(description="Per-symbol position notional limit, USD.")


class _Total(Out):
    total: float | None


class _Exposure(Out):
    total: float | None = Field(description="Gross exposure limit, USD.")
    net: float | None = Field(description="Net exposure limit, USD.")


class _Drawdown(Out):
    max: float | None = Field(description="Loss from peak equity at which the drawdown breaker trips, USD.")
    daily_loss: float | None = Field(description="Loss since the UTC day's start at which the daily breaker trips.")


class UsageOut(Out):
    largest_position_symbol: str | None
    largest_position_usd: float
    position_utilization: float | None
    gross_exposure_usd: float
    gross_exposure_utilization: float | None
    net_exposure_usd: float
    net_exposure_utilization: float | None
    leverage: float
    margin_utilization: float | None
    loss_from_peak_usd: float
    drawdown_utilization: float | None
    daily_loss_usd: float
    daily_loss_utilization: float | None


class EnforcedOut(Out):
    max_order_notional_usd: float | None
    max_position_notional_usd: float | None
    max_gross_exposure_usd: float | None
    max_net_exposure_usd: float | None
    max_leverage: float | None
    max_daily_loss_pct: float | None
    max_drawdown_pct: float | None
    max_orders_per_second: int | None


class BasisOut(Out):
    equity_usd: float
    peak_equity_usd: float
    day_start_equity_usd: float


class LimitUsageOutput(ToolOutput):
    position_limits: _Default
    margin_limits: _Total = Field(description="Gross exposure allowed by the leverage limit at the current equity.")
    exposure_limits: _Exposure
    drawdown_limits: _Drawdown
    usage: UsageOut
    enforced: EnforcedOut = Field(description="The control plane's limits as the engine enforces them (null = off).")
    basis: BasisOut = Field(description="The equity figures the USD amounts are converted with.")
    changed: dict[str, float] | None = None
    desk_time_ms: int
    data_source: str = Field(description="Where the desk's market comes from: synthetic or replay (paper desk).")


class SetUsdLimitsInput(ToolInput):
    position_limit_usd: Usd | None = Field(None, description="Per-symbol position notional limit.")
    exposure_limit_usd: Usd | None = Field(None, description="Gross exposure limit.")
    net_exposure_limit_usd: Usd | None = Field(None, description="Net exposure limit.")
    margin_limit_usd: Usd | None = Field(None, description="Gross exposure allowed at the current equity: sets "
                                         "max_leverage = this / equity.")
    drawdown_limit_usd: Usd | None = Field(None, description="Loss from peak equity that trips the kill switch: "
                                           "sets max_drawdown_pct = this / peak equity.")
    daily_loss_limit_usd: Usd | None = Field(None, description="Daily loss that trips the kill switch: sets "
                                             "max_daily_loss_pct = this / the day's starting equity.")
    order_notional_limit_usd: Usd | None = Field(None, description="Per-order notional limit.")


# --- sizing -------------------------------------------------------------------------------------------

class PositionSizeInput(ToolInput):
    asset: Asset
    instrument: Literal["perpetual", "spot"] = Field("perpetual", description="Which instrument a base asset means.")
    side: Literal["long", "short"] = "long"
    profile: Literal["conservative", "balanced", "aggressive"] = Field(
        "balanced", description="Defaults: risk per trade 0.5/1/2 %, stop 2.5/2/1.5 ATR, take-profit 2/2/3 R, "
                                "leverage 1/3/5x, Kelly fraction 0.25/0.5/0.5.")
    risk_per_trade_pct: float | None = Field(None, gt=0, le=0.1, allow_inf_nan=False,
                                             description="Fraction of equity at risk to the stop (0.01 = 1 %).")
    stop_atr_multiple: float | None = Field(None, gt=0, le=20, allow_inf_nan=False)
    take_profit_r_multiple: float | None = Field(None, gt=0, le=20, allow_inf_nan=False)
    kelly_fraction: float | None = Field(None, gt=0, le=1, allow_inf_nan=False, description="lambda of lambda x Kelly.")
    max_stop_pct: float = Field(0.10, gt=0, le=0.5, allow_inf_nan=False,
                                description="Largest stop distance as a fraction of the entry.")
    target_volatility_annual: float = Field(0.15, gt=0, le=5, allow_inf_nan=False,
                                            description="Caps notional at equity x this / the asset's volatility.")
    entry_price_usd: float | None = Field(None, ge=PRICE_FLOOR_USD, le=1e9, allow_inf_nan=False,
                                          description="Default: the mid price now.")
    stop_price_usd: float | None = Field(None, ge=PRICE_FLOOR_USD, le=1e9, allow_inf_nan=False,
                                         description="Use this stop instead of the ATR stop.")
    atr_usd: float | None = Field(None, ge=PRICE_FLOOR_USD, le=1e9, allow_inf_nan=False,
                                  description="Default: ATR(atr_period) of the desk's bars.")
    atr_period: int = Field(14, ge=2, le=200)
    timeframe: Timeframe = Field("1h", description="Bars of the ATR and the volatility estimate.")
    volatility_annual: float | None = Field(None, gt=0, le=20, allow_inf_nan=False,
                                            description="Default: from the same bars.")
    win_rate: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False, description="For the Kelly cap, with "
                                   "payoff_ratio; default: the desk's closed trades of the symbol (>= 30).")
    payoff_ratio: float | None = Field(None, gt=0, le=100, allow_inf_nan=False, description="Average win / average "
                                       "loss.")


class FactorOut(Out):
    name: str
    value: float | None
    unit: str
    explanation: str


class CapOut(Out):
    name: str
    max_quantity: float
    max_notional_usd: float
    explanation: str


class KellyOut(Out):
    applied: bool
    f_star: float | None
    fraction: float
    cap: float | None
    win_rate: float | None
    payoff_ratio: float | None
    source: str | None
    reason: str | None = None


class PositionSizeOutput(ToolOutput):
    asset: str
    symbol: str
    side: Literal["long", "short"]
    profile: str
    quantity: float = Field(description="Recommended size in base units, rounded down to the lot.")
    max_quantity: float = Field(description="Largest size the caps allow (whatever the risk budget).")
    notional_usd: float
    entry_price_usd: float
    stop_loss_price_usd: float
    take_profit_price_usd: float
    stop_distance_usd: float
    risk_usd: float = Field(description="Loss at the stop with fees, for the recommended quantity.")
    risk_budget_usd: float
    risk_fraction_used: float
    atr_usd: float
    volatility_annual: float | None
    kelly: KellyOut
    binding_constraint: str = Field(description="What set the size: risk_per_trade, a cap's name, or min_notional.")
    factors: list[FactorOut]
    caps: list[CapOut]
    note: str | None
    data_source: str
    desk_time_ms: int


# --- hedging ---------------------------------------------------------------------------------------------

class HedgeAnalysisInput(ToolInput):
    target_hedge_ratio: float = Field(1.0, ge=0, le=2, allow_inf_nan=False,
                                      description="Share of each spot holding to offset with its perpetual "
                                                  "(1 = fully hedged, 0 = no hedge).")
    assets: list[Asset] | None = Field(None, max_length=16, description="Only these assets (default: all).")
    correlation_lookback_hours: float = Field(4.0, ge=0, le=168, allow_inf_nan=False,
                                              description="Window of the spot/hedge P&L correlation (0: skip).")


class HedgeExecuteInput(ToolInput):
    target_hedge_ratio: float = Field(1.0, ge=0, le=2, allow_inf_nan=False,
                                      description="Share of each spot holding to offset (1 = fully hedged).")
    assets: list[Asset] | None = Field(None, max_length=16, description="Only these assets (default: all).")
    request_id: RequestId | None = None


class CloseHedgesInput(ToolInput):
    include_unhedged: bool = Field(False, description="Also close perpetual positions that do not offset a spot "
                                   "holding (every perpetual position then).")
    request_id: RequestId | None = None


class AdjustmentOut(Out):
    asset: str
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    reduce_only: bool
    current_futures_quantity: float
    target_futures_quantity: float
    planned_futures_quantity: float
    mark_price_usd: float
    notional_usd: float
    limited_by: str | None
    priority: Literal["high", "medium", "low"]
    action: str


class SkipOut(Out):
    asset: str
    reason: str


class HedgeAssetOut(AssetExposureOut):
    correlation: float | None = Field(description="Correlation of the spot holding's and the hedge's one-minute "
                                      "P&L (near -1 when the hedge works).")
    correlation_note: str | None


class HedgeAnalysisOutput(ToolOutput):
    commentary: str
    commentary_source: str
    correlation: float | None = Field(description="The largest hedged holding's spot/hedge P&L correlation.")
    correlation_asset: str | None
    target_hedge_ratio: float
    hedge_ratio: float | None = Field(description="Perpetual value offsetting spot / spot value, over hedged assets.")
    current_net_exposure_usd: float
    target_net_exposure_usd: float
    current_net_exposure_fraction: float | None = Field(description="Of the spot value.")
    target_net_exposure_fraction: float | None
    spot_value_usd: float
    equity_usd: float
    margin_used_usd: float
    margin_usage: float | None = Field(description="Perpetual initial margin / equity.")
    assets: list[HedgeAssetOut]
    adjustments: list[AdjustmentOut]
    skipped: list[SkipOut]
    data_source: str
    execution_mode: Literal["paper"]


class ExecutedTradeOut(Out):
    asset: str = Field(description="The instrument traded (AlphaPulse calls it asset).")
    symbol: str
    side: Literal["buy", "sell"]
    amount: float
    price: float
    fee_usd: float
    fill_id: str
    order_id: str
    timestamp_ms: int
    timestamp: str | None


class PlacedOut(Out):
    asset: str
    order: OrderOut | None
    fills: list[FillOut]
    accepted: bool
    error: str | None
    idempotent_replay: bool = False


class HedgeExecutionOutput(ToolOutput):
    status: Literal["completed", "partial", "failed", "nothing_to_do"]
    message: str
    executed_trades: list[ExecutedTradeOut]
    orders: list[PlacedOut]
    skipped: list[SkipOut]
    assets_after: list[AssetExposureOut]
    target_hedge_ratio: float
    commentary: str | None
    data_source: str
    execution_mode: Literal["paper"]
    desk_time_ms: int


# --- portfolio, trades, metric series -------------------------------------------------------------------

class PortfolioInput(ToolInput):
    include_history: bool = False
    refresh: bool = Field(False, description="First re-read the desk up to its clock (as reload_portfolio).")
    history_bar: Bar = Field("1h", description="Spacing of the history points.")
    history_days: float = Field(7.0, gt=0, le=366, allow_inf_nan=False)


class PortfolioPositionOut(Out):
    asset: str
    symbol: str
    kind: Literal["spot", "perpetual"]
    quantity: float
    price_usd: float | None
    value_usd: float = Field(description="Spot value, or the perpetual's signed notional.")
    allocation: float = Field(description="value_usd / total_value_usd.")
    avg_entry_price_usd: float | None
    unrealized_pnl_usd: float | None
    leverage: float | None


class HistoryPointOut(Out):
    timestamp_ms: int
    timestamp: str | None
    total_value_usd: float


class PortfolioOutput(ToolOutput):
    total_value_usd: float
    cash_usd: float = Field(description="USDT balance.")
    available_usd: float
    unrealized_pnl_usd: float
    gross_exposure_usd: float
    net_exposure_usd: float
    positions: list[PortfolioPositionOut]
    history: list[HistoryPointOut] | None
    desk_time_ms: int
    timestamp: str | None
    data_source: str
    execution_mode: Literal["paper"]


class ReloadOutput(ToolOutput):
    status: Literal["success"]
    message: str
    desk_time_ms: int
    timestamp: str | None
    samples_recorded: int
    data_source: str
    execution_mode: Literal["paper"]


class TradesInput(ToolInput):
    symbol: Asset | None = Field(None, description="A symbol, or a base asset for its spot and perpetual.")
    side: Literal["buy", "sell"] | None = None
    source: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[a-z_]+(:[a-z_]*)?$",
                               description="Prefix of the order's source: tool:place_order, risk:hedge, "
                                           "risk:close_hedges, control:, liquidation, ...")
    liquidity: Literal["maker", "taker", "liquidation"] | None = None
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    limit: int = Field(100, ge=1, le=1000)


class TradeOut(Out):
    trade_id: str
    order_id: str
    client_order_id: str | None
    symbol: str
    asset: str
    kind: str | None
    side: Literal["buy", "sell"]
    quantity: float
    price_usd: float
    notional_usd: float
    fee_usd: float
    realized_pnl_usd: float
    liquidity: str
    source: str
    decision_id: str | None
    timestamp_ms: int
    timestamp: str | None


class TradesOutput(ToolOutput):
    trades: list[TradeOut]
    count: int
    data_source: str
    execution_mode: Literal["paper"]


class MetricSeriesInput(ToolInput):
    metric_type: MetricType
    start_ms: TimeMs | None = Field(None, description="Default: 24 hours before end_ms.")
    end_ms: TimeMs | None = Field(None, description="Default: the desk clock now.")
    aggregation: Literal["avg", "min", "max", "sum", "count", "last"] = "avg"
    bucket_seconds: int = Field(3600, ge=60, le=31 * 86_400, description="Bucket size; buckets are aligned to the "
                                "UTC epoch and at most 10,000 per query.")


class MetricPointOut(Out):
    timestamp_ms: int = Field(description="Start of the bucket.")
    timestamp: str | None
    value: float
    count: int = Field(description="Recorded points in the bucket.")


class MetricSeriesOutput(ToolOutput):
    metric_type: str
    unit: str
    description: str
    cadence: Literal["equity_sample", "hourly"]
    aggregation: str
    bucket_seconds: int
    start_ms: int
    end_ms: int
    start: str | None
    end: str | None
    points: list[MetricPointOut]
    count: int
    data_source: str
    execution_mode: Literal["paper"]


class LatestMetricInput(ToolInput):
    metric_type: MetricType


class LatestMetricOutput(ToolOutput):
    metric_type: str
    unit: str
    timestamp_ms: int
    timestamp: str | None
    value: float
    change_24h: float | None = Field(description="Relative change against the last point at least 24 h older.")
    change_24h_abs: float | None
    value_24h_ago: float | None
    change_24h_reason: str | None
    data_source: str
    execution_mode: Literal["paper"]


# --- alerts ----------------------------------------------------------------------------------------------

class CreateRuleInput(ToolInput):
    name: str = Field(min_length=1, max_length=100)
    metric: MetricType
    operator: Literal[">=", ">", "<=", "<"] = ">="
    threshold: float | None = Field(None, ge=-1e12, le=1e12, allow_inf_nan=False,
                                    description="A fixed threshold (or give of_limit).")
    of_limit: Literal["max_order_notional_usd", "max_position_notional_usd", "max_gross_exposure_usd",
                      "max_net_exposure_usd", "max_leverage", "max_daily_loss_pct", "max_drawdown_pct"] | None = Field(
        None, description="Threshold = limit_fraction x this control-plane limit, read when each point is checked.")
    limit_fraction: float | None = Field(None, gt=0, le=10, allow_inf_nan=False, description="Default 1.")
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str | None = Field(None, min_length=1, max_length=300, description="Text of the alerts it raises.")


class RuleOut(Out):
    rule_id: str
    name: str
    metric: str
    operator: str
    threshold: float | None
    of_limit: str | None
    limit_fraction: float | None
    severity: str
    message: str | None
    enabled: bool
    created_ms: int
    firing: bool = Field(description="The last point met the condition (the rule re-arms when one does not).")
    threshold_now: float | None
    condition: str


class RulesOutput(ToolOutput):
    rules: list[RuleOut]
    count: int
    data_source: str = Field(description="Where the desk's market comes from: synthetic or replay (paper desk).")


class RuleOutput(ToolOutput):
    rule: RuleOut
    data_source: str = Field(description="Where the desk's market comes from: synthetic or replay (paper desk).")


class RuleRef(ToolInput):
    rule_id: str = Field(min_length=1, max_length=32, pattern=r"^rule-[0-9]+$")


class DeleteRuleOutput(ToolOutput):
    rule_id: str
    deleted: bool = Field(description="False when no such rule existed (already deleted).")
    data_source: str = Field(description="Where the desk's market comes from: synthetic or replay (paper desk).")


class AlertsInput(ToolInput):
    severity: Literal["info", "warning", "critical"] | None = None
    acknowledged: bool | None = None
    rule_id: str | None = Field(None, min_length=1, max_length=32, pattern=r"^rule-[0-9]+$")
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    limit: int = Field(100, ge=1, le=1000)


class AlertOut(Out):
    alert_id: str
    rule_id: str
    timestamp_ms: int
    timestamp: str | None
    severity: Literal["info", "warning", "critical"]
    metric: str
    value: float
    threshold: float
    operator: str
    message: str
    acknowledged: bool
    acknowledged_ms: int | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    acknowledged_note: str | None


class AlertsOutput(ToolOutput):
    alerts: list[AlertOut]
    count: int
    data_source: str = Field(description="Where the desk's market comes from: synthetic or replay (paper desk).")


class AcknowledgeInput(ToolInput):
    alert_id: str = Field(min_length=1, max_length=32, pattern=r"^alert-[0-9]+$")
    note: str | None = Field(None, min_length=1, max_length=300)


class AcknowledgeOutput(ToolOutput):
    alert: AlertOut
    already_acknowledged: bool
    data_source: str = Field(description="Where the desk's market comes from: synthetic or replay (paper desk).")


# --- regimes ----------------------------------------------------------------------------------------------

class RegimeRef(ToolInput):
    symbol: Asset | None = Field(None, description="A tracked symbol (default: the first tracked).")
    timeframe: Timeframe | None = None


class RegimeHistoryInput(RegimeRef):
    hours: float = Field(24.0, gt=0, le=8784, allow_inf_nan=False)


class StateOut(Out):
    state: int
    regime: RegimeName
    mean_return_per_bar: float
    volatility_annual: float
    expected_duration_bars: float
    share_of_bars: float


class ModelOut(Out):
    n_states: int
    log_likelihood: float
    bic: float
    converged: bool
    bars_used: int
    volatility_threshold_annual: float
    states: list[StateOut]


class RegimeParametersOut(Out):
    leverage_multiplier: float
    position_limit: float = Field(description="Largest position as a fraction of equity.")
    volatility_threshold: float | None = Field(description="Annualized volatility above which the model calls a "
                                               "state high-volatility.")


class CurrentRegimeOutput(ToolOutput):
    symbol: str
    timeframe: str
    lookback_hours: float
    regime: RegimeName
    confidence: float
    probabilities: dict[str, float]
    since_ms: int | None
    since: str | None
    expected_duration_bars: float | None
    pending_regime: str | None
    pending_bars: int
    last_bar_close_ms: int | None
    warming_up: bool
    bars_available: int
    bars_needed: int
    parameters: RegimeParametersOut
    parameters_source: str
    model: ModelOut | None
    timestamp_ms: int
    timestamp: str | None
    data_source: str


class TransitionOut(Out):
    timestamp_ms: int
    timestamp: str | None
    from_regime: str
    to_regime: str
    confidence: float
    probabilities: dict[str, float]


class PeriodOut(Out):
    regime: str
    confidence: float
    start_ms: int
    start_time: str | None
    end_ms: int | None
    end_time: str | None


class RegimeHistoryOutput(ToolOutput):
    symbol: str
    timeframe: str
    hours: float
    since_ms: int
    transitions: list[TransitionOut]
    regimes: list[PeriodOut] = Field(description="Periods overlapping the window, the current one last "
                                     "(end null).")
    data_source: str


class AnalyzeRegimeInput(ToolInput):
    symbol: Asset = Field(description="A base asset (its spot market) or a symbol.")
    timeframe: Timeframe = "1h"
    lookback_hours: float = Field(24.0, gt=0, le=720, allow_inf_nan=False,
                                  description="Window summarized in `features`; the model is fitted on at least "
                                              "113 bars ending now.")
    n_states: int | None = Field(None, ge=2, le=6, description="Default: chosen by BIC among 2..6.")


class FeaturesOut(Out):
    volatility_annual: float | None
    trend_strength: float | None = Field(description="R^2 of log price on time, 0..1.")
    trend_direction: float | None = Field(description="+1 up, -1 down.")
    volume_ratio: float | None = Field(description="Mean volume of the last quarter of the window / the window's.")


class AnalyzeRegimeOutput(ToolOutput):
    symbol: str
    timeframe: str
    lookback_hours: float
    regime: RegimeName
    confidence: float
    probabilities: dict[str, float]
    features: FeaturesOut
    bars_analyzed: int
    bars_fitted: int
    fit_start_ms: int
    end_ms: int
    timestamp: str | None
    model: ModelOut
    parameters: RegimeParametersOut
    causal: bool = Field(description="Labels use forward-filtered probabilities only.")
    data_source: str


class TrackingInput(ToolInput):
    symbol: Asset
    timeframe: Timeframe = "1h"
    lookback_hours: float = Field(168.0, gt=0, le=720, allow_inf_nan=False)
    enabled: bool = Field(True, description="False stops tracking it (its history stays).")


class TrackedOut(Out):
    symbol: str
    timeframe: str
    lookback_hours: float


class TrackingOutput(ToolOutput):
    tracked: list[TrackedOut]
    data_source: str = Field(description="Where the desk's market comes from: synthetic or replay (paper desk).")

