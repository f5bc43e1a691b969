"""The columnar lane for binance `trade` and `aggTrade` lines: typed decoding straight to Arrow columns.

Per-message Python costs more than parsing (float() of a decimal string alone is about a third of an
orjson.loads here), so each line is decoded by msgspec into a small typed struct (in C, with no dict),
the structs become Arrow columns, and the trade rules of `BinanceParser._any_trade` are applied with
vectorized kernels, in the same order and with the same outcomes. Rows the lane cannot take (other
messages, nulls, values that fail a check, unknown symbols) go back to the per-message path, which
reports them.

The lane only reads ASCII chunks without backslash escapes, where msgspec and orjson provably read the
same text; other chunks take the per-message path. Parts are handled in input order, and inside a part
only trades that both paths reject can go to the per-message path, so trade ids are checked in input
order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Annotated, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.tools.normalize.arrow import constant_dictionary
from quantdesk.tools.normalize.binance import EXCHANGES, OFF_BOOK, BinanceParser, late_trade
from quantdesk.tools.normalize.outcomes import MessageError, Rejection
from quantdesk.tools.normalize.symbols import binance_symbol

_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Line(msgspec.Struct, gc=False):
    """The fields of a binance trade or aggTrade line that the lane reads; absent fields are None.

    A line of another event type, or whose fields have other JSON types (a string timestamp), does not
    decode, and takes the per-message path, which reports it as that path would. Prices and sizes are
    decimal strings on the wire; msgspec's lax mode turns them into floats in C, and a string it cannot
    read fails the line (per-message path, where float() decides). A string both can read gets the
    same correctly rounded float.
    """

    e: Literal["trade", "aggTrade"]
    s: str | None = None
    T: _INT64 | None = None
    t: _INT64 | None = None
    p: float | None = None
    q: float | None = None
    m: bool | None = None
    M: bool | None = None
    X: str | None = None
    a: _INT64 | None = None
    f: _INT64 | None = None
    l: _INT64 | None = None  # noqa: E741 (binance's name for the last trade id)


class _Undecoded:
    """Stands for a line that did not decode: every field null, so its row takes the per-message path."""

    __slots__ = ()
    e = s = T = t = p = q = m = M = X = a = f = l = None  # noqa: E741


_DECODE = msgspec.json.Decoder(_Line, strict=False).decode
_UNDECODED = _Undecoded()
_NUMPY = {"T": np.int64, "t": np.int64, "p": np.float64, "q": np.float64}
_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("e", pa.string()), ("s", pa.string()), ("T", pa.int64()), ("t", pa.int64()), ("p", pa.float64()),
    ("q", pa.float64()), ("m", pa.bool_()), ("M", pa.bool_()), ("X", pa.string()), ("a", pa.int64()),
    ("f", pa.int64()), ("l", pa.int64()),
)
_AGG_ONLY = frozenset({"a", "f", "l"})
_SMALLEST_PART = 32  # shorter runs of lane rows are not worth a lane pass: the per-message path takes them


Part = tuple[pa.Table | None, int, int]


def read_parts(lines: list[bytes], block: bytes | None = None) -> list[Part]:
    """The chunk as consecutive parts (table, lo, hi) covering every line in order; table None: per-message path.

    Each line is decoded into a typed struct (msgspec, in C: no dicts, no per-field Python work); the
    chunk becomes one Arrow table, and runs of trade rows are zero-copy slices of it. Lines must not
    be blank; `block`, if given, is the lines joined by newlines.
    """
    if not lines:
        return []
    whole: list[Part] = [(None, 0, len(lines))]
    # Decoding costs about half a parse: skip chunks that are mostly other messages (depth diffs, tickers).
    sample = lines[:: max(1, len(lines) // 256)]
    if 2 * sum(1 for line in sample if b'"trade"' in line or b'"aggTrade"' in line) < len(sample):
        return whole
    # Escapes and non-ASCII text are where two JSON parsers could read different strings: keep the lane
    # to text on which msgspec and orjson provably agree.
    if block is None:
        block = b"\n".join(lines)
    if not block.isascii() or b"\\" in block:
        return whole
    try:
        rows: list[_Line | _Undecoded] = list(map(_DECODE, lines))
    except (msgspec.DecodeError, msgspec.ValidationError):
        rows = [_decode_or_undecoded(line) for line in lines]
    else:
        return [(_table(rows, block, all_decoded=True), 0, len(lines))]
    table = _table(rows, block, all_decoded=False)
    lane = np.fromiter((row is not _UNDECODED for row in rows), bool, len(rows))
    parts: list[Part] = []
    edges = np.flatnonzero(np.diff(lane.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(lines)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if lane[lo] and hi - lo >= _SMALLEST_PART:
            parts.append((table.slice(lo, hi - lo), lo, hi))
        elif parts and parts[-1][0] is None:
            parts[-1] = (None, parts[-1][1], hi)
        else:
            parts.append((None, lo, hi))
    return parts


def _decode_or_undecoded(line: bytes) -> _Line | _Undecoded:
    try:
        return _DECODE(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _UNDECODED  # its `e` is null: the row takes the per-message path


def _table(rows: list[_Line | _Undecoded], block: bytes, *, all_decoded: bool) -> pa.Table:
    """The decoded rows as columns, built per attribute (a map of attrgetter beats transposing tuples).

    Numbers go through numpy.fromiter, which refuses a None (the column then takes the null-aware
    path; bools never do, as fromiter would read None as False). Columns no row can hold are built
    without a pass over the rows: a one-byte search runs at memchr speed, a multi-byte one 50 times
    slower, so `X` needs an `X` somewhere in the text, and `a`, `f`, `l` and a varying `e` need the
    `g` of aggTrade.
    """
    n = len(rows)
    may_agg = b"g" in block
    built: list[pa.Array] = []
    for name, kind in _COLUMNS:
        if (name == "X" and b"X" not in block) or (name in _AGG_ONLY and not may_agg):
            built.append(pa.nulls(n, kind))
        elif name == "e" and not may_agg and all_decoded:
            built.append(pa.repeat("trade", n))
        elif name in _NUMPY:
            try:
                built.append(pa.array(np.fromiter(map(attrgetter(name), rows), _NUMPY[name], n)))
            except TypeError:
                built.append(pa.array(list(map(attrgetter(name), rows)), kind))
        else:
            built.append(pa.array(list(map(attrgetter(name), rows)), kind))
    return pa.table(built, names=[name for name, _ in _COLUMNS])


@dataclass(slots=True)
class LaneResult:
    """What the lane did with the rows of a chunk (all arrays are by row)."""

    table: pa.Table  # emitted trade events, EVENT_SCHEMA
    event_keys: np.ndarray  # input index of each emitted event
    taken: np.ndarray  # bool: the lane decided this row (emitted, rejected or off-book)
    rejections: list[Rejection] = field(default_factory=list)
    off_book: int = 0
    trade_ids: dict[tuple[str, str, str], int] = field(default_factory=dict)  # commit to the parser if used


def run_lane(parser: BinanceParser, table: pa.Table, indices: np.ndarray) -> LaneResult:
    """Apply the trade rules to the rows of `table` (row i is input `indices[i]`).

    Strings stay in Arrow dictionaries: per-row Python objects would cost more than the parse.
    """
    n = table.num_rows
    e = table.column("e")
    is_trade = _equals(e, "trade")
    is_agg = _equals(e, "aggTrade") if "a" in table.column_names else np.zeros(n, bool)
    valid = (is_trade | is_agg) & _valid(table, "s", "T", "p", "q", "m")
    if not valid.any():
        return _nothing(n)
    ids = np.where(is_agg, _ints(table, "a"), _ints(table, "t")) if is_agg.any() else _ints(table, "t")
    valid &= ~is_trade | _valid(table, "t")
    if is_agg.any():
        valid &= ~is_agg | _valid(table, "a")
        for name in ("f", "l"):
            valid &= ~is_agg | ~_valid(table, name) | (_ints(table, name) >= 0)
    raw = pc.dictionary_encode(table.column("s")).combine_chunks()
    raw_codes = np.asarray(raw.indices.fill_null(0).to_numpy(), np.int64)
    raw_values: list[str] = raw.dictionary.to_pylist()
    empty = [k for k, v in enumerate(raw_values) if v == ""]
    times = _ints(table, "T")
    valid &= (times > 0) & (ids >= 0) & ~np.isin(raw_codes, empty)
    prices = _decimals(table.column("p"), valid)
    sizes = _decimals(table.column("q"), valid)
    with np.errstate(invalid="ignore"):
        valid &= np.isfinite(prices) & (prices > 0) & np.isfinite(sizes) & (sizes > 0)
    futures, decided = _markets(parser, table, is_agg, raw_codes, raw_values)
    valid &= decided
    symbol_codes, symbol_values = _symbols(parser, raw_codes, raw_values, futures, valid)
    valid &= symbol_codes >= 0
    off_book = valid & futures & _off_book(table)
    emit, rejections, trade_ids = _dedup(parser, valid & ~off_book, is_agg, futures, symbol_codes, symbol_values,
                                         ids, indices)
    times = np.where(times >= 10**17, times // 1_000_000, np.where(times >= 10**14, times // 1_000, times))
    sellers = np.asarray(pc.fill_null(table.column("m"), False).to_numpy(), bool)
    out = _events(parser, emit, futures, symbol_codes, symbol_values, raw, times, sellers, prices, sizes, ids,
                  is_agg, table)
    return LaneResult(out, indices[emit], valid, rejections, int(off_book.sum()), trade_ids)


def _decimals(column: pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """The floats of `rows` (others read as 1); the decoder already turned the decimal strings into floats."""
    values = np.asarray(pc.fill_null(column, 1.0).to_numpy(), np.float64)
    return np.where(rows, values, 1.0)


def _nothing(n: int) -> LaneResult:
    return LaneResult(EVENT_SCHEMA.empty_table(), np.zeros(0, np.int64), np.zeros(n, bool))


def _equals(column: pa.ChunkedArray, value: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.equal(column, value), False).to_numpy(), bool)


def _valid(table: pa.Table, *names: str) -> np.ndarray:
    mask = np.ones(table.num_rows, bool)
    for name in names:
        mask &= np.asarray(pc.is_valid(table.column(name)).to_numpy(), bool)
    return mask


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(pc.fill_null(table.column(name), 0).to_numpy(), np.int64)


def _markets(parser: BinanceParser, table: pa.Table, is_agg: np.ndarray, raw_codes: np.ndarray,
             raw_values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(futures, decided) per row, by the rule of `BinanceParser.market_of` (`_symbols` checks the symbol's own)."""
    n = table.num_rows
    market = parser.options.market
    if market is not None:
        return np.full(n, market == "usdm"), np.ones(n, bool)
    has_x, has_m = _valid(table, "X"), _valid(table, "M")
    futures = np.where(is_agg, ~has_m, has_x)
    decided = is_agg | has_x | has_m
    if not decided.all():
        try:
            default = parser.market_of(None, None) != "spot"
        except MessageError:
            return futures, decided
        # The default market applies to rows whose symbol is the default symbol (see market_of).
        default_raw = parser.default_raw
        codes = [k for k, v in enumerate(raw_values) if v == default_raw]
        fallback = ~decided & (np.isin(raw_codes, codes) if default_raw is not None else True)
        futures = np.where(fallback, default, futures)
        decided = decided | fallback
    return futures, decided


