"""Generated events straight from their numpy arrays to one Parquet row group in `EVENT_SCHEMA`.

The generator knows what pyarrow's writer has to discover value by value: which rows are trades
and which are books (every validity bitmap and level stream follows from that one mask), that
prices and sizes are integers on a grid (dictionaries come from a count over the grid), that
timestamps are sorted, how trade ids are spelt. So each column is encoded in a few array
operations (see `parquet_encoding`), with settings chosen by measurement (bench/generation.py):

- trade prices and sizes, the book's best prices and level sizes, sides, event types: dictionaries
  of the values on their grid, indices bit-packed at the smallest packable width, uncompressed
  (zstd saved under 10% on bit-packed indices and cost more than packing them);
- timestamps: `DELTA_BINARY_PACKED`; trade ids: `DELTA_BYTE_ARRAY` built from their digits;
- `notional_usd` and `spread_bps` (products and ratios, no grid): `BYTE_STREAM_SPLIT` plus zstd;
- book level prices: 16-bit dictionary indices plus zstd, which finds the level ladder repeating
  from one snapshot to the next; the level lists' repetition and definition levels: RLE runs or
  bit-packed, whichever is smaller; zstd also where a dictionary page outweighs its indices;
- book-only and trade-only columns: definition levels as one bit-packed run of the row-kind bitmap.

The file metadata every part shares (schema elements, the `ARROW:schema` that makes pyarrow read
the dictionary columns back as dictionaries, column orders) is taken once per process from what
pyarrow writes for an empty table of `EVENT_SCHEMA`, so the schema reads back exactly.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.schemas.manifest import MODEL_VERSION
from quantdesk.tools.market.book import BookSnapshots
from quantdesk.tools.market.params import ModelParams
from quantdesk.tools.market.parquet_encoding import (
    Codec,
    EncodedRowGroup,
    Encoding,
    RowGroupWriter,
    Type,
    bit_packed_hybrid,
    bit_width,
    bitmap_hybrid,
    byte_stream_split,
    delta_binary_packed,
    delta_byte_array,
    packable_width,
    plain_strings,
    rle_hybrid,
    rle_run,
)
from quantdesk.tools.market.table import TradeRows, to_decimal
from quantdesk.tools.market.thrift import BINARY, Field, Reader, encode_struct
from quantdesk.tools.market.trades import trade_id_deltas

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
CREATED_BY = f"quantdesk event encoder ({MODEL_VERSION})"
COLUMN_CHUNKS = 26
"""Leaf columns of EVENT_SCHEMA: the column chunks of every row group."""
_SHARED_FIELDS = (1, 2, 5, 7)  # version, schema, key/value metadata, column orders
_DIRECT_SPAN = 1 << 16
"""Values within this span of the smallest one are looked up in a presence table; the rest (a tail) are sorted."""
_DENSE_RATIO = 64
"""A dictionary spans the values' whole range when that costs at most 1/8 byte per value."""


@functools.cache
def shared_metadata() -> bytes:
    """The `FileMetaData` fields every part shares, from pyarrow's footer for an empty `EVENT_SCHEMA` table."""
    sink = pa.BufferOutputStream()
    pq.write_table(EVENT_SCHEMA.empty_table(), sink, use_compliant_nested_type=False, store_schema=True,
                   version="2.6")
    data = sink.getvalue().to_pybytes()
    footer_length = struct.unpack_from("<I", data, len(data) - 8)[0]
    meta = Reader(data, len(data) - 8 - footer_length).struct()
    fields = [f for f in meta if f.id in _SHARED_FIELDS] + [Field(6, BINARY, CREATED_BY.encode())]
    fields.sort(key=lambda f: f.id)
    return encode_struct(fields)


