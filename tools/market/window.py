"""One window of blocks turned into events: arrivals, trade attributes and book snapshots, each in time order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quantdesk.tools.market.arrivals import trade_times_ms
from quantdesk.tools.market.blocks import BLOCK_MS
from quantdesk.tools.market.book import BookSnapshots, build_snapshots
from quantdesk.tools.market.coarse import CoarseBlocks, CoarsePath
from quantdesk.tools.market.params import ModelParams
from quantdesk.tools.market.table import TradeRows
from quantdesk.tools.market.trades import (
    draw_sides,
    draw_trades,
    latency_ms,
    resolve_sides,
    trade_lots,
    walk_book,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class WindowInputs:
    """What a window needs from the pre-pass: its blocks, and the volatility of the lookback before it."""

    coarse: CoarseBlocks
    lookback_arrival_log_rate: FloatArray
    """Blocks `[first_block - lookback_blocks - 1, first_block)`, for the Hawkes clusters born there."""
    previous_buy_share: float
    """Buy share of the block before the window (its sides decide the side the window starts from)."""

    @property
    def first_block(self) -> int:
        return self.coarse.first_block

    @property
    def stop_block(self) -> int:
        return self.coarse.stop_block


    def part(self, first_block: int, stop_block: int) -> WindowInputs:
        """The inputs of blocks `[first_block, stop_block)` inside this window: what `window_inputs` would cut."""
        lookback = self.lookback_arrival_log_rate.shape[0]
        ratio = np.concatenate([self.lookback_arrival_log_rate, self.coarse.arrival_log_rate])
        start = first_block - self.first_block
        previous = float(self.coarse.buy_share[start - 1]) if start > 0 else self.previous_buy_share
        return WindowInputs(coarse=self.coarse.slice(first_block, stop_block),
                            lookback_arrival_log_rate=ratio[start:start + lookback], previous_buy_share=previous)


def window_inputs(path: CoarsePath, params: ModelParams, first_block: int, stop_block: int) -> WindowInputs:
    """Cut a window's inputs out of the streaming pre-pass."""
    lookback = params.lookback_blocks + 1
    previous = float(path.blocks(first_block - 1, first_block).buy_share[0]) if first_block > 0 else 0.5
    return WindowInputs(coarse=path.blocks(first_block, stop_block),
                        lookback_arrival_log_rate=path.arrival_log_rate(first_block - lookback, first_block),
                        previous_buy_share=previous)


def _trade_rows(params: ModelParams, inputs: WindowInputs, book_bid: tuple[IntArray, IntArray],
                book_ask: tuple[IntArray, IntArray]) -> TradeRows:
    p = params
    first, stop = inputs.first_block, inputs.stop_block
    log_rate = np.concatenate([inputs.lookback_arrival_log_rate, inputs.coarse.arrival_log_rate])
    # one block before the window too: its sides decide the side the window starts from
    times = trade_times_ms(p, first - 1, stop, log_rate)
    counts = np.bincount(times // BLOCK_MS - (first - 1), minlength=stop - first + 1)
    _, previous, _ = draw_sides(p, first - 1, int(counts[0]), inputs.previous_buy_share)
    last_fresh = previous.last_fresh_buy()
    shares = inputs.coarse.buy_share.tolist()
    draws = [draw_trades(p, block, int(counts[i + 1]), shares[i]) for i, block in enumerate(range(first, stop))]
    buys = []
    for block_draws in draws:
        buys.append(resolve_sides(block_draws.sides, last_fresh))
        last_fresh = block_draws.sides.last_fresh_buy()
    offsets = times[int(counts[0]):]
    buy = np.concatenate(buys)
    lot = trade_lots(p, np.concatenate([d.size_normal for d in draws]), np.concatenate([d.tail_uniform for d in draws]))
    latency = latency_ms(p.latency_median_ms, p.latency_log_sd, np.concatenate([d.latency_normal for d in draws]))
    trade_block = offsets // BLOCK_MS
    # the book in force: the block's last snapshot at or before the trade (snapshots restart per block)
    in_block = np.minimum((offsets - trade_block * BLOCK_MS) // p.book_interval_ms, p.snapshots_per_block - 1)
    rows = (trade_block - first) * p.snapshots_per_block + in_block
    price = np.empty(offsets.size, dtype=np.int64)
    buyers, sellers = np.flatnonzero(buy), np.flatnonzero(~buy)
    price[buyers] = walk_book(lot[buyers], rows[buyers], book_ask[1], book_ask[0])
    price[sellers] = walk_book(lot[sellers], rows[sellers], book_bid[1], book_bid[0])
    return TradeRows(offset_ms=offsets, latency_ms=latency, book_row=rows, buy=buy, price_ticks=price,
                     lots=lot, first_block=first, block_counts=counts[1:])


@dataclass(frozen=True, slots=True)
class WindowEvents:
    """A window's book snapshots and trades, each in time order; `trades.book_row` indexes `books`."""

    books: BookSnapshots
    trades: TradeRows

    @property
    def n_rows(self) -> int:
        return self.books.n_rows + self.trades.n_rows

    @staticmethod
    def concat(parts: list[WindowEvents]) -> WindowEvents:
        """The events of consecutive block runs joined into one."""
        return WindowEvents(books=BookSnapshots.concat([p.books for p in parts]),
                            trades=TradeRows.concat([p.trades for p in parts], [p.books.n_rows for p in parts]))

    def between(self, start_ms: int, stop_ms: int) -> WindowEvents:
        """The events at offsets `[start_ms, stop_ms)` (ms since the run start); `start_ms` is a block start."""
        a, b = np.searchsorted(self.books.offset_ms, [start_ms, max(start_ms, stop_ms)], side="left").tolist()
        return WindowEvents(books=self.books.rows(a, b), trades=self.trades.between(start_ms, stop_ms, a))


def generate_events(params: ModelParams, inputs: WindowInputs, *, cut_at_end: bool = True,
                    books_out: BookSnapshots | None = None) -> WindowEvents:
    """Every event of the window's blocks; cut at the run's end unless told. The books go into `books_out` if given."""
    books = build_snapshots(params, inputs.coarse, books_out)
    trades = _trade_rows(params, inputs, (books.bid_ticks, books.bid_lots), (books.ask_ticks, books.ask_lots))
    events = WindowEvents(books=books, trades=trades)
    if cut_at_end and inputs.stop_block * BLOCK_MS > params.duration_ms:
        events = events.between(inputs.first_block * BLOCK_MS, params.duration_ms)
    return events
