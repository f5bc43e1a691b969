"""The columnar lane for binance `trade` and `aggTrade` lines: Arrow's JSON reader straight to EVENT_SCHEMA.

Per-message Python costs more than parsing (float() of a decimal string alone is about a third of an
orjson.loads here), so a chunk of lines is read by Arrow's multi-threaded JSON reader into columns and
the trade rules of `BinanceParser._any_trade` are applied with vectorized kernels, in the same order
and with the same outcomes. Rows the lane cannot take (other messages, nulls, values that fail a
check, unknown symbols) go back to the per-message path, which reports them.

The lane only reads parts of a chunk it provably sees one row per line: ASCII lines without backslash
escapes (so Arrow and orjson agree on the text), no blank lines, a row count equal to the line count.
Other parts take the per-message path. Parts are handled in input order, and inside a part only trades
that both paths reject can go to the per-message path, so trade ids are checked in input order.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.tools.normalize.arrow import constant_dictionary
from quantdesk.tools.normalize.binance import EXCHANGES, OFF_BOOK, BinanceParser
from quantdesk.tools.normalize.outcomes import MessageError, Rejection, RejectKind
from quantdesk.tools.normalize.symbols import binance_symbol

_TRADE_FIELDS = [("e", pa.string()), ("s", pa.string()), ("T", pa.int64()), ("t", pa.int64()), ("p", pa.string()),
                 ("q", pa.string()), ("m", pa.bool_()), ("M", pa.bool_()), ("X", pa.string())]
_AGG_FIELDS = [("a", pa.int64()), ("f", pa.int64()), ("l", pa.int64())]
# `a` is the aggTrade id but also the asks of depthUpdate and the ask of bookTicker: declare it only when
# the chunk holds neither, or Arrow would refuse the whole chunk over the type clash.
_PARSE_TRADES = pj.ParseOptions(explicit_schema=pa.schema(_TRADE_FIELDS), unexpected_field_behavior="ignore")
_PARSE_ALL = pj.ParseOptions(explicit_schema=pa.schema(_TRADE_FIELDS + _AGG_FIELDS),
                             unexpected_field_behavior="ignore")
_READ = pj.ReadOptions(use_threads=True, block_size=1 << 20)
_SMALLEST_PART = 64  # below this, lines the reader refuses are left to the per-message path


Part = tuple[pa.Table | None, int, int]


def read_parts(lines: list[bytes], block: bytes | None = None) -> list[Part]:
    """The chunk as consecutive parts (table, lo, hi) covering every line in order; table None: per-message path.

    A part that Arrow cannot read one row per line (a malformed line, a type clash, two objects on one
    line) is halved until the bad lines are isolated in small parts that take the per-message path.
    Lines must not be blank; `block`, if given, is the lines joined by newlines.
    """
    whole: list[Part] = [(None, 0, len(lines))]
    if not lines:
        return []
    # Reading costs about a parse: skip chunks that are mostly other messages (depth diffs, tickers).
    # A sample decides, as scanning the whole chunk would cost a tenth of the parse.
    sample = lines[:: max(1, len(lines) // 256)]
    trades = sum(1 for line in sample if b'"trade"' in line)
    aggs = sum(1 for line in sample if b'"aggTrade"' in line)
    if 2 * (trades + aggs) < len(sample):
        return whole
    if block is None:
        block = b"\n".join(lines)
    if not block.isascii() or b"\\" in block:
        return whole
    has_agg = aggs > 0 and b'"a":[' not in block and b'"a":"' not in block
    parts = _read(lines, 0, len(lines), _PARSE_ALL if has_agg else _PARSE_TRADES, block)
    merged: list[Part] = []
    for part in parts:
        if merged and part[0] is None and merged[-1][0] is None:
            merged[-1] = (None, merged[-1][1], part[2])
        else:
            merged.append(part)
    return merged


def _read(lines: list[bytes], lo: int, hi: int, options: pj.ParseOptions, block: bytes | None = None) -> list[Part]:
    try:
        data = block if block is not None else b"\n".join(lines[lo:hi])
        table = pj.read_json(io.BytesIO(data), read_options=_READ, parse_options=options)
        if table.num_rows == hi - lo:
            return [(table, lo, hi)]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if hi - lo <= _SMALLEST_PART:
        return [(None, lo, hi)]
    mid = (lo + hi) // 2
    return _read(lines, lo, mid, options) + _read(lines, mid, hi, options)


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
    symbol_codes, symbol_values = _symbols(raw_codes, raw_values, futures, valid)
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
    """Floats of the decimal strings of `rows` (others read as 1); rows whose text does not parse are dropped.

    Arrow's cast refuses some text Python's float() reads ("1_0", " 2"); the per-message path uses float(),
    so when the cast fails the chunk's strings are read with float() too, and both paths agree.
    """
    try:
        source = column if rows.all() else pc.if_else(pa.array(rows), column, "1")
        return np.asarray(pc.cast(source, pa.float64()).to_numpy(), np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        texts = column.to_pylist()
        out = np.ones(len(texts), np.float64)
        for i in np.flatnonzero(rows).tolist():
            try:
                out[i] = float(texts[i])
            except ValueError:
                rows[i] = False
        return out


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
    """(futures, decided) per row, by the rule of `BinanceParser.is_futures`."""
    n = table.num_rows
    market = parser.options.market
    if market is not None:
        return np.full(n, market == "usdm"), np.ones(n, bool)
    has_x, has_m = _valid(table, "X"), _valid(table, "M")
    futures = np.where(is_agg, ~has_m, has_x)
    decided = is_agg | has_x | has_m
    if not decided.all():
        try:
            default = parser.is_futures(None, None)
        except MessageError:
            return futures, decided
        # The default market applies to rows whose symbol is the default symbol (see is_futures).
        default_raw = parser.default_raw
        codes = [k for k, v in enumerate(raw_values) if v == default_raw]
        fallback = ~decided & (np.isin(raw_codes, codes) if default_raw is not None else True)
        futures = np.where(fallback, default, futures)
        decided = decided | fallback
    return futures, decided


def _symbols(raw_codes: np.ndarray, raw_values: list[str], futures: np.ndarray,
             rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Canonical symbol codes per row (-1 when the symbol is unknown: the per-message path rejects it)."""
    pair = raw_codes * 2 + futures
    codes = np.full(len(pair), -1, np.int64)
    values: list[str] = []
    for key in _distinct(pair[rows]):
        try:
            symbol = binance_symbol(raw_values[key // 2], bool(key % 2))
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
        key = (EXCHANGES[fut], sym, "aggTrade" if agg else "trade")
        group = np.flatnonzero(rows & (group_keys == gk))
        group_ids = ids[group]
        start = known.get(key, -1)
        before = np.maximum.accumulate(np.concatenate(([start], group_ids[:-1])))
        late = group_ids <= before
        if late.any():
            emit[group[late]] = False
            for row, tid, prev in zip(group[late].tolist(), group_ids[late].tolist(), before[late].tolist(),
                                      strict=True):
                kind: RejectKind = "duplicate" if tid == prev else "stale"
                rejections.append(Rejection(int(indices[row]), kind,
                                            f"trade id {tid} is not after the last one seen ({prev})"))
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
        "exchange": _coded(fut.astype(np.int32), [EXCHANGES[False], EXCHANGES[True]]),
        "symbol": _coded(codes.astype(np.int32), symbol_values),
        "raw_symbol": raw.take(rows),
        "timestamp_ms": ts,
        "capture_time_ms": ts,
        "side": _coded(sellers[take].astype(np.int32), ["buy", "sell"]),
        "price": pa.array(px),
        "size": pa.array(qty),
        "trade_id": pc.cast(pa.array(ids[take]), pa.string()),
        "notional_usd": pa.array(px * qty * rates),
        "seq_first": first,
        "seq_last": last,
    }
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in EVENT_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _coded(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values, pa.string()))
