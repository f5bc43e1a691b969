"""Hedging spot holdings with the perpetual of the same asset: analysis, a plan of adjustments, and the orders.

Hedge ratio h of an asset = -perpetual size / spot holding, in base units (1 = fully hedged, 0 = unhedged;
a perpetual moves one for one with its spot, so units hedge units whatever the premium). The target
perpetual size is -h_target x spot holding; the adjustment is the difference rounded to the nearest lot,
then reduced (rounded down to the lot) until it fits the caps: the position and gross-exposure limits and
account leverage of the control plane, the per-order notional limit and the margin available at the
symbol's leverage. An adjustment that only shrinks the position is reduce-only (exempt from the minimum
notional); one that opens or grows it must reach the minimum notional. Assets without a spot holding are
not hedges and are left alone. The control plane's risk checks still decide every order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from quantdesk.tools.risk.exposure import AssetExposure

if TYPE_CHECKING:
    from quantdesk.tools.control.store import RiskLimits
    from quantdesk.tools.desk.gate import AccountSnapshot
    from quantdesk.tools.desk.instruments import Instrument


@dataclass(frozen=True, slots=True)
class Adjustment:
    asset: str
    symbol: str
    side: Literal["buy", "sell"]
    quantity: float
    reduce_only: bool
    current_futures_quantity: float
    target_futures_quantity: float
    planned_futures_quantity: float
    """The perpetual size after the adjustment fills completely (the target unless a cap bound)."""
    mark_price_usd: float
    notional_usd: float
    limited_by: str | None
    priority: Literal["high", "medium", "low"]
    action: str

    def to_dict(self) -> dict[str, Any]:
        return {"asset": self.asset, "symbol": self.symbol, "side": self.side, "quantity": self.quantity,
                "reduce_only": self.reduce_only, "current_futures_quantity": self.current_futures_quantity,
                "target_futures_quantity": self.target_futures_quantity,
                "planned_futures_quantity": self.planned_futures_quantity, "mark_price_usd": self.mark_price_usd,
                "notional_usd": self.notional_usd, "limited_by": self.limited_by, "priority": self.priority,
                "action": self.action}


@dataclass(frozen=True, slots=True)
class Skip:
    asset: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"asset": self.asset, "reason": self.reason}


def plan_hedge(rows: list[AssetExposure], instruments: dict[str, Instrument], target: float, limits: RiskLimits,
               account: AccountSnapshot, assets: set[str] | None) -> tuple[list[Adjustment], list[Skip]]:
    adjustments: list[Adjustment] = []
    skipped: list[Skip] = []
    gross = account.gross_exposure_usd
    available = account.available_usd
    equity = account.equity_usd
    for row in rows:
        if assets is not None and row.asset not in assets:
            continue
        if row.perpetual_symbol is None:
            skipped.append(Skip(row.asset, "the asset has no perpetual to hedge with"))
            continue
        if row.spot_quantity <= 0:
            skipped.append(Skip(row.asset, "no spot holding: a perpetual position alone is not a hedge"))
            continue
        perp = instruments[row.perpetual_symbol]
        mark = row.futures_mark_price_usd
        if mark is None or mark <= 0:
            skipped.append(Skip(row.asset, f"no mark price for {perp.symbol} yet"))
            continue
        current = row.futures_quantity
        wanted = -target * row.spot_quantity
        delta = _lots(wanted - current, perp)
        if delta == 0.0:
            skipped.append(Skip(row.asset, f"already at the target within one lot ({perp.lot_size:g})"))
            continue
        after = current + delta
        grows = abs(after) > abs(current) + 1e-12 or current * after < 0
        limited_by = None
        if grows:
            # only the part that adds exposure is capped (a flip first closes, which is never blocked)
            growth = abs(after) - (abs(current) if current * after > 0 else 0.0)
            room = _room(limits, perp, mark, current, gross, equity, available, row.futures_leverage or 1.0)
            if growth * mark > room[0] + 1e-9:
                allowed = math.floor(max(room[0], 0.0) / mark / perp.lot_size + 1e-9) * perp.lot_size
                shrink = growth - allowed
                delta = _toward_zero(delta, shrink, perp)
                limited_by = room[1]
                after = current + delta
            if delta != 0.0 and abs(delta) * mark < perp.min_notional_usd:
                skipped.append(Skip(row.asset, f"the adjustment of {abs(delta):g} {perp.symbol} is below the minimum "
                                               f"notional {perp.min_notional_usd:g} USD"))
                continue
        if delta == 0.0:
            skipped.append(Skip(row.asset, f"no room left: {limited_by}"))
            continue
        side: Literal["buy", "sell"] = "buy" if delta > 0 else "sell"
        reduce_only = not grows and abs(after) <= abs(current) + 1e-12
        notional = abs(delta) * mark
        share = notional / equity if equity > 0 else 1.0
        priority: Literal["high", "medium", "low"] = "high" if share >= 0.10 else "medium" if share >= 0.02 else "low"
        verb = "Increase" if abs(after) > abs(current) else "Reduce"
        direction = "short" if (after if abs(after) > abs(current) else current) < 0 else "long"
        action = (f"{verb} {direction} position by {abs(delta):g} {row.asset} ({side} {abs(delta):g} {perp.symbol}) "
                  f"to hedge {target:.0%} of {row.spot_quantity:g} {row.asset} spot")
        adjustments.append(Adjustment(row.asset, perp.symbol, side, abs(delta), reduce_only, current,
                                      round(wanted, perp.quantity_decimals), round(after, perp.quantity_decimals),
                                      mark, notional, limited_by, priority, action))
        if grows:
            gross += abs(delta) * mark
    return adjustments, skipped


def _lots(quantity: float, perp: Instrument) -> float:
    lots = round(quantity / perp.lot_size)
    return round(lots * perp.lot_size, perp.quantity_decimals)


def _toward_zero(delta: float, shrink: float, perp: Instrument) -> float:
    size = max(0.0, abs(delta) - shrink)
    size = math.floor(size / perp.lot_size + 1e-9) * perp.lot_size
    return round(math.copysign(size, delta), perp.quantity_decimals)


def _room(limits: RiskLimits, perp: Instrument, mark: float, current: float, gross: float, equity: float,
          available: float, leverage: float) -> tuple[float, str]:
    """The notional a growing adjustment may add, and which cap that is."""
    rooms: list[tuple[float, str]] = []
    if limits.max_position_notional_usd is not None:
        rooms.append((limits.max_position_notional_usd - abs(current) * mark, "position limit"))
    if limits.max_gross_exposure_usd is not None:
        rooms.append((limits.max_gross_exposure_usd - gross, "gross exposure limit"))
    if limits.max_leverage is not None:
        rooms.append((limits.max_leverage * equity - gross, "account leverage limit"))
    if limits.max_order_notional_usd is not None:
        rooms.append((limits.max_order_notional_usd, "per-order notional limit"))
    fee = perp.taker_fee_bps * 1e-4
    rooms.append((available / (1.0 / leverage + fee), f"available margin at {leverage:g}x"))
    return min(rooms, key=lambda r: r[0])


def commentary(rows: list[AssetExposure], adjustments: list[Adjustment], skipped: list[Skip], target: float,
               equity: float) -> str:
    """A plain account of the numbers (no model involved)."""
    hedged = [r for r in rows if r.spot_quantity > 0 and r.perpetual_symbol is not None]
    if not hedged:
        return "No spot holdings: there is nothing to hedge."
    spot_value = sum(r.spot_value_usd for r in hedged)
    offset = sum(-r.futures_value_usd for r in hedged)
    overall = offset / spot_value if spot_value > 0 else 0.0
    net = sum(r.net_exposure_usd for r in hedged)
    ratios = ", ".join(f"{r.asset} {r.hedge_ratio:.0%}" for r in hedged if r.hedge_ratio is not None)
    share = f" ({net / equity:.1%} of equity)" if equity > 0 else ""
    parts = [f"The spot holdings are {overall:.0%} hedged by value against a target of {target:.0%} ({ratios}); "
             f"net exposure {net:,.0f} USD{share}."]
    if adjustments:
        parts.append(f"{len(adjustments)} adjustment{'s' if len(adjustments) != 1 else ''}: "
                     + "; ".join(f"{a.side} {a.quantity:g} {a.symbol}" + (f" (limited by the {a.limited_by})"
                                                                          if a.limited_by else "")
                                 for a in adjustments) + ".")
    else:
        parts.append("No adjustment is needed.")
    parts += [f"{s.asset}: {s.reason}." for s in skipped if "already" not in s.reason]
    return " ".join(parts)
