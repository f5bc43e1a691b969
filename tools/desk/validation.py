"""Checks of an order's shape and grid before it is an intent: problems name the field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.tools.desk.instruments import Instrument
from quantdesk.tools.desk.model import OrderRequest

if TYPE_CHECKING:
    from quantdesk.tools.desk.engine import MarketState


def check_shape(request: OrderRequest, instrument: Instrument) -> None:
    """Fields that must or must not be there for the order type; problems name the field."""
    problems = []
    t = request.order_type
    if t in ("limit", "stop_limit") and request.price is None:
        problems.append(Problem("$.price", f"is required for a {t} order"))
    if t in ("market", "stop_market") and request.price is not None:
        problems.append(Problem("$.price", f"must be omitted for a {t} order (it trades at the market)"))
    if t in ("stop_market", "stop_limit") and request.stop_price is None:
        problems.append(Problem("$.stop_price", f"is required for a {t} order"))
    if t in ("market", "limit") and request.stop_price is not None:
        problems.append(Problem("$.stop_price", f"applies to stop orders only, not to a {t} order"))
    if request.post_only and t not in ("limit", "stop_limit"):
        problems.append(Problem("$.post_only", "applies to limit orders only"))
    if request.post_only and request.time_in_force != "GTC":
        problems.append(Problem("$.post_only", "needs time_in_force GTC (a post-only order rests or is refused)"))
    if request.reduce_only and not instrument.is_perpetual:
        problems.append(Problem("$.reduce_only", f"{instrument.symbol} is spot: reduce_only applies to perpetuals"))
    if problems:
        raise InvalidArgument.from_problems(problems)


def grid_problems(request: OrderRequest, instrument: Instrument, market: MarketState) -> list[tuple[str, str, str]]:
    """Tick, lot and minimum-notional problems: (field path, reason code, message)."""
    price, quantity = request.price, request.quantity
    if request.stop_price is None and quantity >= instrument.lot_size - 1e-15 and not request.reduce_only:
        # the usual order, checked with the same arithmetic as below without building anything
        units = quantity / instrument.lot_size
        on_lot = abs(units - round(units)) <= 1e-9 * max(1.0, abs(units))
        if price is None:
            mark = market.mark if market.mark is not None else market.last_price
            notional_ok = mark is None or quantity * mark >= instrument.min_notional_usd - 1e-9
            on_tick = True
        else:
            ticks = price / instrument.tick_size
            on_tick = abs(ticks - round(ticks)) <= 1e-9 * max(1.0, abs(ticks))
            notional_ok = quantity * price >= instrument.min_notional_usd - 1e-9
        if on_lot and on_tick and notional_ok:
            return []
    out = []
    for name, value in (("price", request.price), ("stop_price", request.stop_price)):
        if value is not None and not instrument.price_on_tick(value):
            out.append((f"$.{name}", "PRICE_NOT_ON_TICK",
                        f"{value!r} is not a multiple of the tick size {instrument.tick_size:g}"))
    if not instrument.quantity_on_lot(request.quantity):
        out.append(("$.quantity", "QUANTITY_NOT_ON_LOT",
                    f"{request.quantity!r} is not a multiple of the lot size {instrument.lot_size:g}"))
    elif request.quantity < instrument.lot_size - 1e-15:
        out.append(("$.quantity", "QUANTITY_NOT_ON_LOT", f"is below the lot size {instrument.lot_size:g}"))
    if not request.reduce_only:
        price = request.price or request.stop_price or market.reference_mark()
        if price is not None and request.quantity * price < instrument.min_notional_usd - 1e-9:
            out.append(("$.quantity", "NOTIONAL_BELOW_MINIMUM",
                        f"notional {request.quantity * price:.4f} USD is below the minimum "
                        f"{instrument.min_notional_usd:g} for {instrument.symbol}"))
    return out
