"""Contract sizes that turn venue quantities into base units, and quote currencies worth one USD.

The OKX values are the instruments' `ctVal` (`GET /api/v5/public/instruments`) as documented for
BTC-USDT-SWAP in the spec (0.01 BTC); the others are believed but not checked against the
endpoint (unverified, as of 2026-11). Callers override or extend them with `contract_sizes`.
The CME units are the contract specifications of the spec (§3.6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from quantdesk.tools.venues.catalog import get_venue


@dataclass(frozen=True, slots=True)
class ContractSize:
    """One contract is `value` units of `unit`: the base currency (linear) or USD (inverse)."""

    value: float
    unit: Literal["base", "usd"]

    def to_base(self, contracts: float, price: float) -> float:
        if self.unit == "base":
            return scale(contracts, self.value)
        return scale(contracts, self.value) / price


@lru_cache(maxsize=256)
def _ratio(unit: float) -> tuple[int, int]:
    f = Fraction(repr(unit))
    return f.numerator, f.denominator


def scale(contracts: float, unit: float) -> float:
    """contracts × unit, correctly rounded when contracts is whole (3 × 0.1 is 0.3, not 0.30000000000000004)."""
    if contracts.is_integer() and abs(contracts) < 2**53:
        num, den = _ratio(unit)
        return int(contracts) * num / den
    return contracts * unit


# Keyed by (base, quote); the same value holds for the perpetual and the dated futures of a pair.
OKX_CONTRACTS: Mapping[tuple[str, str], ContractSize] = {
    ("BTC", "USDT"): ContractSize(0.01, "base"),  # spec §3.3 (doc)
    ("ETH", "USDT"): ContractSize(0.1, "base"),  # unverified
    ("SOL", "USDT"): ContractSize(1.0, "base"),  # unverified
    ("BTC", "USD"): ContractSize(100.0, "usd"),  # unverified: coin-margined, 100 USD per contract
    ("ETH", "USD"): ContractSize(10.0, "usd"),  # unverified
}

# CME contract units in base currency per contract (spec §3.6), by product root.
CME_UNITS: Mapping[str, tuple[str, float]] = {
    "BTC": ("BTC", 5.0),
    "MBT": ("BTC", 0.1),
    "ETH": ("ETH", 50.0),
    "MET": ("ETH", 0.1),
}

# SGX perpetual contract sizes (spec §3.7, secondary source); used when a message has no `contract_size`.
SGX_CONTRACTS: Mapping[str, float] = {"BTC": 0.2, "ETH": 5.0}

# Quotes taken at 1 USD for `notional_usd` (no depeg is modelled); other quotes need a rate.
USD_QUOTES: Mapping[str, float] = {"USD": 1.0, "USDT": 1.0, "USDC": 1.0, "FDUSD": 1.0, "BUSD": 1.0, "TUSD": 1.0,
                                   "USDP": 1.0, "DAI": 1.0}


@lru_cache(maxsize=256)
def binance_coinm_usd(base: str) -> float:
    """USD per Binance COIN-M contract of `base`, from the venue data (venues.json, binance.inverse_contracts)."""
    figure = get_venue("binance").inverse_contracts
    if figure is None:
        raise RuntimeError("venues.json has no binance.inverse_contracts")
    return figure.value.usd_per_contract(base)


def quote_of(symbol: str) -> str:
    """The quote currency of a canonical symbol."""
    parts = symbol.split("-")
    return parts[1] if len(parts) > 1 else ""
