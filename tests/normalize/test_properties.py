"""Properties: no input crashes a normalizer or disappears without a report, and emitted events always validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.schemas.events import EVENT_SCHEMA, BookEvent, TradeEvent
from quantdesk.tools.normalize import SOURCES, Normalizer, NormalizeResult, events_to_table

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_OF = {"binance": "binance_spot", "okx": "okx", "bybit": "bybit", "hyperliquid": "hyperliquid", "cme": "cme",
              "sgx": "sgx", "synthetic": "synthetic"}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats()
           | st.text(max_size=12) | st.sampled_from(["0", "1", "-1", "nan", "1e400", "BTCUSDT", "snapshot", "update",
                                                     "trade", "B", "Buy", "0.5"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=16)


def payloads_of(source: str) -> list[Any]:
    lines = (FIXTURES / f"{FIXTURE_OF[source]}.jsonl").read_text().splitlines()
    return [json.loads(line)["payload"] for line in lines if line.strip()]


def check(result: NormalizeResult, inputs: int) -> None:
    counts = result.counts
    assert counts.inputs == inputs
    assert counts.pending == 0
    assert counts.accepted + counts.rejected + counts.non_event == inputs
    reported = set(result.event_index) | {r.index for r in result.rejections} | {n.index for n in result.non_events}
    assert reported == set(range(inputs))
    for event in result.events:
        (TradeEvent if event["event_type"] == "trade" else BookEvent).model_validate(event)
    assert events_to_table(result.events).schema.equals(EVENT_SCHEMA, check_metadata=True)


@st.composite
def mutated(draw: st.DrawFn, source: str) -> list[Any]:
    """Fixture messages, some with one field deleted, replaced or re-typed somewhere inside them."""
    messages = payloads_of(source)
    picked = draw(st.lists(st.sampled_from(messages), min_size=1, max_size=8))
    out = []
    for message in picked:
        message = orjson.loads(orjson.dumps(message))  # a deep copy
        if draw(st.booleans()):
            out.append(_mutate(draw, message))
        else:
            out.append(message)
    return out


def _mutate(draw: st.DrawFn, message: Any) -> Any:
    if not isinstance(message, dict | list) or not message:
        return draw(json_values)
    holder: Any = message
    while True:
        key: Any = draw(st.sampled_from(sorted(holder))) if isinstance(holder, dict) else draw(
            st.integers(0, len(holder) - 1))
        child = holder[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            holder = child
            continue
        action = draw(st.sampled_from(["delete", "replace", "stringify", "negate"]))
        if action == "delete":
            del holder[key]
        elif action == "replace":
            holder[key] = draw(json_values)
        elif action == "stringify":
            holder[key] = str(child)
        elif isinstance(child, int | float) and not isinstance(child, bool):
            holder[key] = -child - 1
        else:
            holder[key] = draw(json_values)
        return message


@SETTINGS
@given(source=st.sampled_from(sorted(SOURCES)), payloads=st.lists(json_values, max_size=12))
def test_arbitrary_json_never_crashes_and_every_input_is_accounted_for(source: str, payloads: list[Any]) -> None:
    check(Normalizer(source).normalize(payloads), len(payloads))


@SETTINGS
@given(source=st.sampled_from(sorted(SOURCES)), lines=st.lists(st.binary(max_size=40) | st.text(max_size=40),
                                                               max_size=12))
def test_arbitrary_bytes_and_text_never_crash(source: str, lines: list[bytes | str]) -> None:
    check(Normalizer(source).normalize(lines), len(lines))


@SETTINGS
@given(data=st.data(), source=st.sampled_from(sorted(SOURCES)))
def test_mutated_valid_messages_never_crash_or_vanish(data: st.DataObject, source: str) -> None:
    payloads = data.draw(mutated(source))
    symbol = "BTCUSDT" if source == "binance" else None
    check(Normalizer(source, symbol).normalize(payloads), len(payloads))


@SETTINGS
@given(data=st.data(), source=st.sampled_from(sorted(SOURCES)))
def test_mutated_messages_as_lines_give_balanced_arrow_output(data: st.DataObject, source: str) -> None:
    payloads = data.draw(mutated(source))
    session = Normalizer(source, "BTCUSDT" if source == "binance" else None).arrow_session()
    chunk = session.feed([json.dumps(p).encode() for p in payloads])  # stdlib: big ints too
    tail = session.close()
    counts = session.summary().counts
    assert counts.accepted + counts.rejected + counts.non_event + session.blank_lines == len(payloads)
    assert counts.pending == 0
    table = pa.concat_tables([chunk.table, tail.table])
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=True)
    assert table.num_rows == counts.events
