"""Parquet encodings, pages and column-chunk metadata written with numpy, for writers that know their data.

A general writer (pyarrow's) walks every value through validity bitmaps, level builders and a
codec; a writer that knows its columns' shapes can hand each page over in a few array operations.
What is here follows the Parquet format specification (parquet-format `Encodings.md`, the
`parquet.thrift` structures, data pages v1):

- the RLE / bit-packed hybrid (levels, dictionary indices), as one bit-packed run or as RLE runs;
- `DELTA_BINARY_PACKED` (blocks of 128 values in 4 miniblocks), used for sorted integers and
  for the lengths inside `DELTA_BYTE_ARRAY`;
- `BYTE_STREAM_SPLIT` for doubles, `PLAIN` for the rest;
- page headers and `ColumnMetaData` in the Thrift compact protocol, written field by field.

Bit widths are free wherever the format stores them (dictionary indices, miniblocks); `packable_width`
rounds a width up to one that `pack_bits` packs with a handful of whole-array operations. Each
column chunk is one dictionary page (if any) and one data page; a row group is an `EncodedRowGroup`
whose metadata lacks only its file offsets, so a parent process can place it in a file cheaply.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
import pyarrow as pa

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bytes = npt.NDArray[np.uint8]


class Type(IntEnum):
    """Parquet physical types."""

    BOOLEAN = 0
    INT32 = 1
    INT64 = 2
    DOUBLE = 5
    BYTE_ARRAY = 6


class Encoding(IntEnum):
    """Parquet value and level encodings."""

    PLAIN = 0
    RLE = 3
    DELTA_BINARY_PACKED = 5
    DELTA_BYTE_ARRAY = 7
    RLE_DICTIONARY = 8
    BYTE_STREAM_SPLIT = 9


class Codec(IntEnum):
    """Parquet compression codecs (the ones used here)."""

    UNCOMPRESSED = 0
    ZSTD = 6


_DATA_PAGE, _DICTIONARY_PAGE = 0, 2
_ZSTD = pa.Codec("zstd", compression_level=1)
_U64_ONE = np.uint64(1)

# ---------------------------------------------------------------------------------------------------------------
# integers as bytes


def zigzag(values: I64) -> U64:
    """Zigzag-mapped signed integers (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...)."""
    out: U64 = (values.view(np.uint64) << _U64_ONE) ^ (values >> np.int64(63)).view(np.uint64)
    return out


def varint(value: int) -> bytes:
    """ULEB128 of one non-negative integer."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag_varint(value: int) -> bytes:
    """The compact protocol's (and DELTA_BINARY_PACKED's) signed varint of a 64-bit integer."""
    return varint((value << 1) ^ (value >> 63) if value >= 0 else ((-value) << 1) - 1)


def _bit_lengths(values: U64) -> I64:
    """Bit lengths of unsigned values; a float's exponent is exact, or one more near 2**64 (capped), never less."""
    _, exponent = np.frexp(values.astype(np.float64))
    lengths: I64 = np.minimum(exponent.astype(np.int64), 64)
    return lengths


_VARINT_COLUMNS = np.arange(10, dtype=np.uint64)


