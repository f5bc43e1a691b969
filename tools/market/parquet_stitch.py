"""One Parquet file stitched from Parquet parts that workers encoded on their own.

Encoding is the expensive step, so workers encode each row-group unit on their own, either as an
`EncodedRowGroup` (pages plus column metadata that only lacks its file offsets) or as a small
complete Parquet file; the parent copies the parts' column-chunk bytes into one file and writes
one footer whose row groups are the parts' row groups with their file offsets shifted. Parts
must share the schema and writer metadata (checked). Column and offset page indexes and bloom
filters hold absolute offsets of their own, so file parts must be written without them (checked).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quantdesk.tools.market.parquet_encoding import EncodedRowGroup
from quantdesk.tools.market.thrift import I16, I64, LIST, STRUCT, Field, Reader, Struct, TList, encode_struct, find

MAGIC = b"PAR1"
# FileMetaData fields
_FM_NUM_ROWS, _FM_ROW_GROUPS = 3, 4
_FM_SHARED = (1, 2, 5, 6, 7)  # version, schema, key/value metadata, created_by, column orders
# RowGroup, ColumnChunk and ColumnMetaData fields that hold absolute file offsets
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_OFFSET, _CC_META = 2, 3
_CC_PAGE_INDEX = (4, 6)  # offset_index_offset, column_index_offset
_CM_OFFSETS = (9, 10, 11)  # data_page_offset, index_page_offset, dictionary_page_offset
_CM_BLOOM = 14


@dataclass(frozen=True, slots=True)
class ParquetPart:
    """A complete Parquet file with its footer parsed (picklable, so workers can parse for the parent)."""

    data: bytes
    body_end: int
    row_groups: list[Struct]
    num_rows: int
    shared: bytes

    @property
    def body(self) -> memoryview:
        """Everything between the leading magic and the footer: the column chunks."""
        return memoryview(self.data)[4:self.body_end]

    @classmethod
    def parse(cls, data: bytes) -> ParquetPart:
        if data[:4] != MAGIC or data[-4:] != MAGIC:
            raise ValueError("not a Parquet file")
        footer_length = struct.unpack_from("<I", data, len(data) - 8)[0]
        footer_start = len(data) - 8 - footer_length
        meta = Reader(data, footer_start).struct()
        groups = find(meta, _FM_ROW_GROUPS)
        rows = find(meta, _FM_NUM_ROWS)
        if groups is None or rows is None:
            raise ValueError("Parquet footer without row groups")
        shared = encode_struct([f for f in meta if f.id in _FM_SHARED])
        return cls(data=data, body_end=footer_start, row_groups=list(groups.value.values),
                   num_rows=int(rows.value), shared=shared)


def _shift(fields: Struct, ids: tuple[int, ...], delta: int) -> None:
    for field in fields:
        if field.id in ids:
            field.value += delta


def _relocate(group: Struct, delta: int, ordinal: int) -> Struct:
    """The row group moved `delta` bytes further into the file, numbered `ordinal`."""
    columns = find(group, _RG_COLUMNS)
    if columns is None:
        raise ValueError("row group without columns")
    for chunk in columns.value.values:
        if any(find(chunk, i) is not None for i in _CC_PAGE_INDEX):
            raise ValueError("parts must be written without page indexes")
        _shift(chunk, (_CC_FILE_OFFSET,), delta)
        meta = find(chunk, _CC_META)
        if meta is not None:
            if find(meta.value, _CM_BLOOM) is not None:
                raise ValueError("parts must be written without bloom filters")
            _shift(meta.value, _CM_OFFSETS, delta)
    _shift(group, (_RG_FILE_OFFSET,), delta)
    out = [f for f in group if f.id != _RG_ORDINAL]
    out.append(Field(_RG_ORDINAL, I16, ordinal))
    out.sort(key=lambda f: f.id)
    return out


class ParquetStitcher:
    """Writes parts, in order, through `write` (e.g. a file's write), then the footer on `finish`.

    What it has written is described by `position`, `shared` and `groups` (the encoded row-group
    structs); `resume` continues a file from them, as a job resumed after a restart does.
    """

    def __init__(self, write: Callable[[bytes | memoryview], object]) -> None:
        self._write = write
        self._position = 0
        self._groups: list[bytes] = []
        self._rows = 0
        self._shared: bytes | None = None
        self._emit(MAGIC)

    @classmethod
    def resume(cls, write: Callable[[bytes | memoryview], object], position: int, shared: bytes,
               groups: Sequence[bytes], rows: int) -> ParquetStitcher:
        """A stitcher for a file whose first `position` bytes it wrote earlier (the footer not yet)."""
        stitcher = cls.__new__(cls)
        stitcher._write = write
        stitcher._position = position
        stitcher._groups = list(groups)
        stitcher._rows = rows
        stitcher._shared = shared
        return stitcher

    @property
    def position(self) -> int:
        return self._position

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def shared(self) -> bytes | None:
        return self._shared

    def groups(self, start: int = 0) -> list[bytes]:
        """The encoded row-group structs from `start` on."""
        return self._groups[start:]

    def _emit(self, data: bytes | memoryview) -> None:
        self._write(data)
        self._position += len(data)

    def _check_shared(self, shared: bytes) -> None:
        if self._shared is None:
            self._shared = shared
        elif shared != self._shared:
            raise ValueError("parts differ in schema or writer metadata")

    def add(self, data: bytes | ParquetPart | EncodedRowGroup,
            body: Sequence[bytes | memoryview] | None = None) -> None:
        """Append the row groups of one part: an encoded row group, or a Parquet file (raw bytes or parsed).

        `body` stands in for an encoded row group's own body (which was shipped apart from it).
        """
        if isinstance(data, EncodedRowGroup):
            self._check_shared(data.shared)
            self._groups.append(data.encode(self._position, len(self._groups)))
            self._rows += data.num_rows
            for piece in data.body if body is None else body:
                self._emit(piece)
            return
        part = data if isinstance(data, ParquetPart) else ParquetPart.parse(data)
        self._check_shared(part.shared)
        # part offsets count from its own start, where its magic sits; here the body starts at _position
        delta = self._position - 4
        for group in part.row_groups:
            self._groups.append(encode_struct(_relocate(group, delta, len(self._groups))))
        self._rows += part.num_rows
        self._emit(part.body)

    @property
    def row_groups(self) -> int:
        return len(self._groups)

    def finish(self) -> int:
        """Write the footer; returns the file size."""
        if self._shared is None:
            raise ValueError("no parts were added")
        shared = Reader(self._shared).struct()
        meta = shared + [Field(_FM_NUM_ROWS, I64, self._rows), Field(_FM_ROW_GROUPS, LIST,
                                                                     TList(STRUCT, self._groups))]
        meta.sort(key=lambda f: f.id)
        footer = encode_struct(meta)
        self._emit(footer)
        self._emit(struct.pack("<I", len(footer)))
        self._emit(MAGIC)
        return self._position


def stitch(parts: list[bytes | ParquetPart | EncodedRowGroup]) -> bytes:
    """The parts stitched into one Parquet file, in memory."""
    chunks: list[bytes] = []
    stitcher = ParquetStitcher(lambda data: chunks.append(bytes(data)))
    for part in parts:
        stitcher.add(part)
    stitcher.finish()
    return b"".join(chunks)