def dictionary_of(values: IntArray) -> tuple[IntArray, IntArray]:
    """Sorted distinct values and each value's index among them (a presence table, not a sort, for the body)."""
    if values.size == 0:
        return values[:0], values[:0]
    low = int(values.min())
    shifted = values - low
    span = int(shifted.max()) + 1
    if span <= values.size // _DENSE_RATIO:
        # dense values (prices on the tick grid): the whole range, unused entries costing little
        return np.arange(low, low + span, dtype=np.int64), shifted
    if span <= _DIRECT_SPAN:
        present = np.zeros(span, dtype=np.bool_)
        present[shifted] = True
        rank = np.cumsum(present, dtype=np.int64) - 1
        return np.flatnonzero(present) + low, rank[shifted]
    # a tail beyond the table (Pareto sizes): rare, sorted the usual way
    direct = shifted < _DIRECT_SPAN
    body = shifted[direct]
    present = np.zeros(_DIRECT_SPAN, dtype=np.bool_)
    present[body] = True
    rank = np.cumsum(present, dtype=np.int64) - 1
    uniques = np.flatnonzero(present) + low
    tail_uniques, tail_index = np.unique(shifted[~direct], return_inverse=True)
    index = np.empty(values.size, dtype=np.int64)
    index[direct] = rank[body]
    index[~direct] = tail_index + uniques.size
    return np.concatenate([uniques, tail_uniques + low]), index


