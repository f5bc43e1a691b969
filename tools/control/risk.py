"""Pre-trade risk checks: every reason an order intent is refused, each with a stable code.

Exposure checks apply to intents that would increase exposure; a close is never blocked by an
exposure, leverage or loss limit (exits must always be possible). The notional-per-order cap applies
to every order a caller places (a fat-finger guard); control-plane closes skip the checks.
"""

from __future__ import annotations

from quantdesk.tools.control.store import RiskLimits
from quantdesk.tools.desk.gate import OrderIntent
from quantdesk.tools.desk.model import Reason

REASON_CODES: dict[str, str] = {
    "CONTROL_STATE_UNKNOWN": "the control store cannot be read: every order is refused (fail closed)",
    "TRADING_HALTED": "the kill switch is latched: no order is accepted until an admin resets it",
    "TRADING_PAUSED": "trading is paused: orders that would add exposure are refused",
    "RATE_LIMIT_EXCEEDED": "more orders in the last second (desk clock) than max_orders_per_second",
    "PRICE_NOT_ON_TICK": "price or stop_price is not a multiple of the instrument's tick size",
    "QUANTITY_NOT_ON_LOT": "quantity is not a positive multiple of the instrument's lot size",
    "NOTIONAL_BELOW_MINIMUM": "quantity x price is below the instrument's minimum notional",
    "NOTIONAL_EXCEEDS_MAX_PER_ORDER": "quantity x price exceeds max_order_notional_usd",
    "POSITION_LIMIT_EXCEEDED": "the position's notional after the order would exceed max_position_notional_usd",
    "GROSS_EXPOSURE_LIMIT": "gross exposure after the order would exceed max_gross_exposure_usd",
    "NET_EXPOSURE_LIMIT": "net exposure after the order would exceed max_net_exposure_usd",
    "LEVERAGE_LIMIT": "account leverage (gross exposure / equity) or the symbol's leverage would exceed max_leverage",
    "DAILY_LOSS_LIMIT": "the loss since the start of the UTC day has reached max_daily_loss_pct",
    "DRAWDOWN_LIMIT": "the drawdown from peak equity has reached max_drawdown_pct",
    "INSUFFICIENT_MARGIN": "the perpetual order needs more initial margin than is available",
    "INSUFFICIENT_BALANCE": "the spot order needs more of an asset than is available",
    "REDUCE_ONLY_WOULD_INCREASE_POSITION": "a reduce-only order would open, increase or flip a position",
    "POST_ONLY_WOULD_TAKE": "a post-only order would trade against the book instead of resting",
    "STOP_WOULD_TRIGGER_IMMEDIATELY": "the last price is already through the stop price",
    "NO_MARKET_DATA": "the feed has no book for the symbol yet",
    "NO_LIQUIDITY": "the book has no liquidity on the side a market order takes",
}
"""Every code a refused intent can carry. Codes of cancellations and expiries (FOK_NOT_FILLABLE,
IOC_REMAINDER, NO_LIQUIDITY_REMAINING, REDUCE_ONLY_POSITION_CLOSED, KILL_SWITCH, LIQUIDATION, ...) are
listed in the desk's README."""


def pre_trade_reasons(intent: OrderIntent, limits: RiskLimits, orders_last_second: int) -> list[Reason]:
    """The limit checks (not the control state), in a fixed order."""
    out: list[Reason] = []
    a = intent.account
    if limits.max_orders_per_second is not None and orders_last_second >= limits.max_orders_per_second:
        out.append(Reason("RATE_LIMIT_EXCEEDED", f"{orders_last_second} orders in the last second; the limit is "
                                                 f"{limits.max_orders_per_second}"))
    if limits.max_order_notional_usd is not None and intent.notional_usd > limits.max_order_notional_usd:
        out.append(Reason("NOTIONAL_EXCEEDS_MAX_PER_ORDER", f"notional {intent.notional_usd:,.2f} USD exceeds "
                                                            f"{limits.max_order_notional_usd:,.2f}"))
    if intent.increases_exposure:
        after = intent.position_notional_after_usd
        if limits.max_position_notional_usd is not None and after > limits.max_position_notional_usd:
            out.append(Reason("POSITION_LIMIT_EXCEEDED", f"{intent.request.symbol} position would be "
                                                         f"{after:,.2f} USD; the limit is "
                                                         f"{limits.max_position_notional_usd:,.2f}"))
        if (limits.max_gross_exposure_usd is not None and intent.gross_after_usd > limits.max_gross_exposure_usd
                and intent.gross_after_usd > a.gross_exposure_usd):
            out.append(Reason("GROSS_EXPOSURE_LIMIT", f"gross exposure would be {intent.gross_after_usd:,.2f} USD; "
                                                      f"the limit is {limits.max_gross_exposure_usd:,.2f}"))
        if (limits.max_net_exposure_usd is not None and abs(intent.net_after_usd) > limits.max_net_exposure_usd
                and abs(intent.net_after_usd) > abs(a.net_exposure_usd)):
            out.append(Reason("NET_EXPOSURE_LIMIT", f"net exposure would be {intent.net_after_usd:,.2f} USD; the "
                                                    f"limit is {limits.max_net_exposure_usd:,.2f}"))
        if limits.max_leverage is not None:
            leverage = intent.gross_after_usd / a.equity_usd if a.equity_usd > 0 else float("inf")
            if leverage > limits.max_leverage:
                out.append(Reason("LEVERAGE_LIMIT", f"account leverage would be {leverage:.2f}x; the limit is "
                                                    f"{limits.max_leverage:g}x"))
            elif intent.is_perpetual and intent.leverage_setting > limits.max_leverage:
                out.append(Reason("LEVERAGE_LIMIT", f"{intent.request.symbol} is set to {intent.leverage_setting:g}x; "
                                                    f"the limit is {limits.max_leverage:g}x"))
        if limits.max_daily_loss_pct is not None and a.daily_loss_pct >= limits.max_daily_loss_pct:
            out.append(Reason("DAILY_LOSS_LIMIT", f"down {a.daily_loss_pct:.2%} today; the limit is "
                                                  f"{limits.max_daily_loss_pct:.2%}"))
        if limits.max_drawdown_pct is not None and a.drawdown_pct >= limits.max_drawdown_pct:
            out.append(Reason("DRAWDOWN_LIMIT", f"drawdown {a.drawdown_pct:.2%}; the limit is "
                                                f"{limits.max_drawdown_pct:.2%}"))
    if intent.required_usd > intent.available_usd + 1e-9:
        code = "INSUFFICIENT_MARGIN" if intent.is_perpetual else "INSUFFICIENT_BALANCE"
        out.append(Reason(code, f"needs {intent.required_usd:,.2f} USDT; {max(intent.available_usd, 0.0):,.2f} "
                                "available"))
    if intent.required_base > intent.available_base + 1e-12:
        out.append(Reason("INSUFFICIENT_BALANCE", f"needs {intent.required_base:g} of the base asset; "
                                                  f"{max(intent.available_base, 0.0):g} available"))
    return out
