"""Replay of a canonical-event Parquet file (a generated dataset, a cached one, or normalized venue data).

Rows whose symbol is a desk instrument are used; others are ignored. Book snapshots replace the
book, deltas update it (size 0 removes a level), and every book event becomes a row of the top
`REPLAY_LEVELS` levels. Mark = the symbol's mid; a perpetual's index = the mid of the spot symbol
of the same base in the file, or its own mid when the file has none (then its premium is zero).
Timestamps are shifted by `shift_ms` (a real-clock desk starts the file at its own start time).
The market stops changing after the file's last event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from quantdesk.tools.desk.feed import FloatArray, MarketChunk, empty_chunk
from quantdesk.tools.desk.instruments import InstrumentTable

REPLAY_LEVELS = 20


def _side_rows(levels: dict[float, float], descending: bool) -> list[tuple[float, float]]:
    prices = sorted(levels, reverse=descending)[:REPLAY_LEVELS]
    return [(p, levels[p]) for p in prices]


def _fill_levels(target: FloatArray, sizes: FloatArray, row: int, levels: list[tuple[float, float]]) -> None:
    for i, (price, size) in enumerate(levels):
        target[row, i] = price
        sizes[row, i] = size


class ReplayFeed:
    data_source = "replay"

    def __init__(self, path: Path, instruments: InstrumentTable, shift_ms: int = 0) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.shift_ms = shift_ms
        table = pq.read_table(path, columns=["event_type", "symbol", "timestamp_ms", "side", "price", "size",
                                              "bids", "asks", "is_snapshot"])
        rows = table.to_pylist()
        self.first_ms = min((r["timestamp_ms"] for r in rows), default=0)
        self._chunks: dict[str, MarketChunk] = {}
        wanted = [s for s in instruments.by_symbol if any(r["symbol"] == s for r in rows)]
        mids: dict[str, tuple[np.ndarray[Any, Any], FloatArray]] = {}
        for symbol in wanted:
            self._chunks[symbol] = self._build(symbol, [r for r in rows if r["symbol"] == symbol])
            chunk = self._chunks[symbol]
            mids[symbol] = (chunk.book_t, chunk.mark)
        for symbol in wanted:
            instrument = instruments.by_symbol[symbol]
            spot = instruments.spot_for(instrument.base)
            if instrument.is_perpetual and spot is not None and spot.symbol in mids:
                spot_t, spot_mid = mids[spot.symbol]
                chunk = self._chunks[symbol]
                at = np.searchsorted(spot_t, chunk.book_t, side="right") - 1
                index = np.where(at >= 0, spot_mid[np.maximum(at, 0)], chunk.mark)
                self._chunks[symbol] = MarketChunk(symbol, chunk.book_t, chunk.bid_px, chunk.bid_sz, chunk.ask_px,
                                                   chunk.ask_sz, chunk.mark, index, chunk.trade_t, chunk.trade_px,
                                                   chunk.trade_sz, chunk.trade_buy)
        self.last_ms = max((r["timestamp_ms"] for r in rows), default=0) + shift_ms

    def _build(self, symbol: str, rows: list[dict[str, Any]]) -> MarketChunk:
        books = [r for r in rows if r["event_type"] == "book"]
        trades = [r for r in rows if r["event_type"] == "trade"]
        n = len(books)
        bid_px = np.full((n, REPLAY_LEVELS), np.nan)
        ask_px = np.full((n, REPLAY_LEVELS), np.nan)
        bid_sz = np.zeros((n, REPLAY_LEVELS))
        ask_sz = np.zeros((n, REPLAY_LEVELS))
        bids: dict[float, float] = {}
        asks: dict[float, float] = {}
        for row, event in enumerate(books):
            if event["is_snapshot"]:
                bids, asks = {}, {}
            for side, levels in ((bids, event["bids"] or []), (asks, event["asks"] or [])):
                for level in levels:
                    if level["size"] > 0:
                        side[level["price"]] = level["size"]
                    else:
                        side.pop(level["price"], None)
            _fill_levels(bid_px, bid_sz, row, _side_rows(bids, True))
            _fill_levels(ask_px, ask_sz, row, _side_rows(asks, False))
        book_t = np.array([e["timestamp_ms"] + self.shift_ms for e in books], dtype=np.int64)
        mid = (bid_px[:, 0] + ask_px[:, 0]) / 2.0 if n else np.empty(0)
        # a one-sided book has no mid: the mark holds its last value
        for i in range(1, n):
            if mid[i] != mid[i]:
                mid[i] = mid[i - 1]
        return MarketChunk(
            symbol, book_t, bid_px, bid_sz, ask_px, ask_sz, mid, mid.copy(),
            np.array([t["timestamp_ms"] + self.shift_ms for t in trades], dtype=np.int64),
            np.array([t["price"] for t in trades], dtype=np.float64),
            np.array([t["size"] for t in trades], dtype=np.float64),
            np.array([t["side"] == "buy" for t in trades], dtype=np.bool_))

    def symbols(self) -> tuple[str, ...]:
        return tuple(self._chunks)

    def chunk(self, symbol: str, after_ms: int, until_ms: int) -> MarketChunk:
        chunk = self._chunks.get(symbol)
        if chunk is None:
            return empty_chunk(symbol, REPLAY_LEVELS)
        return chunk.window(after_ms, until_ms)

    def latest(self, symbol: str, at_ms: int) -> MarketChunk:
        chunk = self._chunks.get(symbol)
        if chunk is None:
            return empty_chunk(symbol, REPLAY_LEVELS)
        b = int(np.searchsorted(chunk.book_t, at_ms, side="right"))
        t = int(np.searchsorted(chunk.trade_t, at_ms, side="right"))
        bs, ts = slice(max(b - 1, 0), b), slice(max(t - 1, 0), t)
        return MarketChunk(symbol, chunk.book_t[bs], chunk.bid_px[bs], chunk.bid_sz[bs], chunk.ask_px[bs],
                           chunk.ask_sz[bs], chunk.mark[bs], chunk.index[bs], chunk.trade_t[ts], chunk.trade_px[ts],
                           chunk.trade_sz[ts], chunk.trade_buy[ts])

    def describe(self) -> dict[str, Any]:
        return {"data_source": self.data_source, "path": str(self.path), "symbols": list(self._chunks),
                "first_ms": self.first_ms + self.shift_ms, "last_ms": self.last_ms, "shift_ms": self.shift_ms,
                "note": "Replay of a recorded or generated event file; the market stands still after its end."}

    def close(self) -> None:
        self._chunks.clear()