def _dictionary_values(index: IntArray, entries: int, byte_aligned: bool = False) -> bytes:
    """An `RLE_DICTIONARY` data page's values: the bit width, then the indices as one bit-packed run."""
    width = packable_width(max(1, bit_width(entries - 1)))
    if byte_aligned:
        width = -(-width // 8) * 8
    return bytes([width]) + bit_packed_hybrid(index.astype(np.uint64), width)


def _plain_doubles(values: npt.NDArray[np.float64]) -> bytes:
    return values.astype("<f8").tobytes()


def _bitmap(mask: BoolArray) -> npt.NDArray[np.uint8]:
    return np.packbits(mask, bitorder="little")


_RLE_RUN_BYTES = 2.5
"""About what an RLE run of levels costs (a one- or two-byte length, a value byte), to choose runs or bits."""


def _list_levels(is_book: BoolArray, book_pos: IntArray, levels: int) -> tuple[bytes, bytes, int]:
    """Repetition and definition levels of a list column with `levels` entries on book rows, null elsewhere.

    A null row is one entry (rep 0, def 0); a book row `levels` entries (rep 0 then 1s, def 3: list,
    element and struct all present). Each stream is RLE runs (one or two per stretch of rows of one
    kind) or one bit-packed run, whichever is smaller: runs when books are sparse, bits when dense.
    """
    n, n_book = is_book.size, book_pos.size
    entries = n + n_book * (levels - 1)
    # where each row's entries start: one entry per row, levels - 1 more after every book row
    starts = None
    if levels > 1 and n_book:
        starts = np.arange(n, dtype=np.int64)
        starts[1:] += (levels - 1) * np.cumsum(is_book[:-1], dtype=np.int64)

    change = np.flatnonzero(is_book[1:] != is_book[:-1]) + 1
    if (change.size + 1) * _RLE_RUN_BYTES <= entries / 4 or starts is None:
        bounds = np.concatenate([[0], change, [n]])
        kinds = is_book[bounds[:-1]]
        lengths = np.diff(bounds)
        definition = rle_hybrid(np.where(kinds, lengths * levels, lengths), np.where(kinds, 3, 0), 2)
    else:
        present = np.zeros(entries, dtype=np.uint8)
        present[(starts[book_pos][:, None] + np.arange(levels)).reshape(-1)] = 3
        definition = bit_packed_hybrid(present, 2)

    if levels == 1 or not n_book:
        repetition = rle_run(entries, 0, 1)
    elif (2 * n_book + 1) * _RLE_RUN_BYTES <= entries / 8 or starts is None:
        # per book row, a run of 0 (the trades before it and its first entry), then levels - 1 ones
        gaps = np.diff(np.concatenate([[-1], book_pos]))
        run_lengths = np.empty(2 * n_book + 1, dtype=np.int64)
        run_lengths[0:-1:2] = gaps
        run_lengths[1:-1:2] = levels - 1
        run_lengths[-1] = n - 1 - int(book_pos[-1])
        run_values = np.zeros(run_lengths.size, dtype=np.int64)
        run_values[1:-1:2] = 1
        repetition = rle_hybrid(run_lengths, run_values, 1)
    else:
        continued = np.ones(entries, dtype=np.bool_)
        continued[starts] = False
        repetition = bitmap_hybrid(_bitmap(continued), entries)
    return repetition, definition, entries


def _grid_codec(entries: int, values: int, width: int) -> Codec:
    """zstd where the dictionary page (sorted doubles, which it packs well) outweighs the indices."""
    return Codec.ZSTD if entries * 64 > values * width else Codec.UNCOMPRESSED


def encode_events(params: ModelParams, books: BookSnapshots, trades: TradeRows,
                  on_step: Callable[[float], None] | None = None) -> EncodedRowGroup:
    """One row group of the events, in the order and with the values of `build_table(params, books, trades)`.

    `on_step(share)` hears the share of the row group's columns encoded so far, after each column.
    """
    p = params
    n_book, n_trade = books.n_rows, trades.n_rows
    n = n_book + n_trade
    # books at or before a trade are the book in force and all earlier ones: book_row + 1 of them
    trade_pos = np.arange(n_trade) + trades.book_row + 1
    is_book = np.ones(n, dtype=np.bool_)
    is_book[trade_pos] = False
    book_pos = np.flatnonzero(is_book)
    book_bits, trade_bits = _bitmap(is_book), _bitmap(~is_book)
    book_def, trade_def = bitmap_hybrid(book_bits, n), bitmap_hybrid(trade_bits, n)
    heard = None if on_step is None else (lambda columns: on_step(columns / COLUMN_CHUNKS))
    writer = RowGroupWriter(n, shared_metadata(), heard)

    def dictionary_column(name: str, words: list[str], index_values: bytes, definition: bytes | None = None,
                          count: int = n) -> None:
        writer.add_column((name,), Type.BYTE_ARRAY, count, Encoding.RLE_DICTIONARY, index_values,
                          definition=definition, dictionary=(len(words), plain_strings(words)))

    dictionary_column("event_type", ["trade", "book"], b"\x01" + bitmap_hybrid(book_bits, n))
    constant = b"\x01" + rle_run(n, 0, 1)
    dictionary_column("exchange", ["synthetic"], constant)
    dictionary_column("symbol", [p.symbol], constant)
    dictionary_column("raw_symbol", [p.symbol], constant, definition=rle_run(n, 1, 1))

    timestamp = np.empty(n, dtype=np.int64)
    timestamp[book_pos] = books.offset_ms
    timestamp[trade_pos] = trades.offset_ms
    timestamp += p.start_time_ms
    capture = np.empty(n, dtype=np.int64)
    capture[book_pos] = books.latency_ms
    capture[trade_pos] = trades.latency_ms
    capture += timestamp
    bounds = (struct.pack("<q", int(timestamp[0])), struct.pack("<q", int(timestamp[-1]))) if n else None
    present = rle_run(n, 1, 1)  # the columns are nullable in EVENT_SCHEMA; generated events always have both times
    writer.add_column(("timestamp_ms",), Type.INT64, n, Encoding.DELTA_BINARY_PACKED, delta_binary_packed(timestamp),
                      definition=present, statistics=bounds)
    writer.add_column(("capture_time_ms",), Type.INT64, n, Encoding.DELTA_BINARY_PACKED,
                      delta_binary_packed(capture), definition=present)

    dictionary_column("side", ["buy", "sell"], b"\x01" + bitmap_hybrid(_bitmap(~trades.buy), n_trade),
                      definition=trade_def)
    grids = {}
    for name, counts, units, scale, step in (("price", trades.price_ticks, p.tick_units, p.tick_scale, p.tick_size),
                                             ("size", trades.lots, p.lot_units, p.lot_scale, p.lot_size)):
        grid_counts, grid_index = dictionary_of(counts)
        grid = to_decimal(grid_counts, units, scale, step)
        grids[name] = grid[grid_index]
        indices = _dictionary_values(grid_index, grid.size)
        writer.add_column((name,), Type.DOUBLE, n, Encoding.RLE_DICTIONARY, indices, definition=trade_def,
                          dictionary=(grid.size, _plain_doubles(grid)),
                          codec=_grid_codec(grid.size, n_trade, indices[0]))
    blocks = np.arange(trades.first_block, trades.first_block + trades.block_counts.size, dtype=np.int64)
    writer.add_column(("trade_id",), Type.BYTE_ARRAY, n, Encoding.DELTA_BYTE_ARRAY,
                      delta_byte_array(*trade_id_deltas(blocks, trades.block_counts)), definition=trade_def)
    notional = grids["price"] * grids["size"]
    writer.add_column(("notional_usd",), Type.DOUBLE, n, Encoding.BYTE_STREAM_SPLIT, byte_stream_split(notional),
                      codec=Codec.ZSTD, definition=trade_def)

    levels = p.num_levels
    repetition, list_definition, entries = _list_levels(is_book, book_pos, levels)
    for side, level_ticks, level_lots in (("bids", books.bid_ticks, books.bid_lots),
                                          ("asks", books.ask_ticks, books.ask_lots)):
        ticks, tick_index = dictionary_of(level_ticks.reshape(-1))
        writer.add_column((side, "list", "item", "price"), Type.DOUBLE, entries, Encoding.RLE_DICTIONARY,
                          _dictionary_values(tick_index, ticks.size, byte_aligned=True), codec=Codec.ZSTD,
                          repetition=repetition, definition=list_definition,
                          dictionary=(ticks.size, _plain_doubles(to_decimal(ticks, p.tick_units, p.tick_scale,
                                                                            p.tick_size))))
        sizes, size_index = dictionary_of(level_lots.reshape(-1))
        writer.add_column((side, "list", "item", "size"), Type.DOUBLE, entries, Encoding.RLE_DICTIONARY,
                          _dictionary_values(size_index, sizes.size), repetition=repetition,
                          definition=list_definition,
                          dictionary=(sizes.size, _plain_doubles(to_decimal(sizes, p.lot_units, p.lot_scale,
                                                                            p.lot_size))))

    writer.add_column(("is_snapshot",), Type.BOOLEAN, n, Encoding.PLAIN,
                      _bitmap(np.ones(n_book, dtype=np.bool_)).tobytes(), definition=book_def)
    best = {}
    for name, book_ticks, units, scale, step in (
            ("best_bid", books.bid_ticks[:, 0], p.tick_units, p.tick_scale, p.tick_size),
            ("best_ask", books.ask_ticks[:, 0], p.tick_units, p.tick_scale, p.tick_size),
            # the mid is on the half-tick grid: decimal too, not the float average
            ("mid_price", books.bid_ticks[:, 0] + books.ask_ticks[:, 0], p.tick_units, 2 * p.tick_scale,
             p.tick_size / 2.0)):
        grid_ticks, grid_index = dictionary_of(book_ticks)
        grid = to_decimal(grid_ticks, units, scale, step)
        best[name] = grid[grid_index]
        indices = _dictionary_values(grid_index, grid.size)
        writer.add_column((name,), Type.DOUBLE, n, Encoding.RLE_DICTIONARY, indices, definition=book_def,
                          dictionary=(grid.size, _plain_doubles(grid)),
                          codec=_grid_codec(grid.size, n_book, indices[0]))
    spread = (best["best_ask"] - best["best_bid"]) / best["mid_price"] * 1e4
    writer.add_column(("spread_bps",), Type.DOUBLE, n, Encoding.BYTE_STREAM_SPLIT, byte_stream_split(spread),
                      codec=Codec.ZSTD, definition=book_def)
    no_values = rle_run(n, 0, 1)
    for name in ("seq_first", "seq_last", "seq_prev", "checksum"):
        writer.add_column((name,), Type.INT64, n, Encoding.PLAIN, b"", definition=no_values)
    writer.add_column(("depth",), Type.INT32, n, Encoding.RLE_DICTIONARY, b"\x01" + rle_run(n_book, 0, 1),
                      definition=book_def, dictionary=(1, struct.pack("<i", 2 * levels)))
    writer.add_column(("gap",), Type.BOOLEAN, n, Encoding.PLAIN, bytes(-(-n_book // 8)), definition=book_def)
    return writer.finish()
