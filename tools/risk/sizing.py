"""Explainable position sizing (spec/desk.md §4): fixed-fractional from equity, entry and an ATR stop, capped by
a fractional Kelly estimate, a volatility target and the desk's limits; every intermediate value comes back.

1. stop = entry -/+ k_atr x ATR, the distance clamped to max_stop_pct of the entry and, on a perpetual, kept
   inside the liquidation price with a 5 % buffer (isolated estimate at the symbol's leverage).
2. take-profit = entry +/- R x stop distance.
3. risk fraction = the profile's (or the given) risk per trade, capped by lambda x Kelly when a Kelly estimate
   exists (given win rate and payoff, or at least 30 closed trades of the symbol on the desk).
4. quantity = equity x risk fraction / (stop distance + round-turn taker fees per unit).
5. capped by the volatility target (notional <= equity x target vol / asset vol), the position limit, gross
   exposure, account leverage (the control plane's and the profile's), available margin or balance and the
   per-order notional limit; rounded down to the lot; zero below the minimum notional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from quantdesk.server.errors import InvalidArgument, Problem

Profile = Literal["conservative", "balanced", "aggressive"]
Side = Literal["long", "short"]
LIQUIDATION_BUFFER = 0.05
KELLY_MIN_TRADES = 30


@dataclass(frozen=True, slots=True)
class ProfileParams:
    risk_per_trade_pct: float
    stop_atr_multiple: float
    take_profit_r_multiple: float
    max_leverage: float
    kelly_fraction: float


PROFILES: dict[str, ProfileParams] = {
    "conservative": ProfileParams(0.005, 2.5, 2.0, 1.0, 0.25),
    "balanced": ProfileParams(0.01, 2.0, 2.0, 3.0, 0.5),
    "aggressive": ProfileParams(0.02, 1.5, 3.0, 5.0, 0.5),
}


@dataclass(frozen=True, slots=True)
class SizingFacts:
    """Everything the sizing needs, read from the desk (or given by the caller)."""

    symbol: str
    is_perpetual: bool
    equity_usd: float
    available_usd: float
    gross_exposure_usd: float
    position_notional_usd: float
    """|notional| of the symbol's position (perpetual) or holding (spot) now."""
    entry_price_usd: float
    atr_usd: float
    volatility_annual: float | None
    taker_fee_rate: float
    lot_size: float
    quantity_decimals: int
    tick_size: float
    min_notional_usd: float
    symbol_leverage: float
    maintenance_margin_rate: float
    max_position_notional_usd: float | None
    max_gross_exposure_usd: float | None
    max_leverage: float | None
    max_order_notional_usd: float | None
    win_rate: float | None = None
    payoff_ratio: float | None = None
    kelly_source: str | None = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SizingRequest:
    side: Side = "long"
    profile: Profile = "balanced"
    risk_per_trade_pct: float | None = None
    stop_atr_multiple: float | None = None
    take_profit_r_multiple: float | None = None
    kelly_fraction: float | None = None
    stop_price_usd: float | None = None
    max_stop_pct: float = 0.10
    target_volatility_annual: float = 0.15


def kelly(win_rate: float, payoff_ratio: float) -> float:
    """f* = p - (1 - p) / b."""
    return win_rate - (1.0 - win_rate) / payoff_ratio


