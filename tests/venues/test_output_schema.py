"""get_venue_details advertises a compact output schema that still validates every venue, and strictly."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from quantdesk.server.mcp_binding import wire_output_schema
from quantdesk.tools.normalize import SOURCES, accepted_messages
from quantdesk.tools.venues.catalog import get_venue, list_venues
from quantdesk.tools.venues.tools import tools

pytestmark = pytest.mark.anyio


def output_schema() -> dict[str, Any]:
    return next(e for e in tools.entries if e.name == "get_venue_details").output_schema


def venue_json(exchange: str) -> dict[str, Any]:
    venue = get_venue(exchange)
    messages = accepted_messages(exchange) if exchange in SOURCES else []
    data: dict[str, Any] = venue.model_copy(update={"normalize_messages": messages}).model_dump(mode="json")
    return data


def test_the_output_schema_is_a_few_kilobytes() -> None:
    # pydantic's own schema of the same model is about 26 KB
    assert len(json.dumps(output_schema(), separators=(",", ":"))) < 6_500


@pytest.mark.parametrize("exchange", list_venues())
def test_every_venue_validates_against_the_advertised_schema(exchange: str) -> None:
    jsonschema.Draft202012Validator(output_schema()).validate(venue_json(exchange))


@pytest.mark.parametrize(("field", "broken"), [
    ("tick_size_usd", lambda f: {**f, "value": "0.1"}),
    ("lot_size_base", lambda f: {k: v for k, v in f.items() if k != "source"}),
    ("fees", lambda f: {**f, "evidence": "rumour"}),
    ("max_leverage", lambda f: {**f, "extra": 1}),
])
def test_top_level_figures_are_still_checked_strictly(field: str, broken: Any) -> None:
    data = venue_json("binance")
    data[field] = broken(data[field])
    assert not jsonschema.Draft202012Validator(output_schema()).is_valid(data)


def test_nested_detail_still_names_its_keys_and_types() -> None:
    defs = output_schema()["$defs"]
    assert "perp_taker_bps: number|null" in defs["Fees"]["description"]
    assert "interval_hours: Figure[number]" in defs["FundingSpec"]["description"]
    figure = defs["Figure"]
    assert set(figure["required"]) == {"value", "source", "as_of", "evidence", "verified"}


async def test_the_official_client_accepts_the_result_against_the_schema(server: Any, open_mcp: Any) -> None:
    async with open_mcp("http-modern", server) as client:
        listed, cursor = {}, None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed |= {t.name: t for t in page.tools}
            if (cursor := page.next_cursor) is None:
                break
        # tools/list carries the schema with nested fields' descriptions left out (see wire_output_schema)
        assert listed["get_venue_details"].output_schema == wire_output_schema(output_schema())
        for exchange in ("binance", "cme"):
            result = await client.call_tool("get_venue_details", {"exchange": exchange})
            assert not result.is_error and result.structured_content["exchange"] == exchange
