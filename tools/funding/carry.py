"""CME has no funding: a labelled basis-and-carry model (spec §5.1, convention: a proposal).

The basis b_t = (F - S)/S is y_t x (time left / time left at the start), with y the OU premium
process, so b reaches 0 at expiry (F converges to spot). The annualized carry is
b_t x 365 / days left = y_t x 365 / days left at the start; a period accrues
carry x period / 365 d, which a long pays on the spot price as F rolls down to S.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantdesk.tools.funding.models import HOURS_PER_YEAR, FundingPeriod, FundingRegimeRequest
from quantdesk.tools.funding.premium import PremiumProcess, clip_premium
from quantdesk.tools.funding.schedule import DAY_MS, HOUR_MS, contract_symbols, first_expiry_at_or_after
from quantdesk.tools.venues.catalog import FundingParameters


@dataclass(frozen=True, slots=True)
class Contract:
    """The dated contract a carry run is priced against."""

    expiry_ts_ms: int
    contract_symbol: str | None
    canonical_symbol: str | None


def choose_contract(request: FundingRegimeRequest, params: FundingParameters, first_start: int) -> Contract:
    """The given days_to_expiry, else the first monthly expiry at or after the end of the horizon."""
    if request.days_to_expiry is not None:
        return Contract(first_start + round(request.days_to_expiry * DAY_MS), None, None)
    horizon_end = first_start + request.num_periods * round(params.interval_hours * HOUR_MS)
    expiry = first_expiry_at_or_after(horizon_end)
    contracts = params.dated_contracts
    if contracts is None or contracts.expiry_rule != "last_friday_16_00_london":
        raise ValueError(f"{params.exchange}: the venue data has no supported expiry rule")
    raw, canonical = contract_symbols(expiry, contracts.products[0].code, contracts.month_codes)
    return Contract(expiry.ts_ms, raw, canonical)


def carry_periods(
    request: FundingRegimeRequest, params: FundingParameters, process: PremiumProcess, first_start: int, expiry_ms: int
) -> list[FundingPeriod]:
    interval_ms = round(params.interval_hours * HOUR_MS)
    per_year = HOURS_PER_YEAR / params.interval_hours
    n = params.samples_per_period
    step_ms = params.sample_seconds * 1000.0
    life_ms = float(expiry_ms - first_start)
    spot = request.spot_price
    periods: list[FundingPeriod] = []
    cumulative = 0.0
    for index in range(request.num_periods):
        start = first_start + index * interval_ms
        y = clip_premium(process.advance(n))
        remaining = (expiry_ms - (start + step_ms * np.arange(1, n + 1))) / life_ms
        basis = y * remaining
        accrual = float(y.mean()) * interval_ms / life_ms
        payment = -request.position_size * spot * accrual
        cumulative += payment
        periods.append(FundingPeriod.from_rates(
            index=index, start_ts_ms=start, interval_ms=interval_ms, premium=float(basis.mean()), raw_rate=accrual,
            rate=accrual, periods_per_year=per_year, cap_hit=False, perp_price=spot + spot * float(basis[-1]),
            index_price=spot, reference_price=spot, payment=payment, cumulative_payment=cumulative,
        ))
    return periods