def _symbols(parser: BinanceParser, raw_codes: np.ndarray, raw_values: list[str], futures: np.ndarray,
             rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Canonical symbol codes per row; -1 sends the row to the per-message path: an unknown symbol (rejected
    there), a symbol whose own market differs from the row's (a delivery contract) or COIN-M (sizes in contracts).
    """
    pair = raw_codes * 2 + futures
    codes = np.full(len(pair), -1, np.int64)
    values: list[str] = []
    for key in _distinct(pair[rows]):
        raw, fut = raw_values[key // 2], bool(key % 2)
        try:
            market = parser.market_of(fut, raw)
            if market != ("usdm" if fut else "spot"):
                continue
            symbol = binance_symbol(raw, market)
        except MessageError:
            continue
        if symbol not in values:
            values.append(symbol)
        codes[pair == key] = values.index(symbol)
    return codes, values


def _distinct(keys: np.ndarray) -> list[int]:
    """Distinct values; most chunks hold one symbol, which a min/max check finds without hashing."""
    if not keys.size:
        return []
    low, high = int(keys.min()), int(keys.max())
    return [low] if low == high else np.unique(keys).tolist()


def _off_book(table: pa.Table) -> np.ndarray:
    x = pc.dictionary_encode(table.column("X")).combine_chunks()
    off = [k for k, v in enumerate(x.dictionary.to_pylist()) if v in OFF_BOOK]
    if not off:
        return np.zeros(table.num_rows, bool)
    return np.isin(np.asarray(x.indices.fill_null(-1).to_numpy(), np.int64), off)


def _dedup(parser: BinanceParser, rows: np.ndarray, is_agg: np.ndarray, futures: np.ndarray, symbol_codes: np.ndarray,
           symbol_values: list[str], ids: np.ndarray,
           indices: np.ndarray) -> tuple[np.ndarray, list[Rejection], dict[tuple[str, str, str], int]]:
    """Rows to emit; ids at or below the running maximum per (exchange, symbol, stream) are rejected."""
    emit = rows.copy()
    rejections: list[Rejection] = []
    updates: dict[tuple[str, str, str], int] = {}
    known = parser.last_trade_ids
    group_keys = symbol_codes * 4 + futures * 2 + is_agg
    for gk in _distinct(group_keys[rows]):
        sym, fut, agg = symbol_values[gk // 4], bool(gk // 2 % 2), bool(gk % 2)
        key = (EXCHANGES["usdm" if fut else "spot"], sym, "aggTrade" if agg else "trade")
        group = np.flatnonzero(rows & (group_keys == gk))
        group_ids = ids[group]
        start = known.get(key, -1)
        before = np.maximum.accumulate(np.concatenate(([start], group_ids[:-1])))
        late = group_ids <= before
        if late.any():
            emit[group[late]] = False
            for row, tid, prev in zip(group[late].tolist(), group_ids[late].tolist(), before[late].tolist(),
                                      strict=True):
                rejections.append(Rejection(int(indices[row]), "stale", late_trade(tid, prev)))
        updates[key] = max(start, int(group_ids.max()))
    rejections.sort(key=lambda r: r.index)
    return emit, rejections, updates


def _events(parser: BinanceParser, emit: np.ndarray, futures: np.ndarray, symbol_codes: np.ndarray,
            symbol_values: list[str], raw: pa.DictionaryArray, times: np.ndarray, sellers: np.ndarray,
            prices: np.ndarray, sizes: np.ndarray, ids: np.ndarray, is_agg: np.ndarray, table: pa.Table) -> pa.Table:
    n = int(emit.sum())
    if n == 0:
        return EVENT_SCHEMA.empty_table()
    take = np.flatnonzero(emit)
    rows = pa.array(take)
    px, qty = prices[take], sizes[take]
    codes = symbol_codes[take]
    rates = np.asarray([parser.usd_rate(s) for s in symbol_values], np.float64)[codes]
    fut = futures[take]
    ts = pa.array(times[take])
    agg = is_agg[take]
    first = last = pa.nulls(n, pa.int64())
    if agg.any():
        mask = pa.array(agg)
        first = pc.if_else(mask, table.column("f").take(rows).combine_chunks(), None)
        last = pc.if_else(mask, table.column("l").take(rows).combine_chunks(), None)
    columns = {
        "event_type": constant_dictionary("trade", n),
        "exchange": _coded(fut.astype(np.int32), [EXCHANGES["spot"], EXCHANGES["usdm"]]),
        "symbol": _coded(codes.astype(np.int32), symbol_values),
        "raw_symbol": raw.take(rows),
        "timestamp_ms": ts,
        "capture_time_ms": ts,
        "side": _coded(sellers[take].astype(np.int32), ["buy", "sell"]),
        "price": pa.array(px),
        "size": pa.array(qty),
        "trade_id": pc.cast(pa.array(ids[take]), pa.string()),
        "notional_usd": pa.array(px * qty * rates, mask=np.isnan(rates)),  # no USD rate: null, not a guess
        "seq_first": first,
        "seq_last": last,
    }
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in EVENT_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _coded(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values, pa.string()))
