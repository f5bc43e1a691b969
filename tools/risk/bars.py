"""OHLCV bars from the desk's market feed, kept in SQLite one minute at a time.

A minute bar covers trades with open_ms <= t < open_ms + 60 s; it is built only once the desk clock has
passed its end, so a bar never holds the future. A minute without trades takes the mid of its last book
(else the previous close) as open, high, low and close, with zero volume. The feed answers the same range
the same way every time (tools/desk/feed.py), so a cached bar never goes stale. Reading the feed takes
the engine's lock, an hour of market at a time, so the desk is never held up for long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quantdesk.tools.risk.store import RiskSql

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from quantdesk.tools.desk.engine import DeskEngine

    FloatArray = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]
MINUTE_MS = 60_000
PIECE_MINUTES = 60
TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}


@dataclass(frozen=True, slots=True)
class Bars:
    open_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    trades: IntArray

    def __len__(self) -> int:
        return int(self.open_ms.shape[0])


def empty_bars() -> Bars:
    import numpy as np

    f = np.empty(0, dtype=np.float64)
    return Bars(np.empty(0, dtype=np.int64), f, f, f, f, f, np.empty(0, dtype=np.int64))


class BarCache:
    def __init__(self, sql: RiskSql) -> None:
        self.sql = sql
        self.minutes_read = 0

    def bars(self, engine: DeskEngine, symbol: str, timeframe_seconds: int, start_ms: int, end_ms: int,
             stop: Callable[[], bool] | None = None) -> Bars:
        """Complete bars of `timeframe_seconds` with open_ms in [start_ms, end_ms), no later than the desk clock."""
        import numpy as np

        tf = timeframe_seconds * 1000
        now = engine.now_ms
        end = min(end_ms, now) // tf * tf
        start = max(start_ms, engine.origin_ms)
        start = -(-start // tf) * tf
        if end <= start:
            return empty_bars()
        minutes = self.minute_bars(engine, symbol, start, end, stop)
        if tf == MINUTE_MS or len(minutes) == 0:
            return minutes
        group = minutes.open_ms // tf
        edges = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        last = np.r_[edges[1:], len(minutes)] - 1
        return Bars(group[edges] * tf, minutes.open[edges], np.maximum.reduceat(minutes.high, edges),
                    np.minimum.reduceat(minutes.low, edges), minutes.close[last],
                    np.add.reduceat(minutes.volume, edges), np.add.reduceat(minutes.trades, edges))

    def minute_bars(self, engine: DeskEngine, symbol: str, start: int, end: int,
                    stop: Callable[[], bool] | None = None) -> Bars:
        """Minute bars with open_ms in [start, end): from the cache, the missing ones read from the feed."""
        import numpy as np

        have = {int(r[0]) for r in self.sql.query(
            "SELECT open_ms FROM risk_bars_1m WHERE symbol = ? AND open_ms >= ? AND open_ms < ?", (symbol, start, end))}
        if len(have) < (end - start) // MINUTE_MS:
            missing = [t for t in range(start, end, MINUTE_MS) if t not in have]
            runs: list[tuple[int, int]] = []
            for t in missing:
                if runs and runs[-1][1] == t:
                    runs[-1] = (runs[-1][0], t + MINUTE_MS)
                else:
                    runs.append((t, t + MINUTE_MS))
            for a, b in runs:
                for piece in range(a, b, PIECE_MINUTES * MINUTE_MS):
                    if stop is not None and stop():
                        break
                    self._read(engine, symbol, piece, min(b, piece + PIECE_MINUTES * MINUTE_MS))
        rows = self.sql.query("SELECT open_ms, open, high, low, close, volume, trades FROM risk_bars_1m WHERE "
                              "symbol = ? AND open_ms >= ? AND open_ms < ? ORDER BY open_ms", (symbol, start, end))
        if not rows:
            return empty_bars()
        data = np.array([tuple(r) for r in rows], dtype=np.float64)
        return Bars(data[:, 0].astype(np.int64), data[:, 1], data[:, 2], data[:, 3], data[:, 4], data[:, 5],
                    data[:, 6].astype(np.int64))

    def _previous_close(self, symbol: str, before: int) -> float | None:
        rows = self.sql.query("SELECT close FROM risk_bars_1m WHERE symbol = ? AND open_ms < ? ORDER BY open_ms DESC "
                              "LIMIT 1", (symbol, before))
        return float(rows[0][0]) if rows else None

    def _read(self, engine: DeskEngine, symbol: str, a: int, b: int) -> None:
        import numpy as np

        with engine.lock:
            chunk = engine.feed.chunk(symbol, a - 1, b - 1)
        n = (b - a) // MINUTE_MS
        minute_of_trade = (chunk.trade_t - a) // MINUTE_MS
        minute_of_book = (chunk.book_t - a) // MINUTE_MS
        mids = (chunk.bid_px[:, 0] + chunk.ask_px[:, 0]) / 2.0 if chunk.n_books else np.empty(0)
        previous = self._previous_close(symbol, a)
        rows = []
        for m in range(n):
            lo, hi = np.searchsorted(minute_of_trade, [m, m + 1]).tolist()
            if hi > lo:
                px = chunk.trade_px[lo:hi]
                rows.append((symbol, a + m * MINUTE_MS, float(px[0]), float(px.max()), float(px.min()), float(px[-1]),
                             float(chunk.trade_sz[lo:hi].sum()), hi - lo))
                previous = float(px[-1])
                continue
            blo, bhi = np.searchsorted(minute_of_book, [m, m + 1]).tolist()
            finite = mids[blo:bhi][np.isfinite(mids[blo:bhi])] if bhi > blo else mids[:0]
            price = float(finite[-1]) if finite.shape[0] else previous
            if price is None:
                continue  # before the market's first print and book: no bar
            rows.append((symbol, a + m * MINUTE_MS, price, price, price, price, 0.0, 0))
            previous = price
        self.minutes_read += n
        if rows:
            with self.sql.transaction() as conn:
                conn.executemany("INSERT OR REPLACE INTO risk_bars_1m (symbol, open_ms, open, high, low, close, "
                                 "volume, trades) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
