"""The columnar lane for binance trade lines gives exactly what the per-message path gives."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.tools.normalize import Normalizer, events_to_table
from quantdesk.tools.normalize.binance import BinanceParser
from quantdesk.tools.normalize.binance_columnar import read_parts, run_lane
from quantdesk.tools.normalize.parser import Options

T0 = 1_700_000_000_000
GOOD = st.sampled_from(["1", "0.5", "43000.10", "7e2", ".5", "+3"])
DECIMALS = st.one_of(GOOD, GOOD, GOOD, st.sampled_from(["0", "-1", "nan", "inf", "1e400", "1e-400", "1_0", " 2", "abc",
                                                        ""]))


@st.composite
def trade_message(draw: st.DrawFn) -> dict[str, Any]:
    agg = draw(st.booleans())
    message: dict[str, Any] = {
        "e": "aggTrade" if agg else "trade", "E": T0,
        "s": draw(st.sampled_from(["BTCUSDT", "BTCUSDT", "ETHUSDT", "ETHBTC", "XYZ", "", "BTCUSDT_250627",
                                   "BTCUSD_PERP"])),
        "T": draw(st.sampled_from([T0, T0, T0 * 1000, T0 * 1_000_000, 0, -5]) | st.integers(1, 2**63 - 1)),
        "p": draw(DECIMALS), "q": draw(DECIMALS), "m": draw(st.booleans()),
        "a" if agg else "t": draw(st.integers(-2, 30)),
    }
    if agg:
        for key in ("f", "l"):
            if draw(st.booleans()):
                message[key] = draw(st.integers(-1, 50))
    message.update(draw(st.sampled_from([{"M": True}, {"X": "MARKET"}, {"X": "ADL"}, {}, {"M": None}, {"X": None},
                                         {"M": True, "X": "NA"}])))
    roll = draw(st.integers(0, 19))
    if roll == 0:
        del message[draw(st.sampled_from(sorted(message)))]
    elif roll == 1:
        message[draw(st.sampled_from(sorted(message)))] = draw(st.sampled_from([None, 1.5, "x", [1], True, -3]))
    return message


other_message = st.sampled_from([
    {"e": "depthUpdate", "E": T0, "s": "BTCUSDT", "U": 1, "u": 2, "b": [["1", "1"]], "a": []},
    {"lastUpdateId": 0, "bids": [["1", "1"]], "asks": [["2", "1"]]},
    {"stream": "btcusdt@trade", "data": {"e": "trade", "E": T0, "s": "BTCUSDT", "t": 9, "p": "1", "q": "1", "T": T0,
                                         "m": True, "M": True}},
    {"u": 5, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"},
    {"e": "markPriceUpdate", "E": T0, "s": "BTCUSDT", "p": "1"},
])


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()
             if k not in ("timestamp_ms", "capture_time_ms") or r["event_type"] == "trade"} for r in rows]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(trade_message(), min_size=1, max_size=30) | st.lists(trade_message() | other_message,
                                                                              min_size=1, max_size=30),
       market=st.sampled_from([None, "spot", "usdm"]), symbol=st.sampled_from([None, "BTCUSDT", "BTC-USDT-PERP"]))
def test_the_columnar_lane_matches_the_per_message_path(messages: list[dict[str, Any]], market: str | None,
                                                         symbol: str | None) -> None:
    lines = [json.dumps(m, separators=(",", ":")).encode() for m in messages]
    expected = Normalizer("binance", symbol, market=market).normalize(lines)
    session = Normalizer("binance", symbol, market=market).arrow_session()
    chunks = [session.feed(lines[:10], 0), session.feed(lines[10:], 10), session.close()]
    table = pa.concat_tables([c.table for c in chunks]).unify_dictionaries()
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=True)
    assert comparable(table.to_pylist()) == comparable(events_to_table(expected.events).to_pylist())
    got = sorted((r.index, r.kind) for c in chunks for r in c.rejections)
    assert got == sorted((r.index, r.kind) for r in expected.rejections)
    assert session.summary().counts == expected.counts


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages=st.lists(trade_message(), min_size=130, max_size=160),
       bad=st.lists(st.tuples(st.integers(0, 159), st.sampled_from([b"{bad", b'{"e":"trade","T":"x"}', b"[1]",
                                                                   b'{"e":"trade"}{"e":"trade"}'])), max_size=4))
def test_bad_lines_in_large_chunks_leave_the_lane_in_step(messages: list[dict[str, Any]],
                                                          bad: list[tuple[int, bytes]]) -> None:
    lines = [json.dumps(m, separators=(",", ":")).encode() for m in messages]
    for position, text in bad:
        lines[position % len(lines)] = text
    expected = Normalizer("binance").normalize(lines)
    session = Normalizer("binance").arrow_session()
    chunks = [session.feed(lines), session.close()]
    table = pa.concat_tables([c.table for c in chunks]).unify_dictionaries()
    assert comparable(table.to_pylist()) == comparable(events_to_table(expected.events).to_pylist())
    assert sorted((r.index, r.kind) for c in chunks for r in c.rejections) == sorted(
        (r.index, r.kind) for r in expected.rejections)


def test_plain_trade_lines_take_the_columnar_lane() -> None:
    lines = [json.dumps({"e": "trade", "E": T0, "s": "BTCUSDT", "t": i, "p": "1.5", "q": "2", "T": T0 + i,
                         "m": i % 2 == 0, "M": True}).encode() for i in range(100)]
    [(table, lo, hi)] = read_parts(lines)
    assert table is not None and (lo, hi) == (0, 100)
    lane = run_lane(BinanceParser(Options()), table, np.arange(100))
    assert lane.taken.all() and lane.table.num_rows == 100
    assert lane.table.column("side").to_pylist()[:2] == ["sell", "buy"]


def test_lines_the_lane_cannot_read_one_to_one_fall_back_to_the_message_path() -> None:
    trade = {"e": "trade", "E": T0, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": T0, "m": True, "M": True}
    two_on_one_line = json.dumps(trade).encode() + json.dumps(trade | {"t": 2}).encode()
    assert read_parts([two_on_one_line, json.dumps(trade | {"t": 3}).encode()]) == [(None, 0, 2)]
    result = Normalizer("binance").arrow_session().feed([two_on_one_line, json.dumps(trade | {"t": 3}).encode()])
    assert [r.kind for r in result.rejections] == ["malformed_json"] and result.table.num_rows == 1


def test_a_bad_line_in_a_large_chunk_leaves_the_rest_to_the_lane() -> None:
    lines = [json.dumps({"e": "trade", "E": T0, "s": "BTCUSDT", "t": i, "p": "1", "q": "1", "T": T0, "m": True,
                         "M": True}).encode() for i in range(500)]
    lines[321] = b'{"e":"trade","broken'
    parts = read_parts(lines)
    [(lo, hi)] = [(lo, hi) for table, lo, hi in parts if table is None]
    assert lo <= 321 < hi and hi - lo <= 64
    assert sum(hi - lo for _, lo, hi in parts) == 500
    chunk = Normalizer("binance").arrow_session().feed(lines)
    assert [(r.index, r.kind) for r in chunk.rejections] == [(321, "malformed_json")]
    assert chunk.table.num_rows == 499


def test_blank_lines_are_skipped_and_counted() -> None:
    trade = json.dumps({"e": "trade", "E": T0, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": T0, "m": True,
                        "M": True}).encode()
    session = Normalizer("binance").arrow_session()
    chunk = session.feed([trade, b"", b"  \r", trade.replace(b'"t": 1', b'"t": 2')])
    assert (chunk.blank_lines, chunk.table.num_rows, session.summary().counts.inputs) == (2, 2, 2)


def test_wrapped_trades_between_plain_ones_keep_trade_ids_in_input_order() -> None:
    def trade(trade_id: int) -> dict[str, Any]:
        return {"e": "trade", "E": T0, "s": "BTCUSDT", "t": trade_id, "p": "1", "q": "1", "T": T0, "m": True,
                "M": True}
    messages = [trade(5), {"stream": "btcusdt@trade", "data": trade(5)}, {"payload": {"stream": "btcusdt@trade",
                                                                                       "data": trade(6)}}, trade(6)]
    lines = [json.dumps(m).encode() for m in messages]
    chunk = Normalizer("binance").arrow_session().feed(lines)
    assert [(r.index, r.kind) for r in chunk.rejections] == [(1, "stale"), (3, "stale")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("blank", [False, True])
def test_a_file_block_gives_the_same_result_as_its_lines(newline: bytes, blank: bool) -> None:
    lines = [json.dumps({"e": "trade", "E": T0, "s": "BTCUSDT", "t": i, "p": "1", "q": "1", "T": T0, "m": True,
                         "M": True}).encode() for i in range(200)]
    lines[50] = b"{broken"
    if blank:
        lines[120] = b""
    block = newline.join(lines)
    by_lines = Normalizer("binance").arrow_session().feed(block.split(b"\n"))
    by_block, count = Normalizer("binance").arrow_session().feed_block(block)
    assert count == 200
    assert by_block.table.equals(by_lines.table)
    assert by_block.rejections == by_lines.rejections and by_block.blank_lines == by_lines.blank_lines == int(blank)
