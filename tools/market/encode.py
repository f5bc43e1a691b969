"""The Parquet writer settings of every artifact, and the encoding of one row-group unit.

Settings are constants, so equal tables give equal bytes. Chosen by measurement (bench/generation.py):
zstd level 1; delta encoding for the two sorted-ish timestamp columns and the sequential trade ids;
dictionaries only where values repeat (the dictionary columns, prices and sizes on their grids);
statistics only for `timestamp_ms` (readers filter on time); the non-compliant list naming so the
Arrow schema reads back equal to `EVENT_SCHEMA` (list items named `item`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

DICTIONARY_COLUMNS = [
    "event_type", "exchange", "symbol", "raw_symbol", "side", "price", "size",
    "bids.list.item.price", "bids.list.item.size", "asks.list.item.price", "asks.list.item.size",
    "best_bid", "best_ask", "mid_price",
]
WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": DICTIONARY_COLUMNS,
    "column_encoding": {
        "timestamp_ms": "DELTA_BINARY_PACKED",
        "capture_time_ms": "DELTA_BINARY_PACKED",
        "trade_id": "DELTA_BYTE_ARRAY",
    },
    "write_statistics": ["timestamp_ms"],
    "use_compliant_nested_type": False,
    "write_page_index": False,
    "store_schema": True,
    "version": "2.6",
    "data_page_version": "1.0",
}


def encode_part(table: pa.Table) -> bytes:
    """`table` as a complete Parquet file with exactly one row group."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=max(table.num_rows, 1), **WRITER_OPTIONS)
    return bytes(sink.getvalue())


def open_writer(where: Any, schema: pa.Schema) -> pq.ParquetWriter:
    """A ParquetWriter with the artifact settings, for writers that append tables themselves."""
    return pq.ParquetWriter(where, schema, **WRITER_OPTIONS)
