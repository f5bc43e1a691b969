"""Every venue fixture, line by line: each input ends in its documented outcome and nothing is lost."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pytest

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.tools.normalize import Counts, Normalizer, NormalizeResult, events_to_table

# fixture file -> (source, default symbol)
SOURCES = {
    "binance_spot": ("binance", "BTCUSDT"),
    "binance_usdm": ("binance", "BTC-USDT-PERP"),
    "binance_coinm": ("binance", None),
    "okx": ("okx", None),
    "okx_swaps": ("okx", None),
    "bybit": ("bybit", None),
    "bybit_spot": ("bybit", None),
    "hyperliquid": ("hyperliquid", None),
    "cme": ("cme", None),
    "sgx": ("sgx", None),
    "synthetic": ("synthetic", None),
}

Rows = Callable[[str], list[dict[str, Any]]]


def run(name: str, rows: list[dict[str, Any]]) -> NormalizeResult:
    source, symbol = SOURCES[name]
    return Normalizer(source, symbol).normalize([row["payload"] for row in rows])


@pytest.mark.parametrize("name", SOURCES)
def test_every_fixture_line_ends_in_its_expected_outcome(name: str, fixture_rows: Rows,
                                                         outcomes: Callable[[NormalizeResult], dict[int, str]]) -> None:
    rows = fixture_rows(name)
    got = outcomes(run(name, rows))
    assert {i: got.get(i) for i in range(len(rows))} == {i: row["expect"] for i, row in enumerate(rows)}


@pytest.mark.parametrize("name", SOURCES)
def test_counts_account_for_every_input(name: str, fixture_rows: Rows, is_balanced: Callable[[Counts], bool]) -> None:
    rows = fixture_rows(name)
    counts = run(name, rows).counts
    assert counts.inputs == len(rows)
    assert counts.pending == 0
    assert is_balanced(counts)
    assert counts.rejected == sum(counts.rejected_by_kind.values())
    assert counts.non_event == sum(counts.non_event_by_kind.values())
    assert counts.events == counts.trade_events + counts.book_events


@pytest.mark.parametrize("name", SOURCES)
def test_every_emitted_event_validates_against_the_models(name: str, fixture_rows: Rows,
                                                          valid_events: Callable[[Any], None]) -> None:
    result = run(name, fixture_rows(name))
    assert result.events
    valid_events(result.events)


@pytest.mark.parametrize("name", SOURCES)
def test_events_convert_to_arrow_in_the_event_schema(name: str, fixture_rows: Rows) -> None:
    result = run(name, fixture_rows(name))
    table = events_to_table(result.events)
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=True)
    assert table.num_rows == len(result.events)
    assert _comparable(table.to_pylist()) == _comparable([_nulls(e) for e in result.events])


@pytest.mark.parametrize("name", SOURCES)
def test_events_serialize_to_json_for_streams(name: str, fixture_rows: Rows) -> None:
    result = run(name, fixture_rows(name))
    assert orjson.loads(orjson.dumps(result.as_dict()))["counts"]["inputs"] == len(fixture_rows(name))


@pytest.mark.parametrize("name", SOURCES)
def test_raw_json_lines_give_the_same_result_as_decoded_payloads(name: str, fixture_rows: Rows) -> None:
    rows = [row for row in fixture_rows(name) if not isinstance(row["payload"], str)]  # a str payload is JSON text
    source, symbol = SOURCES[name]
    decoded = Normalizer(source, symbol).normalize([row["payload"] for row in rows])
    raw = Normalizer(source, symbol).normalize([orjson.dumps(row["payload"]) for row in rows])
    assert _comparable(_without_wall_clock(raw.events)) == _comparable(_without_wall_clock(decoded.events))
    assert raw.rejections == decoded.rejections


@pytest.mark.parametrize("name", SOURCES)
def test_the_arrow_session_gives_the_same_events_as_normalize(name: str, fixture_rows: Rows) -> None:
    rows = [row for row in fixture_rows(name) if not isinstance(row["payload"], str)]
    source, symbol = SOURCES[name]
    expected = Normalizer(source, symbol).normalize([row["payload"] for row in rows])
    session = Normalizer(source, symbol).arrow_session()
    chunk = session.feed([orjson.dumps(row["payload"]) for row in rows])
    tail = session.close()
    table = pa.concat_tables([chunk.table, tail.table]).unify_dictionaries()
    assert _comparable(_without_wall_clock(table.to_pylist())) == _comparable(
        _without_wall_clock(events_to_table(expected.events).to_pylist()))
    assert sorted(r.index for r in chunk.rejections + tail.rejections) == sorted(r.index for r in expected.rejections)
    assert session.summary().counts == expected.counts


def _nulls(event: dict[str, Any]) -> dict[str, Any]:
    return {name: event.get(name) for name in EVENT_SCHEMA.names}


def _comparable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN (the notional of a non-USD quote) never equals itself: compare it as text."""
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in e.items()} for e in events]


def _without_wall_clock(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without an exchange time are stamped with the wall clock; compare the rest."""
    return [{k: v for k, v in e.items() if k not in ("timestamp_ms", "capture_time_ms")} for e in events]
