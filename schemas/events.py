"""The canonical market event: one shape for trades and L2 book events, from any venue or the generator.

Semantics follow Tardis (aggressor side, absolute level sizes, exchange and capture clocks);
symbols follow cryptofeed (`BTC-USDT`, `BTC-USDT-PERP`, `BTC-USD-251226`). The same fields are
the JSON of SSE streams and tool results, and the columns of every Parquet artifact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

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
    timestamp_ms: int | None = Field(
        description="Exchange time, ms since the epoch; the capture time for a message that carries none (a binance "
                    "spot bookTicker); null when neither is known (the normalizer's warnings say so).")
    capture_time_ms: int | None = Field(description="Local arrival time, ms since the epoch; null when unknown.")
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

def __getattr__(name: str) -> Any:
    # The Arrow schema needs pyarrow (a tenth of a second to import): built on first use, so a
    # process that only lists tools or answers MCP never pays for it.
    if name in ("EVENT_SCHEMA", "LEVEL_TYPE", "EVENT_COLUMNS"):
        from quantdesk.schemas import event_arrow

        return getattr(event_arrow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    import pyarrow as pa

    LEVEL_TYPE: pa.DataType
    EVENT_SCHEMA: pa.Schema
    EVENT_COLUMNS: tuple[str, ...]

_TRADE_FIELDS = frozenset(TradeEvent.model_fields)
_BOOK_FIELDS = frozenset(BookEvent.model_fields)


def event_from_row(row: dict[str, object]) -> TradeEvent | BookEvent:
    """A canonical-schema row (as `Table.to_pylist()` gives it) back as its event model."""
    if row.get("event_type") == "trade":
        return TradeEvent.model_validate({k: v for k, v in row.items() if k in _TRADE_FIELDS and v is not None})
    return BookEvent.model_validate({k: v for k, v in row.items() if k in _BOOK_FIELDS and v is not None})
