"""One strategy cycle for one symbol: combine the live signals by weight, decide, size, check and trade.

The decision, per symbol, from the live signals of the profile's allowed types (an expired signal is never
acted on; a disallowed type is shown with its reason but not counted):
  combined = sum(weight * sign * strength * confidence) / sum(weight)  over live allowed signals
  flat and |combined| >= profile.entry_threshold  -> open in its direction (perpetuals: long or short)
  holding and combined against the position with |combined| >= entry_threshold -> close (reduce-only)
  otherwise nothing is considered (no decision is logged).
An opening is sized by tools/risk/sizing.py with the active profile (risk per trade, ATR stop, leverage), then
scaled by the drawdown and volatility scalars of the TRADEOS feasibility (linear from 1 at 5 % drawdown to 0 at
12 %; clamp(0.6 / annual vol, 0.25, 1) above 60 % vol) and capped at the profile's share of equity.
Verdicts follow TRADEOS feasibility: APPROVED, SIZED_DOWN (a scalar or a cap cut the risk-budget size),
REJECTED (with reason codes; nothing is sent, or the desk's gate refused the order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quantdesk.tools.risk.sizing import SizingFacts, SizingRequest, size_position
from quantdesk.tools.signals.model import Signal
from quantdesk.tools.signals.profiles import StrategyProfile

if TYPE_CHECKING:
    from quantdesk.tools.desk.engine import DeskEngine
    from quantdesk.tools.desk.instruments import Instrument

DD_FULL, DD_ZERO = 0.05, 0.12
ATR_CYCLES = 15
"""The ATR's bar, in cycles (15 one-minute cycles: 15-minute bars): a stop a minute's range wide is inside the
round-trip fees."""
ATR_FLOOR = 0.001
"""The ATR is at least 10 bp of the price (a perfectly smooth series still has a stop outside the fees)."""
VOL_KNEE, VOL_FLOOR = 0.60, 0.25


@dataclass(slots=True)
class Plan:
    """What a cycle decided for one symbol, before the order is sent."""

    symbol: str
    action: str
    """open_long, open_short, close, or none."""
    combined: float
    votes: list[dict[str, Any]]
    chosen: Signal | None
    quantity: float = 0.0
    verdict: str | None = None
    reasons: list[tuple[str, str]] = field(default_factory=list)
    sizing: dict[str, Any] | None = None
    scalars: dict[str, float] = field(default_factory=dict)


def combine(signals: list[Signal], weights: dict[str, float], profile: StrategyProfile, now_ms: int
            ) -> tuple[float, list[dict[str, Any]], list[Signal]]:
    """(combined score, votes for the log, the live allowed signals)."""
    votes: list[dict[str, Any]] = []
    used: list[Signal] = []
    total = weight_sum = 0.0
    for s in signals:
        w = weights.get(s.signal_type, 0.0)
        vote: dict[str, Any] = {"agent_id": s.signal_type, "signal_id": s.signal_id, "direction": s.direction,
                "strength": s.strength, "confidence": s.confidence, "weight": w, "vote": 0.0, "counted": False,
                "excluded_reason": None}
        if not s.live(now_ms):
            vote["excluded_reason"] = "signal_ttl_expired"
        elif s.signal_type not in profile.allowed_signal_types:
            vote["excluded_reason"] = "signal_type_not_allowed"
        elif w <= 0:
            vote["excluded_reason"] = "zero_weight"
        else:
            vote["vote"] = w * s.sign * s.strength * s.confidence
            vote["counted"] = True
            total += vote["vote"]
            weight_sum += w
            used.append(s)
        votes.append(vote)
    return (total / weight_sum if weight_sum > 0 else 0.0), votes, used


def plan(symbol: str, signals: list[Signal], weights: dict[str, float], profile: StrategyProfile, now_ms: int,
         position_size: float) -> Plan:
    combined, votes, used = combine(signals, weights, profile, now_ms)
    strong = abs(combined) >= profile.entry_threshold
    direction = 1.0 if combined > 0 else -1.0
    if position_size == 0.0 and strong:
        action = "open_long" if direction > 0 else "open_short"
    elif position_size != 0.0 and strong and direction * position_size < 0:
        action = "close"
    else:
        action = "none"
    agreeing = [s for s in used if s.sign == direction]
    chosen = max(agreeing, key=lambda s: weights.get(s.signal_type, 0.0) * s.strength * s.confidence) \
        if agreeing and action != "none" else None
    return Plan(symbol, action, combined, votes, chosen)


def scalars(drawdown: float, volatility_annual: float | None) -> dict[str, float]:
    dd = 1.0 if drawdown <= DD_FULL else max(0.0, 1.0 - (drawdown - DD_FULL) / (DD_ZERO - DD_FULL))
    vol = 1.0
    if volatility_annual is not None and volatility_annual > VOL_KNEE:
        vol = min(1.0, max(VOL_FLOOR, VOL_KNEE / volatility_annual))
    return {"drawdown_scalar": dd, "volatility_scalar": vol}


def cycle_atr(prices: list[float], atr_cycles: int, period: int = 14) -> float:
    """ATR(period) on bars of `atr_cycles` cycles built from the loop's cycle closes (close to close: the loop
    keeps no intrabar high/low), floored at ATR_FLOOR of the price. With fewer than two such bars, the one-cycle
    range scaled by sqrt(atr_cycles) (a random walk's)."""
    entry = prices[-1]
    closes = prices[::-1][::atr_cycles][::-1]
    scale = 1.0
    if len(closes) < 3:
        closes, scale = prices, math.sqrt(atr_cycles)
    tail = closes[-period - 1:]
    steps = [abs(b - a) * scale for a, b in zip(tail[:-1], tail[1:], strict=True)]
    return max(sum(steps) / len(steps) if steps else 0.0, entry * ATR_FLOOR)


def size(engine: DeskEngine, instrument: Instrument, p: Plan, profile: StrategyProfile, prices: list[float],
         cycle_seconds: int, limits: Any, kelly: tuple[float | None, float | None, str] = (None, None, ""),
         atr_cycles: int = ATR_CYCLES) -> None:
    """Fill in p.quantity, p.verdict, p.sizing and p.scalars for an opening. `kelly` is (win rate, payoff ratio,
    where they come from) of the chosen signal's type, or Nones with the reason it is not applied."""
    account = engine.account()
    entry = prices[-1]
    atr = cycle_atr(prices, atr_cycles)
    vol = None
    if len(prices) >= 3:
        logs = [math.log(b / a) for a, b in zip(prices[:-1], prices[1:], strict=True) if a > 0 and b > 0]
        if len(logs) >= 2:
            mean = sum(logs) / len(logs)
            var = sum((x - mean) ** 2 for x in logs) / (len(logs) - 1)
            vol = math.sqrt(var * 365 * 86_400 / cycle_seconds)
    position = engine.peek_position(instrument.symbol)
    facts = SizingFacts(
        symbol=instrument.symbol, is_perpetual=instrument.is_perpetual, equity_usd=account.equity_usd,
        available_usd=account.available_usd, gross_exposure_usd=account.gross_exposure_usd,
        position_notional_usd=abs(position.size) * entry, entry_price_usd=entry, atr_usd=atr,
        volatility_annual=vol, taker_fee_rate=instrument.taker_fee_bps * 1e-4, lot_size=instrument.lot_size,
        quantity_decimals=instrument.quantity_decimals, tick_size=instrument.tick_size,
        min_notional_usd=instrument.min_notional_usd, symbol_leverage=position.leverage,
        maintenance_margin_rate=instrument.maintenance_margin_rate or 0.0,
        max_position_notional_usd=limits.max_position_notional_usd,
        max_gross_exposure_usd=limits.max_gross_exposure_usd, max_leverage=limits.max_leverage,
        max_order_notional_usd=limits.max_order_notional_usd,
        win_rate=kelly[0], payoff_ratio=kelly[1], kelly_source=kelly[2],
        sources={"atr": f"ATR(14) on {atr_cycles}-cycle bars of the loop's closes",
                 "entry": f"{instrument.symbol} mid at the cycle",
                 "volatility": "std of cycle log returns, annualized on 365 days"})
    side = "long" if p.action == "open_long" else "short"
    # a volatility target of 100 %: the TRADEOS volatility scalar below is the loop's volatility rule
    out = size_position(SizingRequest(side=side, profile=profile.name,  # type: ignore[arg-type]
                                      target_volatility_annual=1.0), facts)
    p.scalars = scalars(account.drawdown_pct, vol)
    cap_qty = profile.max_position_fraction * account.equity_usd / entry
    wanted = out["quantity"] * p.scalars["drawdown_scalar"] * p.scalars["volatility_scalar"]
    quantity = instrument.floor_quantity(min(wanted, cap_qty))
    p.sizing = {"quantity_by_sizing": out["quantity"], "binding_constraint": out["binding_constraint"],
                "risk_fraction_used": out["risk_fraction_used"], "stop_loss_price_usd": out["stop_loss_price_usd"],
                "take_profit_price_usd": out["take_profit_price_usd"], "atr_usd": atr, "volatility_annual": vol,
                "profile_position_cap_quantity": cap_qty, "entry_price_usd": entry, "kelly": out["kelly"]}
    if out["kelly"]["applied"] and out["risk_fraction_used"] <= 0:
        p.verdict = "REJECTED"
        p.reasons.append(("kelly_no_edge", f"Kelly f* = {out['kelly']['f_star']:.3f} <= 0 ({out['kelly']['source']}): "
                                           "the signal type has shown no edge, so no size"))
        return
    if quantity <= 0 or quantity * entry < instrument.min_notional_usd:
        p.verdict = "REJECTED"
        p.reasons.append(("no_position_room", f"sized to {quantity:g} {instrument.symbol}: below the minimum notional "
                                              f"({out['binding_constraint']} binds)"))
        return
    p.quantity = quantity
    cut = quantity < out["quantity"] - instrument.lot_size / 2 or out["binding_constraint"] != "risk_per_trade"
    p.verdict = "SIZED_DOWN" if cut else "APPROVED"
    if cut:
        why = [f"sizing cap {out['binding_constraint']}"] if out["binding_constraint"] != "risk_per_trade" else []
        why += [f"{k} {v:.2f}" for k, v in p.scalars.items() if v < 1.0]
        if quantity < wanted - instrument.lot_size / 2:
            why.append(f"profile position cap {profile.max_position_fraction:.0%} of equity")
        p.reasons.append(("sized_down", "; ".join(why) or "rounded to the lot"))
