"""Canonical event dicts to Arrow tables in EVENT_SCHEMA, and the small helpers the columnar lane shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantdesk.schemas.events import EVENT_SCHEMA

_DICTIONARY_COLUMNS = frozenset(f.name for f in EVENT_SCHEMA if pa.types.is_dictionary(f.type))


TRADE_COLUMNS = frozenset(("event_type", "exchange", "symbol", "raw_symbol", "timestamp_ms", "capture_time_ms",
                           "side", "price", "size", "trade_id", "notional_usd", "seq_first", "seq_last", "seq_prev"))
BOOK_COLUMNS = frozenset(name for name in EVENT_SCHEMA.names if name not in TRADE_COLUMNS) | frozenset(
    ("event_type", "exchange", "symbol", "raw_symbol", "timestamp_ms", "capture_time_ms", "seq_first", "seq_last",
     "seq_prev"))


def events_to_table(events: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A table in EVENT_SCHEMA; trade rows leave book columns null and book rows leave trade columns null."""
    trades = [e for e in events if e.get("event_type") == "trade"]
    if len(trades) == len(events):
        return _typed_table(trades, TRADE_COLUMNS)
    if not trades:
        return _typed_table(events, BOOK_COLUMNS)
    books = [e for e in events if e.get("event_type") != "trade"]
    is_trade = np.fromiter((e.get("event_type") == "trade" for e in events), bool, len(events))
    order = np.concatenate([np.flatnonzero(is_trade), np.flatnonzero(~is_trade)])
    table = pa.concat_tables([_typed_table(trades, TRADE_COLUMNS), _typed_table(books, BOOK_COLUMNS)])
    return table.unify_dictionaries().combine_chunks().take(pa.array(np.argsort(order, kind="stable")))


def _typed_table(events: Sequence[Mapping[str, Any]], names: frozenset[str]) -> pa.Table:
    """Only `names` are read from the events (the other columns of their type are always null)."""
    n = len(events)
    columns = []
    for f in EVENT_SCHEMA:
        if f.name not in names:
            columns.append(pa.nulls(n, f.type))
            continue
        try:
            values = list(map(itemgetter(f.name), events))  # every builder sets every key of its type
        except KeyError:
            values = [e.get(f.name) for e in events]
        if f.name in _DICTIONARY_COLUMNS:
            columns.append(pc.dictionary_encode(pa.array(values, pa.string())))
        else:
            columns.append(pa.array(values, f.type))
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def constant_dictionary(value: str, n: int) -> pa.DictionaryArray:
    """A dictionary column holding `value` n times."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string()))


def empty_table() -> pa.Table:
    return EVENT_SCHEMA.empty_table()


def merge_in_order(parts: list[tuple[pa.Table, np.ndarray]]) -> pa.Table:
    """Concatenate tables whose rows carry order keys and sort rows by key (stable)."""
    parts = [(t, k) for t, k in parts if t.num_rows]
    if not parts:
        return empty_table()
    if len(parts) == 1:
        return parts[0][0]
    table = pa.concat_tables([t for t, _ in parts]).unify_dictionaries().combine_chunks()
    keys = np.concatenate([k for _, k in parts])
    order = np.argsort(keys, kind="stable")
    return table.take(pa.array(order))