def varint_rows(values: U64) -> tuple[Bytes, npt.NDArray[np.bool_]]:
    """ULEB128 of each value as a row of bytes (as many as the longest needs) and which of them are used."""
    lengths = np.maximum(-(-_bit_lengths(values) // 7), 1)
    columns = _VARINT_COLUMNS[:int(lengths.max()) if lengths.size else 1]
    shifted = values[:, None] >> (np.uint64(7) * columns)
    used = columns[None, :].astype(np.int64) < lengths[:, None]
    more = columns[None, :].astype(np.int64) < (lengths - 1)[:, None]
    rows = ((shifted & np.uint64(0x7F)) | np.where(more, np.uint64(0x80), np.uint64(0))).astype(np.uint8)
    return rows, used


def compact(rows: Bytes, used: npt.NDArray[np.bool_]) -> Bytes:
    """The used bytes of the rows, row after row."""
    out: Bytes = np.compress(used.reshape(-1), rows.reshape(-1))
    return out


def bit_width(value: int) -> int:
    """Bits needed for the unsigned `value`."""
    return int(value).bit_length()


# ---------------------------------------------------------------------------------------------------------------
# bit packing
#
# Eight values of w bits pack into w bytes (little-endian bit order). Values sit in lanes of a 64-bit
# word (8, 16, 32 or 64 bits wide, the narrowest that holds the widest value); each step halves the
# number of lanes by shifting every odd lane down next to its even neighbour, so a page packs in a
# handful of whole-array operations, with a width of its own for every group of eight if need be.
# Lanes of 32 bits hold pairs, which fill whole bytes only for widths that are multiples of 4; lanes
# of 64 bits only for multiples of 8: `packable_widths` rounds widths up to what the lane allows.

_EVEN = {8: np.uint64(0x00FF00FF00FF00FF), 16: np.uint64(0x0000FFFF0000FFFF), 32: np.uint64(0x00000000FFFFFFFF)}
_LANE_TYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
# row w: w bytes of 1 then zeros, 8 or 16 bytes as one number so that a row is gathered as one element
_FIRST_BYTES_8 = (np.arange(8)[None, :] < np.arange(9)[:, None]).view(np.uint64).reshape(-1)
_FIRST_BYTES_16 = (np.arange(16)[None, :] < np.arange(17)[:, None]).view(np.complex128).reshape(-1)


def _lane_bits(top_width: int) -> int:
    return 8 if top_width <= 8 else 16 if top_width <= 16 else 32 if top_width <= 32 else 64


def packable_widths(widths: I64) -> I64:
    """Widths rounded up to what `pack_groups` packs for a page whose widest group has `widths.max()` bits."""
    lane = _lane_bits(int(widths.max()) if widths.size else 0)
    if lane <= 16:
        return widths
    step = 4 if lane == 32 else 8
    rounded: I64 = -(-widths // step) * step
    return rounded


def packable_width(width: int) -> int:
    """The smallest width at least `width` that `pack_bits` packs."""
    return int(packable_widths(np.array([width], dtype=np.int64))[0])


def _merge_lanes(words: U64, lane: int, widths: U64) -> U64:
    """Shift every odd lane of `lane` bits down onto the `widths`-bit value below it."""
    even = _EVEN[lane]
    merged: U64 = (words & even) | ((words & ~even) >> (np.uint64(lane) - widths))
    return merged


def pack_groups(values: npt.NDArray[np.integer], widths: I64) -> tuple[Bytes, npt.NDArray[np.bool_]]:
    """Values in groups of 8 (group g at `widths[g]` bits, a `packable_widths` result) packed in place.

    Returns rows of bytes, one row per group, and which bytes of each row belong to the packed stream:
    `rows[keep]` is the bit-packed stream of all groups in order.
    """
    groups = widths.size
    top = int(widths.max()) if groups else 0
    lane = _lane_bits(top)
    x = values.astype(_LANE_TYPES[lane]).view(np.uint64)
    w = widths.astype(np.uint64)
    if lane == 8:  # one word per group: 8 lanes -> 4 -> 2 -> 1
        x = _merge_lanes(x, 8, w)
        x = _merge_lanes(x, 16, w + w)
        x = _merge_lanes(x, 32, np.uint64(4) * w)
        return x.view(np.uint8).reshape(groups, 8), _FIRST_BYTES_8[widths].view(np.bool_).reshape(groups, 8)
    if lane == 16:  # two words per group, each 4 lanes -> 1; then the second word goes on top of the first
        pair = np.repeat(w, 2)
        x = _merge_lanes(x, 16, pair)
        x = _merge_lanes(x, 32, pair + pair).reshape(groups, 2)
        shift = np.uint64(4) * w
        out = np.empty((groups, 2), dtype=np.uint64)
        out[:, 0] = x[:, 0] | (x[:, 1] << shift)  # shifts of 64 bits give 0 in numpy
        out[:, 1] = x[:, 1] >> (np.uint64(64) - shift)
        return out.view(np.uint8).reshape(groups, 16), _FIRST_BYTES_16[widths].view(np.bool_).reshape(groups, 16)
    per_word = 64 // lane  # values per word: pairs (w a multiple of 4) or single values (a multiple of 8)
    words = 8 // per_word
    if lane == 32:
        x = _merge_lanes(x, 32, np.repeat(w, words))
    rows = x.view(np.uint8).reshape(groups, 8 * words)
    byte_in_word = np.arange(8 * words, dtype=np.int64) % 8
    return rows, byte_in_word[None, :] < (widths * per_word // 8)[:, None]


def pack_bits(values: npt.NDArray[np.integer], width: int) -> Bytes:
    """Values (unsigned, below 2**width) bit-packed little-endian first, padded with zeros to a multiple of 8 values.

    `width` must be a `packable_width`. Eight values of `width` bits become `width` bytes, as the
    Parquet bit-packed runs and miniblocks store them.
    """
    if packable_width(width) != width:
        raise ValueError(f"width {width} is not packable")
    if width == 0 or values.size == 0:
        return np.zeros(0, dtype=np.uint8)
    pad = -values.size % 8
    if pad:
        values = np.concatenate([values, np.zeros(pad, dtype=values.dtype)])
    groups = values.size // 8
    if width in (8, 16, 32, 64):
        return values.astype(f"<u{width // 8}").view(np.uint8)
    rows, keep = pack_groups(values, np.full(groups, width, dtype=np.int64))
    if rows.shape[1] == 8 and width in (1, 2, 4):  # the low bytes of each word: a narrowing cast
        return rows.view(np.uint64).reshape(-1).astype(f"<u{width}").view(np.uint8)
    if rows.shape[1] <= 16:  # the packed bytes lead each row
        return np.ascontiguousarray(rows[:, :width]).reshape(-1)
    return rows[keep]


# ---------------------------------------------------------------------------------------------------------------
# the RLE / bit-packed hybrid


def bit_packed_hybrid(values: npt.NDArray[np.integer], width: int) -> bytes:
    """All values (non-negative) as one bit-packed run of the hybrid encoding (no length prefix)."""
    groups = -(-values.size // 8)
    return varint(groups << 1 | 1) + pack_bits(values, width).tobytes()


def bitmap_hybrid(bitmap: Bytes, count: int) -> bytes:
    """A 1-bit hybrid run from an LSB-first bitmap of `count` values (e.g. an Arrow validity bitmap)."""
    groups = -(-count // 8)
    return varint(groups << 1 | 1) + bitmap[:groups].tobytes() + bytes(groups - min(groups, bitmap.size))


def rle_hybrid(run_lengths: I64, run_values: I64, width: int) -> bytes:
    """Runs of repeated values as RLE runs of the hybrid encoding (runs of length 0 are dropped)."""
    keep = run_lengths > 0
    lengths, values = run_lengths[keep].astype(np.uint64), run_values[keep].astype(np.uint64)
    value_bytes = -(-width // 8)
    header_rows, header_used = varint_rows(lengths << _U64_ONE)
    value_rows = (values[:, None] >> (np.uint64(8) * np.arange(value_bytes, dtype=np.uint64))).astype(np.uint8)
    rows = np.concatenate([header_rows, value_rows], axis=1)
    used = np.concatenate([header_used, np.ones(value_rows.shape, dtype=np.bool_)], axis=1)
    return compact(rows, used).tobytes()


def rle_run(count: int, value: int, width: int) -> bytes:
    """One RLE run of `count` copies of `value`."""
    return varint(count << 1) + value.to_bytes(-(-width // 8), "little") if count else b""


# ---------------------------------------------------------------------------------------------------------------
# DELTA_BINARY_PACKED and DELTA_BYTE_ARRAY

_BLOCK, _MINIBLOCKS, _MINI = 128, 4, 32


def delta_binary_packed(values: I64) -> bytes:
    """`DELTA_BINARY_PACKED` of int64 values (differences wrap around as the format allows).

    Each miniblock gets the width of its own largest value; a block is laid out as one row of bytes
    (minimum delta, four widths, the miniblocks at full size) and the unused bytes are dropped at once.
    """
    n = values.size
    header = varint(_BLOCK) + varint(_MINIBLOCKS) + varint(n) + zigzag_varint(int(values[0]) if n else 0)
    if n <= 1:
        return header
    deltas = np.diff(values)
    m = deltas.size
    blocks = -(-m // _BLOCK)
    padded = np.empty(blocks * _BLOCK, dtype=np.int64)
    padded[:m] = deltas
    padded[m:] = deltas[-1]  # a value of the last block: its minimum stays; padding bits may be anything
    grid = padded.reshape(blocks, _BLOCK)
    minima = grid.min(axis=1)
    adjusted = (grid - minima[:, None]).view(np.uint64)  # wraps: exact modulo 2**64
    mini_widths = _bit_lengths(np.bitwise_or.reduce(adjusted.reshape(-1, _MINI), axis=1))
    mini_widths[-(-m // _MINI):] = 0  # miniblocks of the last block past the values hold no bytes
    mini_widths = packable_widths(mini_widths)
    rows, keep = pack_groups(adjusted.reshape(-1), np.repeat(mini_widths, _MINI // 8))
    min_rows, min_used = varint_rows(zigzag(minima))
    record = np.concatenate([min_rows, mini_widths.reshape(blocks, _MINIBLOCKS).astype(np.uint8),
                             rows.reshape(blocks, -1)], axis=1)
    used = np.concatenate([min_used, np.ones((blocks, _MINIBLOCKS), dtype=np.bool_), keep.reshape(blocks, -1)],
                          axis=1)
    return header + compact(record, used).tobytes()


def delta_byte_array(prefix_lengths: I64, suffix_lengths: I64, suffixes: Bytes) -> bytes:
    """`DELTA_BYTE_ARRAY`: value i is value i-1's first `prefix_lengths[i]` bytes, then its own suffix."""
    return delta_binary_packed(prefix_lengths) + delta_binary_packed(suffix_lengths) + suffixes.tobytes()


def byte_stream_split(values: npt.NDArray[np.float64]) -> bytes:
    """`BYTE_STREAM_SPLIT` of doubles: all first bytes, then all second bytes, and so on."""
    return np.ascontiguousarray(values.astype("<f8").view(np.uint8).reshape(-1, 8).T).tobytes()


def plain_strings(words: list[str]) -> bytes:
    """`PLAIN` byte arrays: each a 4-byte little-endian length, then its UTF-8 bytes."""
    out = bytearray()
    for word in words:
        data = word.encode()
        out += struct.pack("<I", len(data)) + data
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------------
# Thrift compact protocol, written field by field (ids ascend inside each struct)

_I32, _I64, _BINARY, _LIST, _STRUCT, _TRUE = 5, 6, 8, 9, 12, 1


def _header(delta: int, kind: int) -> bytes:
    return bytes([delta << 4 | kind])


def _list_header(size: int, kind: int) -> bytes:
    return bytes([size << 4 | kind]) if size < 15 else bytes([0xF0 | kind]) + varint(size)


def _page_header(page_type: int, uncompressed: int, compressed: int, body_field: int, body: bytes) -> bytes:
    """A `PageHeader` with its data-page (field 5) or dictionary-page (field 7) header `body`."""
    return (_header(1, _I32) + zigzag_varint(page_type) + _header(1, _I32) + zigzag_varint(uncompressed)
            + _header(1, _I32) + zigzag_varint(compressed) + _header(body_field - 3, _STRUCT) + body + b"\x00")


def _compress(data: bytes, codec: Codec) -> bytes:
    if codec == Codec.ZSTD:
        compressed: bytes = _ZSTD.compress(data, asbytes=True)
        return compressed
    return data


# ---------------------------------------------------------------------------------------------------------------
# column chunks and row groups


@dataclass(frozen=True, slots=True)
class ChunkMeta:
    """A column chunk's `ColumnMetaData`, encoded but for its two offsets (relative to the row group's body).

    `head` holds fields 1-7, `tail` fields 12 and up with their deltas already right, so moving the
    chunk in a file re-encodes two integers only.
    """

    head: bytes
    data_page_offset: int
    dictionary_page_offset: int | None
    tail: bytes
    uncompressed_size: int
    compressed_size: int

    def encode(self, shift: int) -> bytes:
        """The `ColumnChunk` struct, the chunk's pages being `shift` bytes further than recorded."""
        out = b"\x26\x00\x1c" + self.head + b"\x26" + zigzag_varint(self.data_page_offset + shift)
        if self.dictionary_page_offset is not None:
            out += b"\x26" + zigzag_varint(self.dictionary_page_offset + shift)
        return out + self.tail + b"\x00\x00"


@dataclass(frozen=True, slots=True)
class EncodedRowGroup:
    """One row group: its column chunks' pages back to back (`body`, in pieces) and their metadata, ready to place."""

    body: tuple[bytes, ...]
    num_rows: int
    chunks: tuple[ChunkMeta, ...]
    shared: bytes
    """The file metadata every part of a file must share (schema, key-value metadata, writer), encoded."""

    def encode(self, shift: int, ordinal: int) -> bytes:
        """The `RowGroup` struct with the body starting `shift` bytes into the file."""
        out = bytearray(_header(1, _LIST) + _list_header(len(self.chunks), _STRUCT))
        for chunk in self.chunks:
            out += chunk.encode(shift)
        uncompressed = sum(c.uncompressed_size for c in self.chunks)
        compressed = sum(c.compressed_size for c in self.chunks)
        out += _header(1, _I64) + zigzag_varint(uncompressed) + _header(1, _I64) + zigzag_varint(self.num_rows)
        out += _header(2, _I64) + zigzag_varint(shift) + _header(1, _I64) + zigzag_varint(compressed)
        out += _header(1, 4) + zigzag_varint(ordinal) + b"\x00"  # 4: i16
        return bytes(out)


class RowGroupWriter:
    """Collects the column chunks of one row group in schema order."""

    def __init__(self, num_rows: int, shared: bytes, on_column: Callable[[int], None] | None = None) -> None:
        self.num_rows = num_rows
        self._shared = shared
        self._on_column = on_column
        """Hears the number of column chunks added so far, after each one (progress within a row group)."""
        self._pages: list[bytes] = []
        self._chunks: list[ChunkMeta] = []
        self._position = 0
        self._uncompressed = 0

    def _add_page(self, page_type: int, body_field: int, body: bytes, pieces: list[bytes], codec: Codec) -> int:
        """A page of the pieces (compressed together), after its header; returns its offset in the body."""
        size = sum(len(piece) for piece in pieces)
        if codec != Codec.UNCOMPRESSED:
            pieces = [_compress(b"".join(pieces), codec)]
        stored = sum(len(piece) for piece in pieces)
        header = _page_header(page_type, size, stored, body_field, body)
        at = self._position
        self._pages.append(header)
        self._pages.extend(pieces)
        self._position += len(header) + stored
        self._uncompressed += len(header) + size
        return at

    def add_column(self, path: tuple[str, ...], physical: Type, num_values: int, encoding: Encoding,
                   values: bytes, *, codec: Codec = Codec.UNCOMPRESSED, repetition: bytes | None = None,
                   definition: bytes | None = None, dictionary: tuple[int, bytes] | None = None,
                   statistics: tuple[bytes, bytes] | None = None) -> None:
        """One column chunk of a dictionary page (entries, PLAIN bytes), if any, and one v1 data page.

        `repetition` and `definition` are hybrid-encoded levels (None when the column has none);
        `statistics` is the (min, max) of the values, PLAIN-encoded.
        """
        start, self._uncompressed = self._position, 0
        dictionary_offset = None
        if dictionary is not None:
            entries, plain = dictionary
            dictionary_offset = self._add_page(
                _DICTIONARY_PAGE, 7, _header(1, _I32) + zigzag_varint(entries) + _header(1, _I32)
                + zigzag_varint(Encoding.PLAIN) + b"\x00", [plain], codec)
        pieces = []
        for levels in (repetition, definition):
            if levels is not None:
                pieces += [struct.pack("<I", len(levels)), levels]
        pieces.append(values)
        data_offset = self._add_page(
            _DATA_PAGE, 5, _header(1, _I32) + zigzag_varint(num_values) + _header(1, _I32) + zigzag_varint(encoding)
            + _header(1, _I32) + zigzag_varint(Encoding.RLE) + _header(1, _I32) + zigzag_varint(Encoding.RLE)
            + b"\x00", pieces, codec)
        uncompressed, compressed = self._uncompressed, self._position - start

        used = [Encoding.RLE, encoding] if dictionary is None else [Encoding.PLAIN, Encoding.RLE, encoding]
        head = bytearray(_header(1, _I32) + zigzag_varint(physical))
        head += _header(1, _LIST) + _list_header(len(used), _I32) + b"".join(zigzag_varint(e) for e in used)
        head += _header(1, _LIST) + _list_header(len(path), _BINARY)
        head += b"".join(varint(len(p)) + p.encode() for p in path)
        head += _header(1, _I32) + zigzag_varint(codec)
        head += _header(1, _I64) + zigzag_varint(num_values)
        head += _header(1, _I64) + zigzag_varint(uncompressed) + _header(1, _I64) + zigzag_varint(compressed)
        last = 9 if dictionary is None else 11
        tail = bytearray()
        if statistics is not None:
            low, high = statistics
            tail += _header(12 - last, _STRUCT)
            # deprecated max/min (signed order, what old readers look at), null count, max/min, both exact
            tail += _header(1, _BINARY) + varint(len(high)) + high + _header(1, _BINARY) + varint(len(low)) + low
            tail += _header(1, _I64) + zigzag_varint(0)
            tail += _header(2, _BINARY) + varint(len(high)) + high + _header(1, _BINARY) + varint(len(low)) + low
            tail += _header(1, _TRUE) + _header(1, _TRUE) + b"\x00"
            last = 12
        stats = [(_DATA_PAGE, encoding)] if dictionary is None else [(_DICTIONARY_PAGE, Encoding.PLAIN),
                                                                     (_DATA_PAGE, encoding)]
        tail += _header(13 - last, _LIST) + _list_header(len(stats), _STRUCT)
        for page_type, page_encoding in stats:
            tail += (_header(1, _I32) + zigzag_varint(page_type) + _header(1, _I32) + zigzag_varint(page_encoding)
                     + _header(1, _I32) + zigzag_varint(1) + b"\x00")
        self._chunks.append(ChunkMeta(head=bytes(head), data_page_offset=data_offset,
                                      dictionary_page_offset=dictionary_offset, tail=bytes(tail),
                                      uncompressed_size=uncompressed, compressed_size=compressed))
        if self._on_column is not None:
            self._on_column(len(self._chunks))

    def finish(self) -> EncodedRowGroup:
        return EncodedRowGroup(body=tuple(self._pages), num_rows=self.num_rows, chunks=tuple(self._chunks),
                               shared=self._shared)