def size_position(req: SizingRequest, f: SizingFacts) -> dict[str, Any]:
    profile = PROFILES[req.profile]
    sign = 1.0 if req.side == "long" else -1.0
    if not f.is_perpetual and req.side == "short":
        raise InvalidArgument.from_problems([Problem("$.side", f"{f.symbol} is spot: it cannot be sold short; size a "
                                                               "short on the perpetual")])
    entry = f.entry_price_usd
    k_atr = req.stop_atr_multiple if req.stop_atr_multiple is not None else profile.stop_atr_multiple
    r_multiple = req.take_profit_r_multiple if req.take_profit_r_multiple is not None \
        else profile.take_profit_r_multiple
    factors: list[dict[str, Any]] = []

    def factor(name: str, value: float | None, unit: str, explanation: str) -> None:
        factors.append({"name": name, "value": value, "unit": unit, "explanation": explanation})

    factor("equity", f.equity_usd, "USD", "account equity now")
    factor("entry_price", entry, "USD", f.sources.get("entry", "entry price"))
    if req.stop_price_usd is not None:
        if (req.stop_price_usd - entry) * sign >= 0:
            raise InvalidArgument.from_problems([Problem("$.stop_price_usd", f"a {req.side} stop must be "
                                                         f"{'below' if sign > 0 else 'above'} the entry {entry:g}")])
        distance = abs(entry - req.stop_price_usd)
        factor("stop_distance", distance, "USD", "from the given stop price")
    else:
        distance = k_atr * f.atr_usd
        factor("atr", f.atr_usd, "USD", f.sources.get("atr", "average true range"))
        factor("stop_distance", distance, "USD", f"{k_atr:g} x ATR")
    clamps = []
    if distance > req.max_stop_pct * entry:
        distance = req.max_stop_pct * entry
        clamps.append(f"clamped to max_stop_pct {req.max_stop_pct:.2%} of the entry")
    if f.is_perpetual:
        liquidation = entry * max(0.0, 1.0 / f.symbol_leverage - f.maintenance_margin_rate)
        inside = liquidation * (1.0 - LIQUIDATION_BUFFER)
        factor("liquidation_distance", liquidation, "USD",
               f"isolated estimate at {f.symbol_leverage:g}x: entry x (1 / leverage - maintenance rate "
               f"{f.maintenance_margin_rate:g})")
        if distance > inside:
            distance = inside
            clamps.append(f"kept inside the liquidation price with a {LIQUIDATION_BUFFER:.0%} buffer")
    if clamps:
        factor("stop_distance_clamped", distance, "USD", "; ".join(clamps))
    if distance <= 0:
        raise InvalidArgument.from_problems([Problem("$.stop_atr_multiple", "the stop distance is zero")])
    stop = _tick(entry - sign * distance, f.tick_size)
    take_profit = _tick(entry + sign * r_multiple * distance, f.tick_size)
    factor("take_profit_distance", r_multiple * distance, "USD", f"{r_multiple:g} R (R = the stop distance)")

    risk_fraction = req.risk_per_trade_pct if req.risk_per_trade_pct is not None else profile.risk_per_trade_pct
    factor("risk_per_trade", risk_fraction, "fraction", "given" if req.risk_per_trade_pct is not None
           else f"the {req.profile} profile's risk per trade")
    lam = req.kelly_fraction if req.kelly_fraction is not None else profile.kelly_fraction
    kelly_out: dict[str, Any] = {"applied": False, "f_star": None, "fraction": lam, "cap": None,
                                 "win_rate": f.win_rate, "payoff_ratio": f.payoff_ratio, "source": f.kelly_source}
    if f.win_rate is not None and f.payoff_ratio is not None and f.payoff_ratio > 0:
        f_star = kelly(f.win_rate, f.payoff_ratio)
        kelly_cap = lam * max(f_star, 0.0)
        kelly_out.update({"applied": True, "f_star": f_star, "cap": kelly_cap})
        factor("kelly_cap", kelly_cap, "fraction", f"{lam:g} x max(f*, 0), f* = p - (1 - p) / b = {f_star:.4f}")
        risk_fraction = min(risk_fraction, kelly_cap)
    else:
        kelly_out["reason"] = f.kelly_source or "no Kelly estimate: pass win_rate and payoff_ratio, or trade the " \
                                                f"symbol {KELLY_MIN_TRADES} times"
    risk_usd_budget = f.equity_usd * risk_fraction
    per_unit_loss = distance + (entry + stop) * f.taker_fee_rate
    factor("loss_per_unit_at_stop", per_unit_loss, "USD", f"stop distance + round-turn taker fees "
                                                          f"({f.taker_fee_rate * 1e4:g} bps on entry and stop)")
    quantity_by_risk = risk_usd_budget / per_unit_loss
    factor("quantity_by_risk", quantity_by_risk, "base units", "equity x risk fraction / loss per unit")

    caps: list[dict[str, Any]] = []

    def cap(name: str, notional: float | None, explanation: str) -> None:
        if notional is not None:
            caps.append({"name": name, "max_quantity": max(0.0, notional / entry), "max_notional_usd":
                         max(0.0, notional), "explanation": explanation})

    if f.volatility_annual is not None and f.volatility_annual > 0:
        cap("volatility_target", f.equity_usd * req.target_volatility_annual / f.volatility_annual,
            f"equity x target volatility {req.target_volatility_annual:.0%} / the asset's "
            f"{f.volatility_annual:.1%} ({f.sources.get('volatility', 'annualized')})")
    if f.max_position_notional_usd is not None:
        cap("position_limit", f.max_position_notional_usd - f.position_notional_usd,
            "the control plane's max_position_notional_usd less the position now")
    if f.max_gross_exposure_usd is not None:
        cap("gross_exposure_limit", f.max_gross_exposure_usd - f.gross_exposure_usd,
            "the control plane's max_gross_exposure_usd less the gross exposure now")
    if f.max_leverage is not None:
        cap("account_leverage_limit", f.max_leverage * f.equity_usd - f.gross_exposure_usd,
            f"the control plane's max_leverage {f.max_leverage:g}x of equity less the gross exposure now")
    cap("profile_leverage", profile.max_leverage * f.equity_usd - f.gross_exposure_usd,
        f"the {req.profile} profile's {profile.max_leverage:g}x of equity less the gross exposure now")
    if f.is_perpetual:
        cap("available_margin", f.available_usd / (1.0 / f.symbol_leverage + f.taker_fee_rate),
            f"available margin at {f.symbol_leverage:g}x, with the taker fee")
    else:
        cap("available_balance", f.available_usd / (1.0 + f.taker_fee_rate), "available USDT, with the taker fee")
    if f.max_order_notional_usd is not None:
        cap("order_notional_limit", f.max_order_notional_usd, "the control plane's max_order_notional_usd")
    tightest = min(caps, key=lambda c: c["max_quantity"])
    max_quantity = _floor(tightest["max_quantity"], f.lot_size, f.quantity_decimals)
    binding = "risk_per_trade" if quantity_by_risk <= tightest["max_quantity"] else tightest["name"]
    quantity = _floor(min(quantity_by_risk, tightest["max_quantity"]), f.lot_size, f.quantity_decimals)
    note = None
    if quantity * entry < f.min_notional_usd:
        note = (f"{quantity:g} x {entry:g} is below the instrument's minimum notional {f.min_notional_usd:g} USD: "
                "no position is recommended")
        quantity = 0.0
        binding = "min_notional"
    return {
        "symbol": f.symbol, "side": req.side, "profile": req.profile, "quantity": quantity,
        "max_quantity": max_quantity, "notional_usd": quantity * entry, "entry_price_usd": entry,
        "stop_loss_price_usd": stop, "take_profit_price_usd": take_profit, "stop_distance_usd": distance,
        "risk_usd": quantity * per_unit_loss, "risk_budget_usd": risk_usd_budget, "risk_fraction_used": risk_fraction,
        "atr_usd": f.atr_usd, "volatility_annual": f.volatility_annual, "kelly": kelly_out,
        "binding_constraint": binding, "factors": factors, "caps": caps, "note": note,
    }


def _floor(quantity: float, lot: float, decimals: int) -> float:
    if not math.isfinite(quantity) or quantity <= 0:
        return 0.0
    lots = math.floor(quantity / lot + 1e-9)
    return round(lots * lot, decimals)


def _tick(price: float, tick: float) -> float:
    decimals = max(0, -int(math.floor(math.log10(tick) + 1e-9)))
    return round(round(price / tick) * tick, decimals)
