"""The market-feed interface of the desk: per symbol, L2 books with mark and index prices, and trades.

A feed answers `chunk(symbol, after_ms, until_ms)`: every event with `after_ms < timestamp_ms <=
until_ms`, as numpy arrays, books and trades each in time order. Any source plugs in behind it: the
synthetic generator (`synthetic_feed.py`), the replay of a canonical-event Parquet file
(`replay_feed.py`), and later a live venue feed that buffers what it receives. A feed must answer the
same range the same way every time: the engine's determinism rests on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class MarketChunk:
    """Books (rows of `book_t`, levels best first, NaN-padded) and trades of one symbol over a time range."""

    symbol: str
    book_t: IntArray
    bid_px: FloatArray
    bid_sz: FloatArray
    ask_px: FloatArray
    ask_sz: FloatArray
    mark: FloatArray
    """Mark price in force from each book row on (NaN: unknown)."""
    index: FloatArray
    trade_t: IntArray
    trade_px: FloatArray
    trade_sz: FloatArray
    trade_buy: BoolArray
    """True when the aggressor bought."""

    @property
    def n_books(self) -> int:
        return int(self.book_t.shape[0])

    @property
    def n_trades(self) -> int:
        return int(self.trade_t.shape[0])

    def book_levels(self, row: int) -> tuple[list[list[float]], list[list[float]]]:
        """One book row as [[price, size], ...] per side, best first, without padding."""
        bids = [[p, s] for p, s in zip(self.bid_px[row].tolist(), self.bid_sz[row].tolist(), strict=True)
                if p == p and s > 0]
        asks = [[p, s] for p, s in zip(self.ask_px[row].tolist(), self.ask_sz[row].tolist(), strict=True)
                if p == p and s > 0]
        return bids, asks

    def window(self, after_ms: int, until_ms: int) -> MarketChunk:
        b0, b1 = np.searchsorted(self.book_t, [after_ms, until_ms], side="right").tolist()
        t0, t1 = np.searchsorted(self.trade_t, [after_ms, until_ms], side="right").tolist()
        return MarketChunk(self.symbol, self.book_t[b0:b1], self.bid_px[b0:b1], self.bid_sz[b0:b1],
                           self.ask_px[b0:b1], self.ask_sz[b0:b1], self.mark[b0:b1], self.index[b0:b1],
                           self.trade_t[t0:t1], self.trade_px[t0:t1], self.trade_sz[t0:t1], self.trade_buy[t0:t1])

    @staticmethod
    def concat(symbol: str, parts: list[MarketChunk], levels: int) -> MarketChunk:
        if not parts:
            return empty_chunk(symbol, levels)
        if len(parts) == 1:
            return parts[0]
        return MarketChunk(
            symbol, np.concatenate([p.book_t for p in parts]), np.concatenate([p.bid_px for p in parts]),
            np.concatenate([p.bid_sz for p in parts]), np.concatenate([p.ask_px for p in parts]),
            np.concatenate([p.ask_sz for p in parts]), np.concatenate([p.mark for p in parts]),
            np.concatenate([p.index for p in parts]), np.concatenate([p.trade_t for p in parts]),
            np.concatenate([p.trade_px for p in parts]), np.concatenate([p.trade_sz for p in parts]),
            np.concatenate([p.trade_buy for p in parts]))


def empty_chunk(symbol: str, levels: int) -> MarketChunk:
    no_float = np.empty(0, dtype=np.float64)
    no_levels = np.empty((0, levels), dtype=np.float64)
    return MarketChunk(symbol, np.empty(0, dtype=np.int64), no_levels, no_levels, no_levels, no_levels, no_float,
                       no_float, np.empty(0, dtype=np.int64), no_float, no_float, np.empty(0, dtype=np.bool_))


class MarketFeed(Protocol):
    data_source: str
    """`synthetic`, `replay` or a venue name: said in every answer that shows market data."""

    def symbols(self) -> tuple[str, ...]: ...

    def chunk(self, symbol: str, after_ms: int, until_ms: int) -> MarketChunk:
        """Events with after_ms < timestamp_ms <= until_ms."""
        ...

    def latest(self, symbol: str, at_ms: int) -> MarketChunk:
        """The last book row and the last trade at or before `at_ms` (each possibly absent)."""
        ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
