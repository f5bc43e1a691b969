"""The desk's instruments: tick, lot, minimum notional, fees, leverage, maintenance margin and funding rules.

Figures come from `tools/venues/venues.json` where it has them (fees and funding of the venue, the
BTC perpetual's grid) and from `instruments.json` beside this module otherwise, each instrument
saying which figures are the venue's and whether they are verified.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.tools.venues.catalog import FundingParameters, funding_parameters, get_venue

InstrumentKind = Literal["spot", "perpetual"]
SETTLEMENT_ASSET = "USDT"
_GRID_TOLERANCE = 1e-9


def decimals_of(step: float) -> int:
    """Decimal places of a grid step written as it reads (0.001 -> 3, 5.0 -> 0)."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    venue: str
    venue_symbol: str
    tick_size: float
    lot_size: float
    min_notional_usd: float
    maker_fee_bps: float
    taker_fee_bps: float
    max_leverage: float
    maintenance_margin_rate: float | None
    funding: FundingParameters | None
    from_venue: tuple[str, ...]
    source: str
    verified: bool
    price_decimals: int
    quantity_decimals: int

    @property
    def is_perpetual(self) -> bool:
        return self.kind == "perpetual"

    def round_price(self, price: float) -> float:
        return round(round(price / self.tick_size) * self.tick_size, self.price_decimals)

    def round_quantity(self, quantity: float) -> float:
        """Snap a computed quantity to the lot grid's decimals (keeps sums such as 0.1 + 0.2 exact)."""
        return round(quantity, self.quantity_decimals)

    def floor_quantity(self, quantity: float) -> float:
        lots = int(quantity / self.lot_size + _GRID_TOLERANCE)
        return round(lots * self.lot_size, self.quantity_decimals)

    def price_on_tick(self, price: float) -> bool:
        return _on_grid(price, self.tick_size)

    def quantity_on_lot(self, quantity: float) -> bool:
        return _on_grid(quantity, self.lot_size)

    def describe(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "kind": self.kind, "base_asset": self.base, "quote_asset": self.quote,
            "venue": self.venue, "venue_symbol": self.venue_symbol, "tick_size": self.tick_size,
            "lot_size": self.lot_size, "min_notional_usd": self.min_notional_usd,
            "maker_fee_bps": self.maker_fee_bps, "taker_fee_bps": self.taker_fee_bps,
            "max_leverage": self.max_leverage, "maintenance_margin_rate": self.maintenance_margin_rate,
            "funding_interval_hours": self.funding.interval_hours if self.funding else None,
            "funding_formula": self.funding.formula_text if self.funding else None,
            "figures_from_venue_file": list(self.from_venue), "source": self.source, "verified": self.verified,
        }


def _on_grid(value: float, step: float) -> bool:
    units = value / step
    return abs(units - round(units)) <= _GRID_TOLERANCE * max(1.0, abs(units))


def _read_file() -> dict[str, Any]:
    text = resources.files("quantdesk.tools.desk").joinpath("instruments.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def synthetic_markets() -> dict[str, Any]:
    """Per-asset settings of the embedded synthetic feed (see instruments.json)."""
    markets: dict[str, Any] = _read_file()["synthetic_markets"]
    return markets


def _figure(entry: dict[str, Any], name: str, venue_value: float | None) -> float:
    if name in entry["from_venue"]:
        if venue_value is None:
            raise ValueError(f"{entry['symbol']}: {name} is to come from the venue file, which has none")
        return float(venue_value)
    value = entry[name]
    if value is None:
        raise ValueError(f"{entry['symbol']}: {name} is missing")
    return float(value)


@functools.cache
def load_instruments() -> tuple[Instrument, ...]:
    """Every desk instrument, in the file's order (which is also the engine's fixed processing order)."""
    data = _read_file()
    venue = get_venue(data["venue"])
    fees = venue.fees.value
    out = []
    for entry in data["instruments"]:
        perp = entry["kind"] == "perpetual"
        maker = fees.perp_maker_bps if perp else fees.spot_maker_bps
        taker = fees.perp_taker_bps if perp else fees.spot_taker_bps
        tick = _figure(entry, "tick_size", venue.tick_size_usd.value)
        lot = _figure(entry, "lot_size", venue.lot_size_base.value)
        out.append(Instrument(
            symbol=entry["symbol"], kind=entry["kind"], base=entry["base"], quote=entry["quote"],
            venue=venue.exchange, venue_symbol=entry["venue_symbol"],
            tick_size=tick, lot_size=lot, price_decimals=decimals_of(tick), quantity_decimals=decimals_of(lot),
            min_notional_usd=_figure(entry, "min_notional_usd", venue.min_notional_usd.value),
            maker_fee_bps=_figure(entry, "maker_fee_bps", maker),
            taker_fee_bps=_figure(entry, "taker_fee_bps", taker),
            max_leverage=_figure(entry, "max_leverage", venue.max_leverage.value),
            maintenance_margin_rate=entry["maintenance_margin_rate"],
            funding=funding_parameters(venue.exchange) if "funding" in entry["from_venue"] else None,
            from_venue=tuple(entry["from_venue"]), source=entry["source"], verified=bool(entry["verified"]),
        ))
    return tuple(out)


class InstrumentTable:
    """Lookup by canonical symbol with an error that names the field and lists the known symbols."""

    def __init__(self, instruments: tuple[Instrument, ...]) -> None:
        self.instruments = instruments
        self.by_symbol = {i.symbol: i for i in instruments}
        self.order = {i.symbol: n for n, i in enumerate(instruments)}
        self.assets = tuple(dict.fromkeys([SETTLEMENT_ASSET, *(i.base for i in instruments if i.kind == "spot")]))

    def get(self, symbol: str, field: str = "$.symbol") -> Instrument:
        instrument = self.by_symbol.get(symbol)
        if instrument is None:
            known = ", ".join(self.by_symbol)
            raise InvalidArgument.from_problems([Problem(field, f"unknown symbol {symbol!r}; known: {known}")])
        return instrument

    def spot_for(self, base: str) -> Instrument | None:
        return next((i for i in self.instruments if i.kind == "spot" and i.base == base), None)

    def perpetuals(self) -> tuple[Instrument, ...]:
        return tuple(i for i in self.instruments if i.is_perpetual)
