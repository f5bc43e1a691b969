"""The desk tools' argument and result models (JSON Schemas every door advertises)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.server.registry import ToolInput, ToolOutput

SYMBOL_PATTERN = r"^[A-Za-z0-9._:/-]+$"
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MAX_TIME_MS = 4_102_444_800_000

Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=SYMBOL_PATTERN,
                              description="Canonical symbol, e.g. BTC-USDT-PERP or ETH-USDT (see list_instruments).")]
Price = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
TimeMs = Annotated[int, Field(ge=0, le=MAX_TIME_MS, description="ms since the epoch (UTC), desk time.")]
Limit = Annotated[int, Field(ge=1, le=1000, description="At most this many rows, newest first.")]
OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonOut(Out):
    code: str = Field(description="Stable reason code a program can branch on.")
    message: str


class OrderOut(Out):
    order_id: str
    client_order_id: str | None
    symbol: str
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit", "stop_market", "stop_limit"]
    time_in_force: Literal["GTC", "IOC", "FOK"]
    quantity: float = Field(description="Current quantity (a resting reduce-only order shrinks with its position).")
    original_quantity: float
    price: float | None
    stop_price: float | None
    post_only: bool
    reduce_only: bool
    status: Literal["pending_trigger", "open", "partially_filled", "filled", "cancelled", "rejected", "expired"]
    filled_quantity: float
    remaining_quantity: float
    average_price: float | None
    fees_usd: float
    created_ms: int
    updated_ms: int
    triggered_ms: int | None
    source: str = Field(description="Who placed it: tool:place_order, control:deleverage, liquidation, ...")
    decision_id: str | None = Field(description="The decision-log entry of the intent.")
    signal_id: str | None
    reference_price: float | None = Field(description="Best opposite price when it started to execute.")
    reasons: list[ReasonOut] = Field(description="Why it was rejected, cancelled, expired or shrunk.")


class FillOut(Out):
    fill_id: str
    order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    notional_usd: float
    fee_usd: float
    fee_asset: str
    liquidity: Literal["maker", "taker", "liquidation"]
    reference_price: float | None
    slippage_bps: float = Field(description="Cost against the reference price, bps; positive = worse.")
    realized_pnl_usd: float
    insurance_usd: float
    timestamp_ms: int
    seq: int


class VoteIn(ToolInput):
    agent_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    signal_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN)
    direction: Literal["long", "short", "flat"] | None = None


class PlaceOrderInput(ToolInput):
    symbol: Symbol
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit", "stop_market", "stop_limit"] = Field(
        description="market: walks the book now; limit: rests unless marketable; stop_*: waits for the last "
                    "trade to reach stop_price, then acts as a market or limit order.")
    quantity: float = Field(gt=0, le=1e9, allow_inf_nan=False, description="Base units (BTC, ETH), on the lot grid.")
    price: Price | None = Field(None, description="Limit price (limit, stop_limit), on the tick grid.")
    stop_price: Price | None = Field(None, description="Trigger price (stop_market, stop_limit), on the tick grid.")
    time_in_force: Literal["GTC", "IOC", "FOK"] = Field("GTC", description="GTC rests; IOC cancels the unfilled "
                                                        "rest; FOK fills completely at once or not at all.")
    post_only: bool = Field(False, description="Refuse the order rather than let it take liquidity.")
    reduce_only: bool = Field(False, description="Perpetuals: only ever reduce the position, for the order's whole "
                              "life (clamped to the position; shrinks or is cancelled when the position does).")
    client_order_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN,
                                        description="Your id; a repeat returns the first order instead of a new one.")
    signal_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN,
                                  description="The signal behind the order, for the decision log and attribution.")
    agent_votes: list[VoteIn] = Field(default_factory=list, max_length=32,
                                      description="Votes behind the intent, recorded in the decision log.")


class PlaceOrderOutput(ToolOutput):
    order: OrderOut
    fills: list[FillOut] = Field(description="Fills made when the order was placed (a market order walks the book).")
    accepted: bool = Field(description="False when the order was rejected: see order.reasons for the codes.")
    idempotent_replay: bool = Field(description="True when client_order_id repeated an earlier order: that order "
                                    "is returned and nothing new happened.")
    execution_mode: Literal["paper"] = "paper"
    data_source: str = Field(description="Where the market the order met comes from: synthetic or replay.")
    desk_time_ms: int


MAX_BATCH_ORDERS = 100


class PlaceOrdersInput(ToolInput):
    orders: list[PlaceOrderInput] = Field(min_length=1, max_length=MAX_BATCH_ORDERS,
                                          description="The orders, placed in this order at one desk instant.")


class ProblemOut(Out):
    path: str = Field(description="JSON path of the field, e.g. $.orders[2].price.")
    message: str


class ErrorOut(Out):
    kind: str = Field(description="invalid_argument, not_found, conflict, ...")
    message: str
    problems: list[ProblemOut]


class BatchOrderOut(Out):
    index: int = Field(description="Position of the order in the request.")
    ok: bool = Field(description="False when the order was malformed (see error) and nothing was placed.")
    order: OrderOut | None
    fills: list[FillOut]
    accepted: bool = Field(description="True when the order was accepted (not rejected, not an error).")
    idempotent_replay: bool
    error: ErrorOut | None


class PlaceOrdersOutput(ToolOutput):
    results: list[BatchOrderOut] = Field(description="One result per order, in the request's order.")
    accepted: int = Field(description="Orders accepted.")
    rejected: int = Field(description="Orders placed but rejected by the risk checks or the control state.")
    errors: int = Field(description="Malformed orders (nothing placed, a decision-log entry kept).")
    execution_mode: Literal["paper"] = "paper"
    data_source: str
    desk_time_ms: int


class OrderRef(ToolInput):
    order_id: OrderId | None = None
    client_order_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN)


class OrderOutput(ToolOutput):
    order: OrderOut


class ListOrdersInput(ToolInput):
    status: Literal["open", "all", "filled", "cancelled", "rejected", "expired"] = Field(
        "open", description="open = open, partially filled and untriggered stops.")
    symbol: Symbol | None = None
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    limit: Limit = 100


class OrdersOutput(ToolOutput):
    orders: list[OrderOut]
    count: int


class ListFillsInput(ToolInput):
    symbol: Symbol | None = None
    order_id: OrderId | None = None
    liquidity: Literal["maker", "taker", "liquidation"] | None = None
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    limit: Limit = 100


class FillsOutput(ToolOutput):
    fills: list[FillOut]
    count: int


class PositionOut(Out):
    symbol: str
    side: Literal["long", "short", "flat"]
    size: float = Field(description="Base units; negative = short.")
    entry_price: float | None
    mark_price: float | None
    notional_usd: float
    unrealized_pnl_usd: float
    realized_pnl_usd: float
    fees_usd: float
    funding_usd: float = Field(description="Net funding received; negative = paid.")
    net_pnl_usd: float = Field(description="realized + unrealized - fees + funding.")
    margin_mode: Literal["cross", "isolated"]
    leverage: float
    isolated_margin_usd: float | None
    initial_margin_usd: float
    maintenance_margin_usd: float
    liquidation_price: float | None = Field(description="Mark at which the position is liquidated (cross: other "
                                            "marks held still); null when none is reachable.")
    opened_ms: int | None
    updated_ms: int


class PositionsInput(ToolInput):
    symbol: Symbol | None = None
    include_flat: bool = Field(False, description="Also list symbols traded before whose position is now zero.")


class PositionsOutput(ToolOutput):
    positions: list[PositionOut]
    desk_time_ms: int


class BalanceOut(Out):
    asset: str
    total: float
    locked: float = Field(description="Reserved by open orders (spot orders, margin of perpetual orders).")
    available: float


class BalancesOutput(ToolOutput):
    balances: list[BalanceOut]
    desk_time_ms: int


class AccountSummaryOutput(ToolOutput):
    equity_usd: float = Field(description="USDT + unrealized P&L + spot holdings at their mid.")
    wallet_usd: float
    available_usd: float = Field(description="USDT free for new orders after reserved and used margin.")
    unrealized_pnl_usd: float
    realized_pnl_usd: float
    fees_usd: float
    funding_usd: float
    gross_exposure_usd: float
    net_exposure_usd: float
    leverage: float = Field(description="Gross exposure / equity.")
    initial_margin_usd: float
    maintenance_margin_usd: float
    peak_equity_usd: float
    drawdown_pct: float
    day_start_equity_usd: float
    daily_pnl_usd: float
    open_orders: int
    positions: int
    execution_mode: Literal["paper"] = "paper"
    desk_time_ms: int


class LeverageInput(ToolInput):
    symbol: Symbol
    leverage: float = Field(ge=1, le=200, allow_inf_nan=False, description="1 .. the instrument's max_leverage.")


class MarginModeInput(ToolInput):
    symbol: Symbol
    margin_mode: Literal["cross", "isolated"]


class SymbolSettingsOutput(ToolOutput):
    symbol: str
    leverage: float
    margin_mode: Literal["cross", "isolated"]
    position: PositionOut


class QuoteInput(ToolInput):
    symbol: Symbol


class QuoteOutput(ToolOutput):
    symbol: str
    kind: Literal["spot", "perpetual"]
    last_price: float | None
    last_trade_ms: int | None
    mark_price: float | None
    index_price: float | None
    best_bid: float | None
    best_ask: float | None
    mid_price: float | None
    spread_bps: float | None
    book_ms: int | None
    funding_rate: float | None = Field(description="Rate of the last settled period (perpetuals).")
    predicted_funding_rate: float | None = Field(description="Rate the running period would pay now.")
    next_funding_ms: int | None
    data_source: str
    desk_time_ms: int


class BookInput(ToolInput):
    symbol: Symbol
    depth: int = Field(10, ge=1, le=50, description="Levels per side.")


class LevelOut(Out):
    price: float
    size: float


class BookOutput(ToolOutput):
    symbol: str
    bids: list[LevelOut]
    asks: list[LevelOut]
    book_ms: int | None
    note: str = Field(description="The feed's latest book less what the desk's own orders took from it since.")
    data_source: str
    desk_time_ms: int


class InstrumentOut(Out):
    symbol: str
    kind: Literal["spot", "perpetual"]
    base_asset: str
    quote_asset: str
    venue: str
    venue_symbol: str
    tick_size: float
    lot_size: float
    min_notional_usd: float
    maker_fee_bps: float
    taker_fee_bps: float
    max_leverage: float
    maintenance_margin_rate: float | None
    funding_interval_hours: float | None
    funding_formula: str | None
    figures_from_venue_file: list[str]
    source: str
    verified: bool


class NoArguments(ToolInput):
    pass


class InstrumentsOutput(ToolOutput):
    instruments: list[InstrumentOut]


class AdvanceInput(ToolInput):
    seconds: float | None = Field(None, gt=0, le=31 * 86_400, allow_inf_nan=False,
                                  description="Move the simulated clock forward by this much.")
    until_ms: TimeMs | None = Field(None, description="Or move it to this instant.")


class AdvanceOutput(ToolOutput):
    from_ms: int
    to_ms: int
    market_events: int = Field(description="Books and trades processed.")
    fills: int
    liquidations: int
    funding_settlements: int
    equity_samples: int
    interrupted: bool = Field(description="True when a kill switch stopped the advance early.")
    equity_usd: float


class DeskStatusOutput(ToolOutput):
    clock: Literal["real", "simulated"]
    desk_time_ms: int
    desk_time: str
    origin_ms: int
    feed: dict[str, Any]
    data_source: str
    execution_mode: Literal["paper"] = "paper"
    symbols: list[str]
    open_orders: int
    equity_sample_seconds: int


class EquityInput(ToolInput):
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    limit: int = Field(1000, ge=1, le=100_000, description="At most this many samples (the newest), oldest first.")


class EquitySampleOut(Out):
    timestamp_ms: int
    equity_usd: float
    wallet_usd: float
    unrealized_pnl_usd: float
    spot_value_usd: float
    gross_exposure_usd: float
    net_exposure_usd: float
    drawdown_pct: float


class EquityOutput(ToolOutput):
    samples: list[EquitySampleOut]
    count: int
    sample_interval_seconds: int


class FundingInput(ToolInput):
    symbol: Symbol | None = None
    since_ms: TimeMs | None = None
    until_ms: TimeMs | None = None
    only_payments: bool = Field(False, description="Only settlements that moved money (a position was open).")
    limit: Limit = 100


class FundingOut(Out):
    symbol: str
    funding_time_ms: int
    funding_rate: float
    funding_rate_bps: float
    premium: float
    mark_price: float
    position_size: float
    payment_usd: float = Field(description="Cash to the position; negative = paid (longs pay a positive rate).")


class FundingOutput(ToolOutput):
    payments: list[FundingOut]
    count: int


class DeskHealthOutput(ToolOutput):
    status: Literal["ok", "degraded"]
    engine_ok: bool
    ledger_ok: bool
    feed_ok: bool
    control_store_ok: bool
    event_bus_ok: bool
    runner_ok: bool
    error: str | None
