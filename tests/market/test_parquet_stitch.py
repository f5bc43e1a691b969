"""Stitching worker-encoded row groups into one file, and the Thrift codec under it."""

from __future__ import annotations

import io
import struct

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.estimate import estimate
from quantdesk.tools.market.parquet_stitch import ParquetStitcher, stitch
from quantdesk.tools.market.pipeline import generate_table, iter_event_parts, iter_event_tables
from quantdesk.tools.market.thrift import Reader, encode_struct


def _footer(data: bytes) -> bytes:
    length = struct.unpack_from("<I", data, len(data) - 8)[0]
    return data[len(data) - 8 - length:len(data) - 8]


def test_the_thrift_codec_round_trips_a_parquet_footer_byte_for_byte(short_manifest: SimulationManifest) -> None:
    footer = _footer(stitch(list(iter_event_parts(short_manifest, blocks_per_part=1, stop_block=2))))
    assert encode_struct(Reader(footer).struct()) == footer
    other = io.BytesIO()
    pq.write_table(generate_table(short_manifest, stop_block=1), other)
    assert encode_struct(Reader(_footer(other.getvalue())).struct()) == _footer(other.getvalue())


def test_stitched_parts_read_back_as_the_concatenated_tables(short_manifest: SimulationManifest) -> None:
    tables = list(iter_event_tables(short_manifest, blocks_per_table=3, stop_block=10))
    sink = io.BytesIO()
    stitcher = ParquetStitcher(sink.write)
    for part in iter_event_parts(short_manifest, blocks_per_part=3, stop_block=10):
        stitcher.add(part)
    size = stitcher.finish()
    data = sink.getvalue()
    assert size == len(data)
    handle = pq.ParquetFile(io.BytesIO(data))
    assert handle.metadata.num_row_groups == len(tables)
    assert [handle.metadata.row_group(i).num_rows for i in range(len(tables))] == [t.num_rows for t in tables]
    result = handle.read()
    assert result.schema.equals(EVENT_SCHEMA, check_metadata=True)
    assert result.equals(pa.concat_tables(tables))
    # every row group is readable on its own (offsets were shifted right)
    assert handle.read_row_group(2).equals(tables[2])


def test_pyarrow_written_parts_stitch_too(short_manifest: SimulationManifest) -> None:
    tables = list(iter_event_tables(short_manifest, blocks_per_table=2, stop_block=6))
    parts = []
    for table in tables:
        sink = io.BytesIO()
        pq.write_table(table, sink, use_compliant_nested_type=False)
        parts.append(sink.getvalue())
    handle = pq.ParquetFile(io.BytesIO(stitch(parts)))
    assert handle.metadata.num_row_groups == len(tables)
    assert handle.read().equals(pa.concat_tables(tables))


def test_stitching_refuses_parts_with_another_schema(short_manifest: SimulationManifest) -> None:
    stitcher = ParquetStitcher(io.BytesIO().write)
    stitcher.add(next(iter_event_parts(short_manifest, stop_block=1)))
    other = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2]}), other, write_page_index=False)
    with pytest.raises(ValueError, match="differ"):
        stitcher.add(other.getvalue())


def test_the_estimate_is_close_to_what_is_generated(short_manifest: SimulationManifest) -> None:
    guess = estimate(short_manifest)
    table = generate_table(short_manifest)
    kinds = table.column("event_type").combine_chunks().indices.to_numpy()
    assert guess["book_rows"] == int((kinds == 1).sum())
    assert 0.3 < (kinds == 0).sum() / guess["trade_rows"] < 3.0
    assert guess["problems"] == []
