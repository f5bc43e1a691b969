"""Position and cash arithmetic, written once and used by the engine and by the ledger replay.

Perpetuals are USDT-margined and netted (one size per symbol). Opening or adding moves no cash;
closing realizes `closed x (price - entry)` for a long (the opposite for a short); fees and funding
are cash. Isolated margin is a reservation inside the USDT balance: it grows by `quantity x price /
leverage` on every increase and is released in proportion to what a close closes.
"""

from __future__ import annotations

from quantdesk.tools.desk.instruments import Instrument
from quantdesk.tools.desk.model import Position, Side, side_sign

BALANCE_DECIMALS = 10
"""Balances are kept rounded to 1e-10: sums of lot-sized quantities stay exact (0.1 + 0.2 is 0.3)."""


def add_balance(balances: dict[str, float], asset: str, amount: float) -> float:
    value = round(balances.get(asset, 0.0) + amount, BALANCE_DECIMALS)
    balances[asset] = value
    return value


def apply_perp_fill(position: Position, instrument: Instrument, side: Side, quantity: float, price: float) -> float:
    """Apply one fill to a position in place and return the realized P&L (fees not included)."""
    sign = side_sign(side)
    size = position.size
    if size == 0.0 or (size > 0) == (sign > 0):
        new_size = instrument.round_quantity(size + sign * quantity)
        position.entry_price = (abs(size) * position.entry_price + quantity * price) / abs(new_size)
        if position.margin_mode == "isolated":
            position.isolated_margin_usd += quantity * price / position.leverage
        position.size = new_size
        return 0.0
    closing = min(quantity, abs(size))
    realized = closing * (price - position.entry_price) * (1.0 if size > 0 else -1.0)
    if position.margin_mode == "isolated":
        position.isolated_margin_usd -= position.isolated_margin_usd * closing / abs(size)
    new_size = instrument.round_quantity(size + sign * quantity)
    if new_size == 0.0:
        position.entry_price = 0.0
        position.isolated_margin_usd = 0.0
    elif (new_size > 0) != (size > 0):
        position.entry_price = price
        position.isolated_margin_usd = (abs(new_size) * price / position.leverage
                                        if position.margin_mode == "isolated" else 0.0)
    position.size = new_size
    position.realized_pnl_usd += realized
    return realized


def spot_cash_flows(instrument: Instrument, side: Side, quantity: float, price: float) -> list[tuple[str, float]]:
    """(asset, amount) changes of a spot fill before its fee: the quote pays for the base or the reverse."""
    notional = quantity * price
    if side == "buy":
        return [(instrument.quote, -notional), (instrument.base, quantity)]
    return [(instrument.base, -quantity), (instrument.quote, notional)]


def fee_usd(quantity: float, price: float, fee_bps: float) -> float:
    return quantity * price * fee_bps * 1e-4


def unrealized_pnl(position: Position, mark: float) -> float:
    return position.size * (mark - position.entry_price) if position.size else 0.0


def maintenance_margin(position: Position, mark: float, rate: float) -> float:
    return abs(position.size) * mark * rate


def isolated_liquidation_price(position: Position, rate: float) -> float | None:
    """Mark at which isolated equity (margin + unrealized P&L) equals maintenance margin."""
    size, margin = position.size, position.isolated_margin_usd
    if size > 0:
        price = (size * position.entry_price - margin) / (size * (1.0 - rate))
    elif size < 0:
        quantity = -size
        price = (margin + quantity * position.entry_price) / (quantity * (1.0 + rate))
    else:
        return None
    return max(price, 0.0)


def cross_liquidation_price(position: Position, rate: float, excess_elsewhere_usd: float) -> float | None:
    """Mark of this cross position at which the cross account reaches maintenance, the other marks held still.

    `excess_elsewhere_usd` is the cross collateral plus the other cross positions' unrealized P&L minus
    their maintenance margin. Solves excess + size (mark - entry) - |size| mark rate = 0.
    """
    size = position.size
    if size == 0:
        return None
    slope = size - abs(size) * rate
    price = (size * position.entry_price - excess_elsewhere_usd) / slope
    return price if price > 0 else None


def slippage_bps(side: Side, price: float, reference: float | None) -> float:
    if not reference:
        return 0.0
    return side_sign(side) * (price - reference) / reference * 1e4
