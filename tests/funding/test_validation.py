"""Bad inputs fail with errors that name the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from quantdesk.server.errors import InvalidArgument, NotFound
from quantdesk.tools.funding.models import MAX_PERIODS, FundingRegimeRequest, FundingRegimeResult
from quantdesk.tools.venues.catalog import funding_parameters

Simulate = Callable[..., FundingRegimeResult]
VALID: dict[str, Any] = {"exchange": "binance", "spot_price": 50_000.0, "mark_price": 50_050.0}


def error_fields(arguments: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        FundingRegimeRequest.model_validate(arguments)
    assert isinstance(caught.value, ValueError)
    return {str(error["loc"][0]) for error in caught.value.errors()}


def test_the_aleatoric_request_body_is_a_valid_request() -> None:
    body = {"exchange": "binance", "spot_price": 50000.0, "mark_price": 50050.0, "position_size": 1.0,
            "num_periods": 10, "use_soft_cap": True, "seed": 42}
    schema = FundingRegimeRequest.model_json_schema(mode="validation")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(body)) == []
    assert FundingRegimeRequest.model_validate(body).use_soft_cap is True


@pytest.mark.parametrize("field", ["spot_price", "mark_price"])
@pytest.mark.parametrize("value", [-50_000.0, 0.0, float("nan"), float("inf")])
def test_prices_must_be_positive_and_finite(field: str, value: float) -> None:
    assert error_fields({**VALID, field: value}) == {field}


@pytest.mark.parametrize("value", [0, -1, MAX_PERIODS + 1])
def test_num_periods_out_of_bounds_is_refused(value: int) -> None:
    assert error_fields({**VALID, "num_periods": value}) == {"num_periods"}


def test_an_unknown_exchange_is_refused() -> None:
    assert error_fields({**VALID, "exchange": "kraken"}) == {"exchange"}
    schema = FundingRegimeRequest.model_json_schema(mode="validation")
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors({**VALID, "exchange": "kraken"}))
    assert [list(e.absolute_path) for e in errors] == [["exchange"]]


def test_the_venue_lookup_behind_the_engine_raises_not_found_for_unknown_venues() -> None:
    with pytest.raises(NotFound):
        funding_parameters("kraken")


def test_unknown_fields_are_refused() -> None:
    assert error_fields({**VALID, "leverage": 10}) == {"leverage"}


def test_negative_volatility_is_refused() -> None:
    assert error_fields({**VALID, "premium_volatility_bps": -1.0}) == {"premium_volatility_bps"}


def test_a_mark_far_from_spot_is_refused_as_a_units_mistake(simulate: Simulate) -> None:
    with pytest.raises(InvalidArgument) as caught:
        simulate("binance", mark_price=120_000.0)
    assert [p.path for p in caught.value.problems] == ["$.mark_price"]


def test_days_to_expiry_is_refused_on_a_perpetual_venue(simulate: Simulate) -> None:
    with pytest.raises(InvalidArgument) as caught:
        simulate("okx", days_to_expiry=30.0)
    assert [p.path for p in caught.value.problems] == ["$.days_to_expiry"]


def test_cme_periods_past_the_given_expiry_are_refused(simulate: Simulate) -> None:
    with pytest.raises(InvalidArgument) as caught:
        simulate("cme", days_to_expiry=2.0, num_periods=3)
    assert [p.path for p in caught.value.problems] == ["$.num_periods"]
