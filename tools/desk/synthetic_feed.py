"""The embedded market: tools/market's generator running from a seed, spot and perpetual per asset.

Per asset one generated order flow (log-SV price, Hawkes trades, an L2 book every second) is the spot
market; the perpetual trades the same flow at spot x (1 + premium), the premium following
tools/funding's Ornstein-Uhlenbeck process at the venue's sampling cadence (5 s on binance). Index =
spot mid; mark = index x (1 + premium). The generator's manifests last at most 7 days, so time is cut
into 7-day epochs, epoch k starting where epoch k - 1's pre-pass ends, each with its own derived seed:
any instant's market is a pure function of (seed, origin, time), whatever was asked before.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest
from quantdesk.tools.desk.feed import FloatArray, IntArray, MarketChunk, empty_chunk
from quantdesk.tools.desk.instruments import Instrument, InstrumentTable, synthetic_markets
from quantdesk.tools.funding.premium import PremiumDynamics, PremiumProcess, clip_premium
from quantdesk.tools.funding.schedule import align_period_start
from quantdesk.tools.market.blocks import BLOCK_MS
from quantdesk.tools.market.coarse import CoarsePath
from quantdesk.tools.market.params import ModelParams, derive_params
from quantdesk.tools.market.window import generate_events, window_inputs
from quantdesk.tools.venues.catalog import FundingParameters

EPOCH_SECONDS = 604_800
EPOCH_BLOCKS = EPOCH_SECONDS * 1000 // BLOCK_MS
UNIT_BLOCKS = 10
"""Blocks generated together (the generator's output does not depend on it; the cost per block does)."""
CACHED_UNITS = 24
CACHED_PERIODS = 8
MAX_SEED = 2**53 - 1
"""Seeds stay exact in JSON (the manifest bounds them the same way)."""


def derived_seed(seed: int, *key: int) -> int:
    words = np.random.SeedSequence(seed, spawn_key=key).generate_state(2, np.uint32)
    return (int(words[0]) << 32 | int(words[1])) & MAX_SEED


class PremiumPath:
    """The premium samples of one perpetual, one funding period at a time from the schedule's anchor."""

    def __init__(self, funding: FundingParameters, seed: int, anchor_ms: int, dynamics: PremiumDynamics) -> None:
        self.step_ms = round(funding.sample_seconds * 1000)
        self.per_period = funding.samples_per_period
        self.period_ms = self.step_ms * self.per_period
        self.anchor_ms = anchor_ms
        self._seed, self._dynamics, self._step_seconds = seed, dynamics, funding.sample_seconds
        self._process = PremiumProcess(dynamics, funding.sample_seconds, seed)
        self._next = 0
        self._cache: OrderedDict[int, FloatArray] = OrderedDict()

    def period(self, k: int) -> FloatArray:
        cached = self._cache.get(k)
        if cached is not None:
            self._cache.move_to_end(k)
            return cached
        if k < self._next:  # an earlier period: replay the process from its start (fast, vectorized)
            self._process = PremiumProcess(self._dynamics, self._step_seconds, self._seed)
            self._next = 0
        samples = clip_premium(self._process.advance(self.per_period))
        while self._next < k:
            self._next += 1
            samples = clip_premium(self._process.advance(self.per_period))
        self._next = k + 1
        self._cache[k] = samples
        while len(self._cache) > CACHED_PERIODS:
            self._cache.popitem(last=False)
        return samples

    def at(self, t_ms: IntArray) -> FloatArray:
        """The premium in force at each time (a sample holds until the next one)."""
        index = (t_ms - self.anchor_ms) // self.step_ms
        periods = index // self.per_period
        out = np.empty(t_ms.shape[0], dtype=np.float64)
        for k in np.unique(periods).tolist():
            mask = periods == k
            out[mask] = self.period(int(k))[index[mask] - k * self.per_period]
        return out


@dataclass(frozen=True, slots=True)
class _Epoch:
    params: ModelParams
    path: CoarsePath
    start_ms: int


class _AssetMarket:
    """One asset's spot and perpetual, generated in units of blocks and kept in a small cache."""

    def __init__(self, base: str, index: int, spot: Instrument | None, perp: Instrument | None, seed: int,
                 origin_ms: int, settings: dict[str, Any], common: dict[str, Any],
                 premium: dict[str, float]) -> None:
        self.base, self.index, self.spot, self.perp = base, index, spot, perp
        self.seed, self.origin_ms = seed, origin_ms
        self.settings = {**common, **settings}
        self.levels = int(self.settings["num_levels"])
        self._epochs: dict[int, _Epoch] = {}
        self._initial_prices: dict[int, float] = {0: float(self.settings["initial_price"])}
        self._units: OrderedDict[tuple[int, int], tuple[MarketChunk, MarketChunk]] = OrderedDict()
        self.premium: PremiumPath | None = None
        if perp is not None and perp.funding is not None:
            f = perp.funding
            dynamics = PremiumDynamics(initial=premium["initial_bps"] * 1e-4,
                                       long_run_mean=premium["long_run_mean_bps"] * 1e-4,
                                       mean_reversion_per_hour=premium["mean_reversion_per_hour"],
                                       volatility_per_sqrt_hour=premium["volatility_bps"] * 1e-4)
            anchor = align_period_start(origin_ms, f.interval_hours, f.schedule_anchor_utc_hour)
            self.premium = PremiumPath(f, derived_seed(seed, 1000 + index), anchor, dynamics)

    def _manifest(self, k: int) -> SimulationManifest:
        s = self.settings
        return SimulationManifest(
            symbol=self.base, seed=derived_seed(self.seed, self.index, k),
            start_time_ms=self.origin_ms + k * EPOCH_SECONDS * 1000, duration_seconds=EPOCH_SECONDS,
            initial_price=self._initial_price(k), tick_size=s["tick_size"], lot_size=s["lot_size"],
            volatility_annual=s["volatility_annual"], base_spread_bps=s["base_spread_bps"],
            trade_rate_per_second=s["trade_rate_per_second"], trade_size_median=s["trade_size_median"],
            depth_level_size=s["depth_level_size"], book_interval_ms=s["book_interval_ms"], num_levels=self.levels,
            jump_intensity_per_hour=s["jump_intensity_per_hour"], jump_std_bps=s["jump_std_bps"])

    def _initial_price(self, k: int) -> float:
        if k not in self._initial_prices:
            previous = derive_params(self._manifest(k - 1))
            walker = CoarsePath(previous)
            for block in range(0, EPOCH_BLOCKS, 60):
                walker.blocks(block, block + 1)
                walker.release(block)
            self._initial_prices[k] = math.exp(float(walker.blocks(EPOCH_BLOCKS, EPOCH_BLOCKS + 1).log_price[0]))
        return self._initial_prices[k]

    def _epoch(self, k: int) -> _Epoch:
        epoch = self._epochs.get(k)
        if epoch is None:
            params = derive_params(self._manifest(k))
            epoch = self._epochs[k] = _Epoch(params, CoarsePath(params), self.origin_ms + k * EPOCH_SECONDS * 1000)
            for old in [e for e in self._epochs if e < k - 1]:
                del self._epochs[old]
        return epoch

    def _unit(self, k: int, unit: int) -> tuple[MarketChunk, MarketChunk]:
        key = (k, unit)
        cached = self._units.get(key)
        if cached is not None:
            self._units.move_to_end(key)
            return cached
        epoch = self._epoch(k)
        p = epoch.params
        first = unit * UNIT_BLOCKS
        need = first - p.lookback_blocks - 2
        path = epoch.path
        try:
            inputs = window_inputs(path, p, first, first + UNIT_BLOCKS)
        except ValueError:  # that part of the pre-pass was released: walk it again
            path = CoarsePath(p)
            self._epochs[k] = _Epoch(p, path, epoch.start_ms)
            inputs = window_inputs(path, p, first, first + UNIT_BLOCKS)
        path.release(max(0, need))
        events = generate_events(p, inputs, cut_at_end=False)
        chunks = self._to_chunks(epoch, events.books.offset_ms, events.books.bid_ticks, events.books.bid_lots,
                                 events.books.ask_ticks, events.books.ask_lots, events.trades.offset_ms,
                                 events.trades.price_ticks, events.trades.lots, events.trades.buy)
        self._units[key] = chunks
        while len(self._units) > CACHED_UNITS:
            self._units.popitem(last=False)
        return chunks

    def _to_chunks(self, epoch: _Epoch, book_off: IntArray, bid_ticks: IntArray, bid_lots: IntArray,
                   ask_ticks: IntArray, ask_lots: IntArray, trade_off: IntArray, trade_ticks: IntArray,
                   trade_lots: IntArray, buy: Any) -> tuple[MarketChunk, MarketChunk]:
        p = epoch.params
        decimals = max(0, -int(math.floor(math.log10(p.tick_size) + 1e-9)))
        lot_decimals = max(0, -int(math.floor(math.log10(p.lot_size) + 1e-9)))
        book_t = book_off + epoch.start_ms
        bid_px = np.round(bid_ticks * p.tick_size, decimals)
        ask_px = np.round(ask_ticks * p.tick_size, decimals)
        bid_sz = np.round(bid_lots * p.lot_size, lot_decimals)
        ask_sz = np.round(ask_lots * p.lot_size, lot_decimals)
        trade_t = trade_off + epoch.start_ms
        trade_px = np.round(trade_ticks * p.tick_size, decimals)
        trade_sz = np.round(trade_lots * p.lot_size, lot_decimals)
        mid = (bid_px[:, 0] + ask_px[:, 0]) / 2.0
        spot = MarketChunk(self.spot.symbol if self.spot else "", book_t, bid_px, bid_sz, ask_px, ask_sz, mid, mid,
                           trade_t, trade_px, trade_sz, np.asarray(buy, dtype=np.bool_))
        if self.perp is None or self.premium is None:
            return spot, spot
        tick, pdec = self.perp.tick_size, self.perp.price_decimals
        book_premium = self.premium.at(book_t)[:, None]
        perp_bid = np.round(np.floor(bid_px * (1.0 + book_premium) / tick + 1e-9) * tick, pdec)
        perp_ask = np.round(np.ceil(ask_px * (1.0 + book_premium) / tick - 1e-9) * tick, pdec)
        perp_trade = np.round(np.rint(trade_px * (1.0 + self.premium.at(trade_t)) / tick) * tick, pdec)
        mark = mid * (1.0 + book_premium[:, 0])
        perp = MarketChunk(self.perp.symbol, book_t, perp_bid, bid_sz, perp_ask, ask_sz, mark, mid, trade_t,
                           perp_trade, trade_sz, spot.trade_buy)
        return spot, perp

    def chunk(self, perp: bool, after_ms: int, until_ms: int) -> MarketChunk:
        symbol = (self.perp if perp else self.spot).symbol  # type: ignore[union-attr]
        start = max(after_ms + 1, self.origin_ms)
        if until_ms < start:
            return empty_chunk(symbol, self.levels)
        parts = []
        first_block = (start - self.origin_ms) // BLOCK_MS
        last_block = (until_ms - self.origin_ms) // BLOCK_MS
        unit_index = first_block // UNIT_BLOCKS
        while unit_index * UNIT_BLOCKS <= last_block:
            k, unit = divmod(unit_index * UNIT_BLOCKS, EPOCH_BLOCKS)
            pair = self._unit(k, unit // UNIT_BLOCKS)
            parts.append((pair[1] if perp else pair[0]).window(after_ms, until_ms))
            unit_index += 1
        return MarketChunk.concat(symbol, parts, self.levels)

    def latest(self, perp: bool, at_ms: int) -> MarketChunk:
        books = trades = self.chunk(perp, at_ms - BLOCK_MS, at_ms)
        back = 1
        while trades.n_trades == 0 and back <= 30 and at_ms - back * BLOCK_MS > self.origin_ms:
            trades = self.chunk(perp, at_ms - (back + 1) * BLOCK_MS, at_ms - back * BLOCK_MS)
            back += 1
        return _last_rows(books, trades)


def _last_rows(books: MarketChunk, trades: MarketChunk) -> MarketChunk:
    b = slice(books.n_books - 1, books.n_books) if books.n_books else slice(0, 0)
    t = slice(trades.n_trades - 1, trades.n_trades) if trades.n_trades else slice(0, 0)
    return MarketChunk(books.symbol, books.book_t[b], books.bid_px[b], books.bid_sz[b], books.ask_px[b],
                       books.ask_sz[b], books.mark[b], books.index[b], trades.trade_t[t], trades.trade_px[t],
                       trades.trade_sz[t], trades.trade_buy[t])


class SyntheticFeed:
    data_source = "synthetic"

    def __init__(self, instruments: InstrumentTable, seed: int, origin_ms: int) -> None:
        self.seed = seed
        self.origin_ms = origin_ms - origin_ms % BLOCK_MS
        markets = synthetic_markets()
        self._by_symbol: dict[str, tuple[_AssetMarket, bool]] = {}
        bases = list(dict.fromkeys(i.base for i in instruments.instruments))
        for n, base in enumerate(bases):
            spot = next((i for i in instruments.instruments if i.base == base and i.kind == "spot"), None)
            perp = next((i for i in instruments.instruments if i.base == base and i.is_perpetual), None)
            if base not in markets or spot is None:
                continue
            asset = _AssetMarket(base, n, spot, perp, seed, self.origin_ms, markets[base], markets["common"],
                                 markets["premium"])
            self._by_symbol[spot.symbol] = (asset, False)
            if perp is not None:
                self._by_symbol[perp.symbol] = (asset, True)

    def symbols(self) -> tuple[str, ...]:
        return tuple(self._by_symbol)

    def chunk(self, symbol: str, after_ms: int, until_ms: int) -> MarketChunk:
        asset, perp = self._by_symbol[symbol]
        return asset.chunk(perp, after_ms, until_ms)

    def latest(self, symbol: str, at_ms: int) -> MarketChunk:
        asset, perp = self._by_symbol[symbol]
        return asset.latest(perp, at_ms)

    def describe(self) -> dict[str, Any]:
        return {"data_source": self.data_source, "seed": self.seed, "origin_ms": self.origin_ms,
                "model_version": MODEL_VERSION, "symbols": list(self._by_symbol),
                "book_interval_ms": synthetic_markets()["common"]["book_interval_ms"],
                "note": "Simulated by quantdesk's generator; spot and perpetual share one order flow and the "
                        "perpetual trades at a simulated premium."}

    def close(self) -> None:
        self._by_symbol.clear()

