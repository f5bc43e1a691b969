"""Moving the desk through market time: every event between two instants, in one fixed order.

Time is cut into slices that end at every fixed-time event (equity samples, funding times, minute
boundaries). Inside a slice the feed's arrays are scanned, vectorized, for the first event that can
change the desk: a trade that goes through a resting limit or reaches a stop, or a mark that takes a
position below maintenance margin. Everything before it only updates the market state (last book,
mark, index, last trade); the trigger is handled; the scan resumes after it. At the slice end come
the funding settlement (if it is a funding time) and then the equity sample (if it is a sample time).

The fixed order of events at one millisecond: by symbol in the instrument file's order; within a
symbol, book rows (with their mark and index) before trades, each in feed order; then funding, in
symbol order; then the equity sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from quantdesk.tools.desk.book import LiveBook
from quantdesk.tools.desk.feed import MarketChunk, MarketFeed
from quantdesk.tools.funding.premium import average_premium
from quantdesk.tools.funding.rates import apply_cap, period_rate
from quantdesk.tools.funding.schedule import HOUR_MS, align_period_start
from quantdesk.tools.venues.catalog import FundingParameters

if TYPE_CHECKING:
    from quantdesk.tools.desk.engine import DeskEngine

MINUTE_MS = 60_000
_BOOK, _TRADE = 0, 1
Trigger = tuple[int, int, int, int]
"""(timestamp_ms, symbol index, kind, row): compared as a tuple, it is the processing order."""


@dataclass(slots=True)
class AdvanceReport:
    from_ms: int
    to_ms: int
    market_events: int = 0
    fills: int = 0
    liquidations: int = 0
    funding_settlements: int = 0
    equity_samples: int = 0
    interrupted: bool = False


def funding_rate(params: FundingParameters, samples: list[float]) -> tuple[float, float]:
    """(rate paid this interval, averaged premium) from the period's premium samples, the venue's way."""
    if samples:
        values = np.asarray(samples, dtype=np.float64)
        if params.sample_clamp is not None:
            values = np.clip(values, -params.sample_clamp, params.sample_clamp)
        premium = average_premium(values, params.averaging, params.trim_ratio)
    else:
        premium = 0.0
    rate, _ = apply_cap(period_rate(params, premium), params.cap_per_period, False)
    return rate, premium


class MarketProcessor:
    def __init__(self, engine: DeskEngine, feed: MarketFeed) -> None:
        self.engine = engine
        self.feed = feed
        served = set(feed.symbols())
        self.symbols = [s for s in engine.instruments.by_symbol if s in served]
        self.funding: dict[str, FundingParameters] = {
            i.symbol: i.funding for i in engine.instruments.perpetuals()
            if i.funding is not None and i.funding.model == "perpetual_funding" and i.symbol in served}
        self.sample_ms = engine.config.equity_sample_seconds * 1000

    # --- state -----------------------------------------------------------------------------------

    def _apply(self, symbol: str, chunk: MarketChunk, b0: int, b1: int, t0: int, t1: int) -> None:
        if b1 > b0:
            row = b1 - 1
            bids, asks = chunk.book_levels(row)
            at = int(chunk.book_t[row])
            self.engine.set_market(symbol, book=LiveBook(bids, asks, at), mark=float(chunk.mark[row]),
                                   index=float(chunk.index[row]), at_ms=at)
        if t1 > t0:
            at = int(chunk.trade_t[t1 - 1])
            self.engine.set_market(symbol, trade=(at, float(chunk.trade_px[t1 - 1])), at_ms=at)
        self.engine.metrics.market_events += (b1 - b0) + (t1 - t0)

    def _period_start(self, params: FundingParameters, t_ms: int) -> int:
        return align_period_start(t_ms, params.interval_hours, params.schedule_anchor_utc_hour)

    def prime(self, at_ms: int) -> None:
        """Set the market state as of `at_ms` and rebuild the running funding period's premium samples."""
        for symbol in self.symbols:
            latest = self.feed.latest(symbol, at_ms)
            self._apply(symbol, latest, 0, latest.n_books, 0, latest.n_trades)
        for symbol, params in self.funding.items():
            market = self.engine.markets[symbol]
            start = self._period_start(params, at_ms)
            step = round(params.sample_seconds * 1000)
            chunk = self.feed.chunk(symbol, start - MINUTE_MS, at_ms)
            points = np.arange(start, at_ms + 1, step, dtype=np.int64)
            market.period_start_ms = start
            market.premium_samples = [v for v in self._premiums(chunk, points, float("nan")).tolist() if v == v]

    @staticmethod
    def _premiums(chunk: MarketChunk, points: np.ndarray, before: float) -> np.ndarray:
        rows = np.searchsorted(chunk.book_t, points, side="right") - 1
        safe = np.maximum(rows, 0)
        values = chunk.mark[safe] / chunk.index[safe] - 1.0 if chunk.n_books else np.full(points.shape[0], before)
        return np.where(rows >= 0, values, before)

    # --- scanning -----------------------------------------------------------------------------------

    def _first_trigger(self, chunks: dict[str, MarketChunk], cursors: dict[str, list[int]]) -> Trigger | None:
        engine = self.engine
        best: Trigger | None = None
        isolated, excess, slopes = engine.liquidation_plan()
        cross_t: list[np.ndarray] = []
        cross_keys: list[tuple[np.ndarray, np.ndarray]] = []
        cross_delta: list[np.ndarray] = []
        for si, symbol in enumerate(self.symbols):
            chunk = chunks[symbol]
            bi, ti = cursors[symbol]
            if ti < chunk.n_trades:
                bid, ask, buy_stop, sell_stop = engine.trigger_levels(symbol)
                if bid != -np.inf or ask != np.inf or buy_stop != np.inf or sell_stop != -np.inf:
                    px = chunk.trade_px[ti:]
                    mask = (px < bid) | (px > ask) | (px >= buy_stop) | (px <= sell_stop)
                    if mask.any():
                        j = ti + int(np.argmax(mask))
                        candidate = (int(chunk.trade_t[j]), si, _TRADE, j)
                        best = candidate if best is None or candidate < best else best
            if bi >= chunk.n_books:
                continue
            marks = chunk.mark[bi:]
            if symbol in isolated:
                size, price = isolated[symbol]
                mask = marks <= price if size > 0 else marks >= price
                if mask.any():
                    k = bi + int(np.argmax(mask))
                    candidate = (int(chunk.book_t[k]), si, _BOOK, k)
                    best = candidate if best is None or candidate < best else best
            if symbol in slopes:
                previous = engine.markets[symbol].mark
                steps = np.diff(marks, prepend=previous if previous is not None else marks[0])
                cross_delta.append(np.nan_to_num(steps * slopes[symbol]))
                cross_t.append(chunk.book_t[bi:])
                cross_keys.append((np.full(marks.shape[0], si), np.arange(bi, chunk.n_books)))
        if cross_delta:
            t = np.concatenate(cross_t)
            si_all = np.concatenate([k[0] for k in cross_keys])
            row_all = np.concatenate([k[1] for k in cross_keys])
            order = np.lexsort((row_all, si_all, t))
            path = excess + np.cumsum(np.concatenate(cross_delta)[order])
            below = path < 0
            if below.any():
                first = order[int(np.argmax(below))]
                candidate = (int(t[first]), int(si_all[first]), _BOOK, int(row_all[first]))
                best = candidate if best is None or candidate < best else best
        return best

    def _apply_before(self, chunks: dict[str, MarketChunk], cursors: dict[str, list[int]], trigger: Trigger) -> None:
        t, si, kind, row = trigger
        for i, symbol in enumerate(self.symbols):
            chunk = chunks[symbol]
            bi, ti = cursors[symbol]
            if i < si:
                nb = int(np.searchsorted(chunk.book_t, t, side="right"))
                nt = int(np.searchsorted(chunk.trade_t, t, side="right"))
            elif i > si:
                nb = int(np.searchsorted(chunk.book_t, t, side="left"))
                nt = int(np.searchsorted(chunk.trade_t, t, side="left"))
            elif kind == _TRADE:
                nb, nt = int(np.searchsorted(chunk.book_t, t, side="right")), row
            else:
                nb, nt = row, int(np.searchsorted(chunk.trade_t, t, side="left"))
            nb, nt = max(nb, bi), max(nt, ti)
            self._apply(symbol, chunk, bi, nb, ti, nt)
            cursors[symbol] = [nb, nt]

    # --- time --------------------------------------------------------------------------------------

    def _next_fixed(self, a: int) -> int:
        candidates = [(a // MINUTE_MS + 1) * MINUTE_MS, (a // self.sample_ms + 1) * self.sample_ms]
        for params in self.funding.values():
            candidates.append(self._period_start(params, a) + round(params.interval_hours * HOUR_MS))
        return min(candidates)

    def advance(self, until_ms: int) -> AdvanceReport:
        engine = self.engine
        report = AdvanceReport(engine.now_ms, engine.now_ms)
        metrics = engine.metrics
        start_fills, start_liq = metrics.fills, metrics.liquidations
        start_funding, start_samples, start_events = (metrics.funding_settlements, metrics.equity_samples,
                                                      metrics.market_events)
        while engine.now_ms < until_ms:
            if engine.interrupted:
                report.interrupted = True
                break
            a = engine.now_ms
            b = min(until_ms, self._next_fixed(a))
            chunks = {s: self.feed.chunk(s, a, b) for s in self.symbols}
            before = {s: self._premium_now(s) for s in self.funding}
            cursors = {s: [0, 0] for s in self.symbols}
            trigger = self._first_trigger(chunks, cursors)
            while trigger is not None:
                if trigger[2] == _TRADE:
                    # consecutive prints share a transaction (see DeskEngine.print_group)
                    with engine.print_group():
                        while trigger is not None and trigger[2] == _TRADE:
                            self._apply_before(chunks, cursors, trigger)
                            t, si, _, row = trigger
                            symbol = self.symbols[si]
                            chunk = chunks[symbol]
                            engine.now_ms = max(engine.now_ms, t)
                            cursors[symbol][1] = row + 1
                            metrics.market_events += 1
                            engine.on_print(symbol, t, float(chunk.trade_px[row]), float(chunk.trade_sz[row]))
                            if engine.interrupted or engine.group_done:
                                break
                            trigger = self._first_trigger(chunks, cursors)
                    if engine.interrupted:
                        break
                    trigger = self._first_trigger(chunks, cursors)
                    continue
                self._apply_before(chunks, cursors, trigger)
                t, si, _, row = trigger
                symbol = self.symbols[si]
                chunk = chunks[symbol]
                engine.now_ms = max(engine.now_ms, t)
                self._apply(symbol, chunk, row, row + 1, 0, 0)
                cursors[symbol][0] = row + 1
                engine.check_liquidations(t)
                if engine.interrupted:
                    break
                trigger = self._first_trigger(chunks, cursors)
            if engine.interrupted:
                report.interrupted = True
                break
            for symbol in self.symbols:
                chunk = chunks[symbol]
                bi, ti = cursors[symbol]
                self._apply(symbol, chunk, bi, chunk.n_books, ti, chunk.n_trades)
            engine.now_ms = b
            for symbol, params in self.funding.items():
                self._sample_premiums(symbol, params, chunks[symbol], a, b, before[symbol])
            if b % self.sample_ms == 0:
                engine.sample_equity(b)
        report.to_ms = engine.now_ms
        report.fills = metrics.fills - start_fills
        report.liquidations = metrics.liquidations - start_liq
        report.funding_settlements = metrics.funding_settlements - start_funding
        report.equity_samples = metrics.equity_samples - start_samples
        report.market_events = metrics.market_events - start_events
        return report

    def _premium_now(self, symbol: str) -> float:
        market = self.engine.markets[symbol]
        if market.mark is None or not market.index:
            return float("nan")
        return market.mark / market.index - 1.0

    def _sample_premiums(self, symbol: str, params: FundingParameters, chunk: MarketChunk, a: int, b: int,
                         before: float) -> None:
        """Premium samples at the venue's cadence in (a, b]; at a funding time, settle the period first."""
        market = self.engine.markets[symbol]
        step = round(params.sample_seconds * 1000)
        anchor = self._period_start(params, a)
        first = anchor + ((a - anchor) // step + 1) * step
        points = np.arange(first, b + 1, step, dtype=np.int64)
        if points.size == 0:
            return
        values = self._premiums(chunk, points, before).tolist()
        boundary = self._period_start(params, b) == b and int(points[-1]) == b
        head = values[:-1] if boundary else values
        market.premium_samples.extend(v for v in head if v == v)
        if boundary:
            rate, premium = funding_rate(params, market.premium_samples)
            self.engine.settle_funding(symbol, b, rate, premium)
            market.premium_samples = [values[-1]] if values[-1] == values[-1] else []
            market.period_start_ms = b
