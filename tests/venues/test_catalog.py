"""The dated venue data file: it loads, every figure is sourced, lookups answer or name the known venues."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from quantdesk.server.errors import NotFound
from quantdesk.tools.funding.models import FundingExchange
from quantdesk.tools.venues.catalog import funding_parameters, get_venue, list_venues, load_venue_file
from quantdesk.tools.venues.models import FundingSpec, Sourced, VenueDetails

# Fields that describe the record itself rather than a venue figure.
PLAIN_FIELDS = {"exchange", "name", "venue_type", "products", "normalize_messages", "model", "formula_text"}
SPEC_VENUES = {"binance", "okx", "bybit", "hyperliquid", "cme", "sgx"}
CANONICAL = {
    "spot": re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$"),
    "perpetual": re.compile(r"^[A-Z0-9]+-[A-Z0-9]+-PERP$"),
    "dated_future": re.compile(r"^[A-Z0-9]+-[A-Z0-9]+-\d{6}$"),
}


def raw_file() -> dict[str, Any]:
    text = resources.files("quantdesk.tools.venues").joinpath("venues.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def figures(model: BaseModel, path: str) -> Iterator[tuple[str, object]]:
    for name in type(model).model_fields:
        if name in PLAIN_FIELDS:
            continue
        value = getattr(model, name)
        if isinstance(value, FundingSpec):
            yield from figures(value, f"{path}.{name}")
        elif isinstance(value, list):
            yield from ((f"{path}.{name}[{i}]", item) for i, item in enumerate(value))
        elif value is not None:
            yield f"{path}.{name}", value


def test_the_data_file_loads_with_every_venue() -> None:
    assert set(list_venues()) == SPEC_VENUES | {"dydx"}
    assert load_venue_file() is load_venue_file()  # parsed once


def test_every_figure_carries_a_source_a_date_and_a_verified_flag() -> None:
    checked = 0
    for exchange in list_venues():
        for path, value in figures(get_venue(exchange), exchange):
            assert isinstance(value, Sourced), path
            assert value.source.strip(), path
            assert value.as_of <= load_venue_file().as_of, path
            checked += 1
    assert checked > 100


def test_every_sourced_object_in_the_raw_file_has_the_provenance_keys() -> None:
    def walk(node: object) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if "value" in node:
                yield node
            for child in node.values():
                yield from walk(child)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child)

    for figure in walk(raw_file()["venues"]):
        assert {"source", "as_of", "evidence", "verified"} <= set(figure)


def test_unverified_figures_and_proposals_are_never_marked_verified() -> None:
    for exchange in list_venues():
        for path, value in figures(get_venue(exchange), exchange):
            assert isinstance(value, Sourced)
            if value.evidence in ("unverified", "proposal"):
                assert not value.verified, path
    with pytest.raises(ValidationError):
        Sourced[float].model_validate(
            {"value": 1.0, "source": "x", "as_of": "2026-01-01", "evidence": "unverified", "verified": True}
        )


def test_the_spec_markers_are_carried_into_the_file() -> None:
    binance = get_venue("binance")
    assert binance.fees.evidence == "unverified" and not binance.fees.verified
    assert binance.funding.cap.evidence == "unverified"
    assert binance.funding.interval_hours.evidence == "doc" and binance.funding.interval_hours.verified
    assert get_venue("hyperliquid").tick_size_usd.evidence == "doc"
    assert get_venue("hyperliquid").funding.cap.value is not None
    sgx = get_venue("sgx")
    assert sgx.funding.cap.evidence == "2nd" and sgx.funding.cap.value is not None
    assert sgx.funding.cap.value.rate == 0.0035
    assert not sgx.funding.interval_hours.verified
    assert not sgx.funding.formula.verified
    assert sgx.trading_hours.evidence == "2nd"
    assert not get_venue("okx").funding.formula.verified  # the spec says: verify
    assert get_venue("cme").funding.model == "basis_carry"


def test_an_unknown_venue_is_not_found_and_the_error_names_the_known_ones() -> None:
    with pytest.raises(NotFound) as caught:
        get_venue("kraken")
    assert caught.value.kind == "not_found"
    for known in list_venues():
        assert known in caught.value.message


def test_venue_ids_are_case_insensitive() -> None:
    assert get_venue(" Binance ").exchange == "binance"


def test_canonical_symbols_follow_the_quantdesk_forms() -> None:
    for exchange in list_venues():
        venue = get_venue(exchange)
        assert venue.symbols
        for figure in venue.symbols:
            symbol = figure.value
            assert CANONICAL[symbol.product].match(symbol.canonical_example), symbol
            assert symbol.product in venue.products


def test_every_funding_exchange_has_venue_data() -> None:
    assert set(get_args(FundingExchange)) == set(list_venues())


def test_venue_funding_parameters_match_the_spec() -> None:
    binance = funding_parameters("binance")
    assert (binance.interval_hours, binance.interest_rate, binance.interest_band) == (8.0, 0.0001, 0.0005)
    assert binance.samples_per_period == 5760 and binance.averaging == "linear_twap"
    assert funding_parameters("bybit").samples_per_period == 480
    hl = funding_parameters("hyperliquid")
    assert (hl.interval_hours, hl.rate_basis_hours, hl.reference_price) == (1.0, 8.0, "oracle")
    assert hl.cap_per_period == 0.04
    assert funding_parameters("okx").cap_per_period == 0.00375
    assert funding_parameters("sgx").caveats  # interval and formula are labelled proposals


def test_the_dydx_cap_is_six_times_the_margin_spread() -> None:
    spec = get_venue("dydx").funding
    assert spec.margin_fractions is not None and spec.cap.value is not None
    margins = spec.margin_fractions.value
    assert spec.cap.value.rate == pytest.approx(6 * (margins.initial - margins.maintenance))
    assert spec.premium_sample_clamp is not None
    assert spec.premium_sample_clamp.value == pytest.approx(60 * (margins.initial - margins.maintenance))


def test_cme_carries_its_expiry_rule_and_contract_units() -> None:
    cme = get_venue("cme")
    assert cme.dated_contracts is not None
    contracts = cme.dated_contracts.value
    assert contracts.expiry_rule == "last_friday_16_00_london"
    assert {p.code: p.unit_base for p in contracts.products} == {"BTC": 5.0, "MBT": 0.1, "BFF": 0.02}
    assert len(contracts.month_codes) == 12


def test_the_caller_fills_in_the_normalize_messages() -> None:
    venue = get_venue("okx")
    assert venue.normalize_messages == []
    filled = venue.model_copy(update={"normalize_messages": ["trades", "books"]})
    assert filled.normalize_messages == ["trades", "books"]
    assert get_venue("okx").normalize_messages == []


def test_the_output_model_round_trips_through_json() -> None:
    for exchange in list_venues():
        venue = get_venue(exchange)
        assert VenueDetails.model_validate_json(venue.model_dump_json()) == venue
    VenueDetails.model_json_schema(mode="serialization")
