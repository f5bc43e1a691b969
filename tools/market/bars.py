"""Reading canonical-event datasets in batches and folding them into time bars.

A dataset is a Parquet path or a pyarrow Table in `EVENT_SCHEMA` (or any table with the same
column names). Rows need not be sorted: bar values keep the observation with the latest timestamp.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Dataset: TypeAlias = "str | os.PathLike[str] | pa.Table"
BATCH_ROWS = 1_000_000


def iter_batches(dataset: Dataset, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns`, a million rows at a time."""
    if isinstance(dataset, pa.Table):
        yield from dataset.select(columns).to_batches(max_chunksize=BATCH_ROWS)
        return
    with pq.ParquetFile(dataset) as handle:
        yield from handle.iter_batches(batch_size=BATCH_ROWS, columns=columns)


def row_kinds(batch: pa.RecordBatch) -> tuple[BoolArray, BoolArray]:
    """Masks of book rows and trade rows."""
    kind = batch.column("event_type")
    if pa.types.is_dictionary(kind.type):
        kind = kind.cast(pa.string())
    return (pc.equal(kind, "book").to_numpy(zero_copy_only=False),
            pc.equal(kind, "trade").to_numpy(zero_copy_only=False))


def float_column(batch: pa.RecordBatch, name: str) -> FloatArray:
    """A numeric column as float64 with NaN for nulls."""
    values: FloatArray = batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    return values


def forward_fill(values: FloatArray) -> FloatArray:
    """NaNs replaced by the last finite value before them (leading NaNs stay)."""
    index = np.where(np.isfinite(values), np.arange(values.size), -1)
    np.maximum.accumulate(index, out=index)
    filled: FloatArray = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    return filled


class LastInBar:
    """Per bar, the value with the latest timestamp."""

    def __init__(self, n_bars: int) -> None:
        self.last_ts = np.full(n_bars, np.iinfo(np.int64).min)
        self.values = np.full(n_bars, np.nan)

    def update(self, bar: IntArray, ts: IntArray, value: FloatArray) -> None:
        ok = np.isfinite(value)
        bar, ts, value = bar[ok], ts[ok], value[ok]
        if not bar.size:
            return
        order = np.lexsort((ts, bar))
        bar, ts, value = bar[order], ts[order], value[order]
        last = np.flatnonzero(np.r_[bar[1:] != bar[:-1], True])
        bar, ts, value = bar[last], ts[last], value[last]
        newer = ts >= self.last_ts[bar]
        self.last_ts[bar[newer]] = ts[newer]
        self.values[bar[newer]] = value[newer]


@dataclass(frozen=True, slots=True)
class Span:
    """First and last timestamp and row counts of a dataset."""

    first_ms: int
    last_ms: int
    book_rows: int
    trade_rows: int


def dataset_span(dataset: Dataset) -> Span:
    """One cheap pass over two columns."""
    first, last, books, trades = np.iinfo(np.int64).max, np.iinfo(np.int64).min, 0, 0
    for batch in iter_batches(dataset, ["event_type", "timestamp_ms"]):
        ts = batch.column("timestamp_ms").to_numpy()
        if ts.size:
            first, last = min(first, int(ts.min())), max(last, int(ts.max()))
        is_book, is_trade = row_kinds(batch)
        books += int(is_book.sum())
        trades += int(is_trade.sum())
    return Span(first, last, books, trades)


@dataclass(frozen=True, slots=True)
class Bars:
    """Bars of `bar_ms` from `origin_ms`: last mid, last trade price, volume, trade count, mean spread."""

    origin_ms: int
    bar_ms: int
    mid: FloatArray
    trade_price: FloatArray
    volume: FloatArray
    trades: FloatArray
    spread_bps: FloatArray


def read_bars(dataset: Dataset, bar_ms: int, span: Span | None = None) -> Bars:
    """Fold the dataset into bars; memory grows with the number of bars only."""
    span = span or dataset_span(dataset)
    origin = span.first_ms - span.first_ms % bar_ms
    n = max((span.last_ms - origin) // bar_ms + 1, 1)
    mids, prices = LastInBar(n), LastInBar(n)
    volume, trades, spread_sum, spread_count = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for batch in iter_batches(dataset, ["event_type", "timestamp_ms", "price", "size", "mid_price", "spread_bps"]):
        ts = batch.column("timestamp_ms").to_numpy().astype(np.int64)
        bar = (ts - origin) // bar_ms
        is_book, is_trade = row_kinds(batch)
        if is_book.any():
            mids.update(bar[is_book], ts[is_book], float_column(batch, "mid_price")[is_book])
            spread = float_column(batch, "spread_bps")[is_book]
            ok = np.isfinite(spread)
            spread_sum += np.bincount(bar[is_book][ok], weights=spread[ok], minlength=n)
            spread_count += np.bincount(bar[is_book][ok], minlength=n)
        if is_trade.any():
            prices.update(bar[is_trade], ts[is_trade], float_column(batch, "price")[is_trade])
            volume += np.bincount(bar[is_trade], weights=np.nan_to_num(float_column(batch, "size")[is_trade]),
                                  minlength=n)
            trades += np.bincount(bar[is_trade], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread_mean = np.where(spread_count > 0, spread_sum / np.maximum(spread_count, 1), np.nan)
    return Bars(origin_ms=origin, bar_ms=bar_ms, mid=mids.values, trade_price=prices.values, volume=volume,
                trades=trades, spread_bps=spread_mean)
