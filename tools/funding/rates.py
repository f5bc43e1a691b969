"""Venue funding formulas and caps, as pure functions of the averaged premium (spec §5.1, §5.4)."""

from __future__ import annotations

import math

from quantdesk.tools.venues.catalog import FundingParameters


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def soft_cap(rate: float, cap: float) -> float:
    """c*tanh(F/c): odd, monotone, slope 1 at 0, saturates at +/-c (spec §5.4, a proposal)."""
    return cap * math.tanh(rate / cap)


def basis_rate(params: FundingParameters, premium: float) -> float:
    """The formula's rate per `rate_basis_hours`, before the outer cap."""
    if params.formula == "premium_plus_clamped_interest":
        band = params.interest_band
        if band is None:
            raise ValueError(f"{params.exchange}: premium_plus_clamped_interest needs an interest band")
        return premium + clamp(params.interest_rate - premium, -band, band)
    if params.formula == "premium_minus_interest":
        return premium - params.interest_rate
    if params.formula == "premium_plus_interest":
        return premium + params.interest_rate
    raise ValueError(f"{params.exchange}: formula {params.formula} is not a funding formula")


def period_rate(params: FundingParameters, premium: float) -> float:
    """Rate paid per funding interval before the cap (Hyperliquid and dYdX pay an 8 h rate hourly, at 1/8)."""
    return basis_rate(params, premium) * params.interval_hours / params.rate_basis_hours


def apply_cap(rate: float, cap: float | None, soft: bool) -> tuple[float, bool]:
    """The capped rate, and whether the raw rate exceeded the cap."""
    if cap is None:
        return rate, False
    hit = abs(rate) > cap
    return (soft_cap(rate, cap) if soft else clamp(rate, -cap, cap)), hit
