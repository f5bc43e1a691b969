"""The Arrow/Parquet schema of canonical events (imported on first use through `schemas.events`)."""

from __future__ import annotations

import pyarrow as pa

_DICT = pa.dictionary(pa.int32(), pa.string())
LEVEL_TYPE = pa.struct(
    [pa.field("price", pa.float64(), nullable=False), pa.field("size", pa.float64(), nullable=False)])

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_type", _DICT, nullable=False),
        pa.field("exchange", _DICT, nullable=False),
        pa.field("symbol", _DICT, nullable=False),
        pa.field("raw_symbol", _DICT),
        pa.field("timestamp_ms", pa.int64()),  # null only for a book message with no exchange or capture time
        pa.field("capture_time_ms", pa.int64()),
        pa.field("side", _DICT),
        pa.field("price", pa.float64()),
        pa.field("size", pa.float64()),
        pa.field("trade_id", pa.string()),
        pa.field("notional_usd", pa.float64()),
        pa.field("bids", pa.list_(LEVEL_TYPE)),
        pa.field("asks", pa.list_(LEVEL_TYPE)),
        pa.field("is_snapshot", pa.bool_()),
        pa.field("best_bid", pa.float64()),
        pa.field("best_ask", pa.float64()),
        pa.field("mid_price", pa.float64()),
        pa.field("spread_bps", pa.float64()),
        pa.field("seq_first", pa.int64()),
        pa.field("seq_last", pa.int64()),
        pa.field("seq_prev", pa.int64()),
        pa.field("checksum", pa.int64()),
        pa.field("depth", pa.int16()),
        pa.field("gap", pa.bool_()),
    ],
    metadata={"quantdesk.schema": "canonical-event/1"},
)
"""The Arrow/Parquet schema of canonical events; trade rows leave book columns null and vice versa."""

EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)

