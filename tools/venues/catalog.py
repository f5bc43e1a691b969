"""Load `venues.json` once, validated, and answer venue and funding-parameter lookups.

The figures live in the data file, never in code: refresh the file (and its `as_of` dates)
when a venue changes a fee, a cap or an interval.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from quantdesk.server.errors import NotFound
from quantdesk.tools.venues.models import (
    Averaging,
    DatedContracts,
    FormulaKind,
    ReferencePrice,
    Sourced,
    VenueDetails,
    VenueFile,
)

DATA_FILE = "venues.json"


@functools.cache
def load_venue_file() -> VenueFile:
    """Read and validate the shipped data file; a broken file fails loudly on first use."""
    text = resources.files("quantdesk.tools.venues").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return VenueFile.model_validate_json(text)


def list_venues() -> list[str]:
    """Known venue ids, sorted."""
    return sorted(load_venue_file().venues)


def get_venue(exchange: str) -> VenueDetails:
    """One venue's details; unknown ids raise `NotFound` naming the known ones."""
    venues = load_venue_file().venues
    key = exchange.strip().lower()
    if key not in venues:
        raise NotFound(f"unknown exchange {exchange!r}; known venues: {', '.join(sorted(venues))}")
    return venues[key]


@dataclass(frozen=True, slots=True)
class FundingParameters:
    """Plain numbers the funding engine works with, plus the caveats that come with them."""

    exchange: str
    model: Literal["perpetual_funding", "basis_carry"]
    formula: FormulaKind
    formula_text: str
    interval_hours: float
    schedule_anchor_utc_hour: int
    rate_basis_hours: float
    interest_rate: float
    interest_band: float | None
    cap_rate: float | None
    cap_basis_hours: float | None
    sample_seconds: float
    averaging: Averaging
    trim_ratio: float
    sample_clamp: float | None
    reference_price: ReferencePrice
    contract_size_base: float | None
    dated_contracts: DatedContracts | None
    caveats: tuple[str, ...]

    @property
    def samples_per_period(self) -> int:
        return round(self.interval_hours * 3600.0 / self.sample_seconds)

    @property
    def cap_per_period(self) -> float | None:
        """The cap restated for the rate actually paid each interval."""
        if self.cap_rate is None or self.cap_basis_hours is None:
            return None
        return self.cap_rate * self.interval_hours / self.cap_basis_hours


def _caveats(fields: dict[str, Sourced[Any] | None]) -> tuple[str, ...]:
    out = []
    for name, figure in fields.items():
        if figure is None or figure.verified:
            continue
        text = f"{name} = {figure.value!r} is {'a proposal' if figure.evidence == 'proposal' else 'unverified'}"
        out.append(f"{text}: {figure.note}" if figure.note else text)
    return tuple(out)


@functools.cache
def funding_parameters(exchange: str) -> FundingParameters:
    """The funding figures of one venue as plain values; unknown ids raise `NotFound`."""
    venue = get_venue(exchange)
    spec = venue.funding
    cap = spec.cap.value
    fields: dict[str, Sourced[Any] | None] = {
        "interval_hours": spec.interval_hours,
        "schedule_anchor_utc_hour": spec.schedule_anchor_utc_hour,
        "formula": spec.formula,
        "rate_basis_hours": spec.rate_basis_hours,
        "interest_rate": spec.interest_rate,
        "interest_band": spec.interest_band,
        "cap": spec.cap,
        "premium_sample_seconds": spec.premium_sample_seconds,
        "premium_averaging": spec.premium_averaging,
        "premium_trim_ratio": spec.premium_trim_ratio,
        "reference_price": spec.reference_price,
    }
    return FundingParameters(
        exchange=venue.exchange,
        model=spec.model,
        formula=spec.formula.value,
        formula_text=spec.formula_text,
        interval_hours=spec.interval_hours.value,
        schedule_anchor_utc_hour=spec.schedule_anchor_utc_hour.value,
        rate_basis_hours=spec.rate_basis_hours.value,
        interest_rate=spec.interest_rate.value,
        interest_band=spec.interest_band.value,
        cap_rate=cap.rate if cap is not None else None,
        cap_basis_hours=cap.basis_hours if cap is not None else None,
        sample_seconds=spec.premium_sample_seconds.value,
        averaging=spec.premium_averaging.value,
        trim_ratio=spec.premium_trim_ratio.value if spec.premium_trim_ratio is not None else 0.0,
        sample_clamp=spec.premium_sample_clamp.value if spec.premium_sample_clamp is not None else None,
        reference_price=spec.reference_price.value,
        contract_size_base=venue.contract_size_base.value,
        dated_contracts=venue.dated_contracts.value if venue.dated_contracts is not None else None,
        caveats=_caveats(fields),
    )
