"""The canonical market event: one shape for trades and L2 book events, from any venue or the generator.

Semantics follow Tardis (aggressor side, absolute level sizes, exchange and capture clocks);
symbols follow cryptofeed (`BTC-USDT`, `BTC-USDT-PERP`, `BTC-USD-251226`). The same fields are
the JSON of SSE streams and tool results, and the columns of every Parquet artifact.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

Side = Literal["buy", "sell", "unknown"]


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    price: float
    size: float = Field(description="Absolute resting size in base units; 0 deletes the level in a delta.")


class TradeEvent(BaseModel):
    """One trade; `side` is the aggressor (taker) side."""

    model_config = ConfigDict(extra="forbid")

    event_type: Literal["trade"] = "trade"
    exchange: str
    symbol: str = Field(description="Canonical symbol: BASE-QUOTE, BASE-QUOTE-PERP or BASE-QUOTE-YYMMDD.")
    raw_symbol: str | None = None
    timestamp_ms: int = Field(description="Exchange time of the trade, ms since the epoch.")
    capture_time_ms: int = Field(description="Local arrival time, ms since the epoch.")
    side: Side
    price: float
    size: float = Field(description="Size in base units.")
    trade_id: str
    notional_usd: float | None = Field(
        description="price x size in USD; null when the quote currency has no known USD rate.")
    seq_first: int | None = None
    seq_last: int | None = None
    seq_prev: int | None = None


class BookEvent(BaseModel):
    """An L2 book snapshot or delta; top-of-book fields describe the maintained book after the event."""

    model_config = ConfigDict(extra="forbid")

    event_type: Literal["book"] = "book"
    exchange: str
    symbol: str
    raw_symbol: str | None = None
    timestamp_ms: int
    capture_time_ms: int
    bids: list[Level] = Field(description="Best first.")
    asks: list[Level] = Field(description="Best first.")
    is_snapshot: bool
    best_bid: float | None = None
    best_ask: float | None = None
    mid_price: float | None = None
    spread_bps: float | None = None
    seq_first: int | None = None
    seq_last: int | None = None
    seq_prev: int | None = None
    checksum: int | None = None
    depth: int = Field(description="Number of levels the event carries (both sides).")
    gap: bool = Field(False, description="True when continuity broke before this event; deltas wait for a snapshot.")


CanonicalEvent = TradeEvent | BookEvent

_DICT = pa.dictionary(pa.int32(), pa.string())
LEVEL_TYPE = pa.struct(
    [pa.field("price", pa.float64(), nullable=False), pa.field("size", pa.float64(), nullable=False)])

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_type", _DICT, nullable=False),
        pa.field("exchange", _DICT, nullable=False),
        pa.field("symbol", _DICT, nullable=False),
        pa.field("raw_symbol", _DICT),
        pa.field("timestamp_ms", pa.int64(), nullable=False),
        pa.field("capture_time_ms", pa.int64(), nullable=False),
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

_TRADE_FIELDS = frozenset(TradeEvent.model_fields)
_BOOK_FIELDS = frozenset(BookEvent.model_fields)


def event_from_row(row: dict[str, object]) -> TradeEvent | BookEvent:
    """A canonical-schema row (as `Table.to_pylist()` gives it) back as its event model."""
    if row.get("event_type") == "trade":
        return TradeEvent.model_validate({k: v for k, v in row.items() if k in _TRADE_FIELDS and v is not None})
    return BookEvent.model_validate({k: v for k, v in row.items() if k in _BOOK_FIELDS and v is not None})
