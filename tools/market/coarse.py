"""The cheap deterministic pre-pass: the coarse path that gives every block its starting state.

Drawn one hour (`SEGMENT_BLOCKS`) at a time from per-segment streams, in order, carrying the
factor, spread and price states from segment to segment, so the same blocks get the same numbers
whatever the windows are. Per block it fixes: the volatility factors (with the hour-of-week
season) and the spread noise on a 1 s grid, the block's Student-t variance multiplier, its total
diffusive log return (the fine path inside the block is a Brownian bridge to it), its jumps, the
log price at its start, its trade arrival rate (volatility, season and the block's own shock) and
the buy share of its trade signs (signed flow follows the block's move).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import numpy.typing as npt

from quantdesk.tools.market.blocks import BLOCK_MS, BLOCK_SECONDS, SEGMENT_BLOCKS, Stream, stream_rng
from quantdesk.tools.market.params import ModelParams, season_log

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
STEPS_PER_BLOCK = BLOCK_SECONDS
"""The volatility and spread-noise grid is 1 s."""


@dataclass(frozen=True, slots=True)
class CoarseBlocks:
    """Pre-pass state of blocks `[first_block, first_block + n)`; rows are blocks, columns seconds."""

    first_block: int
    log_vol_ratio: FloatArray
    """log(sigma_t / sigma) per second, seasonality included; see ModelParams.vol_level_offset for its level."""
    arrival_log_rate: FloatArray
    """log(trade immigrant rate / mu_0) per second: volatility, the minute's own shock and seasonality."""
    buy_share: FloatArray
    """Per block, the probability that a fresh trade sign is a buy: signed flow follows the block's move."""
    spread_noise: FloatArray
    log_price: FloatArray
    drift: FloatArray
    mix: FloatArray
    diffusion: FloatArray
    jump_start: IntArray
    jump_offset_ms: FloatArray
    jump_size: FloatArray

    @property
    def n_blocks(self) -> int:
        return int(self.log_price.shape[0])

    @property
    def stop_block(self) -> int:
        return self.first_block + self.n_blocks

    def slice(self, first: int, stop: int) -> CoarseBlocks:
        """Blocks `[first, stop)` (absolute indices), which must lie inside this range."""
        if not self.first_block <= first <= stop <= self.stop_block:
            raise ValueError(f"blocks [{first}, {stop}) outside [{self.first_block}, {self.stop_block})")
        a, b = first - self.first_block, stop - self.first_block
        j0, j1 = int(self.jump_start[a]), int(self.jump_start[b])
        return CoarseBlocks(
            first_block=first, log_vol_ratio=self.log_vol_ratio[a:b], arrival_log_rate=self.arrival_log_rate[a:b],
            buy_share=self.buy_share[a:b], spread_noise=self.spread_noise[a:b],
            log_price=self.log_price[a:b], drift=self.drift[a:b], mix=self.mix[a:b],
            diffusion=self.diffusion[a:b], jump_start=self.jump_start[a:b + 1] - j0,
            jump_offset_ms=self.jump_offset_ms[j0:j1], jump_size=self.jump_size[j0:j1])

    @staticmethod
    def concat(parts: list[CoarseBlocks]) -> CoarseBlocks:
        """Consecutive ranges joined into one."""
        for left, right in zip(parts, parts[1:], strict=False):
            if left.stop_block != right.first_block:
                raise ValueError("coarse ranges are not consecutive")
        if len(parts) == 1:
            return parts[0]
        starts = [parts[0].jump_start[:1]]
        offset = 0
        for part in parts:
            starts.append(part.jump_start[1:] + offset)
            offset += int(part.jump_start[-1])
        return CoarseBlocks(
            first_block=parts[0].first_block,
            log_vol_ratio=np.concatenate([p.log_vol_ratio for p in parts]),
            arrival_log_rate=np.concatenate([p.arrival_log_rate for p in parts]),
            buy_share=np.concatenate([p.buy_share for p in parts]),
            spread_noise=np.concatenate([p.spread_noise for p in parts]),
            log_price=np.concatenate([p.log_price for p in parts]),
            drift=np.concatenate([p.drift for p in parts]), mix=np.concatenate([p.mix for p in parts]),
            diffusion=np.concatenate([p.diffusion for p in parts]), jump_start=np.concatenate(starts),
            jump_offset_ms=np.concatenate([p.jump_offset_ms for p in parts]),
            jump_size=np.concatenate([p.jump_size for p in parts]))


LFILTER_FROM_STEPS = 500_000
SHOCK_CAP = 50.0
"""A block's squared shock counts at most this many times its expectation in its trade rate."""


def ar1_path(phi: float, innovations: FloatArray, state: float) -> FloatArray:
    """`y[t] = phi * y[t-1] + innovations[t]` from `y[-1] = state`.

    The same floating-point operations in the same order as `scipy.signal.lfilter([1], [1, -phi], x,
    zi=[phi * state])` (so the same bytes), without importing scipy.signal, which costs a process 0.8 s
    of start-up; the Python recursion costs about 65 ns a step (25 ms per simulated day). Long paths
    (weeks of many assets, as the research agents' data needs) and processes that already loaded
    scipy.signal take lfilter, whose import the work then repays.
    """
    if innovations.shape[0] > LFILTER_FROM_STEPS or "scipy.signal" in sys.modules:
        from scipy.signal import lfilter

        filtered: FloatArray = lfilter([1.0], [1.0, -phi], innovations, zi=[phi * state])[0]
        return filtered
    path = accumulate(innovations.tolist(), lambda y, x: x + phi * y, initial=state)
    next(path)
    return np.fromiter(path, dtype=np.float64, count=innovations.shape[0])


class CoarseProcess:
    """Draws the coarse path segment after segment; each call to `next_segment` continues the last."""

    def __init__(self, params: ModelParams) -> None:
        self._p = params
        rng = stream_rng(params.seed, Stream.INIT, 0)
        # start in the stationary law, so the first hour is as volatile as any other on average
        self._factors = rng.standard_normal(len(params.factor_phi)) * np.asarray(params.factor_sd)
        self._spread = float(rng.standard_normal()) * params.spread_sd
        self._previous_shock = float(rng.standard_normal())
        self._log_price = params.log_price0
        self._previous_diffusion = 0.0
        self._segment = 0

    @property
    def factors(self) -> FloatArray:
        """Current volatility factor states (the stationary draw before the first segment)."""
        factors: FloatArray = self._factors.copy()
        return factors

    def next_segment(self) -> CoarseBlocks:
        """The next `SEGMENT_BLOCKS` blocks."""
        p = self._p
        n, steps = SEGMENT_BLOCKS, SEGMENT_BLOCKS * STEPS_PER_BLOCK
        rng = stream_rng(p.seed, Stream.COARSE, self._segment)
        # fixed draw order: factor noise, block shocks, t mixing, spread noise, jumps
        factor_noise = rng.standard_normal((len(p.factor_phi), steps))
        shocks = rng.standard_normal(n)
        chi2 = rng.chisquare(p.tail_dof, n)
        spread_noise_draws = rng.standard_normal(steps)

        total = np.zeros(steps)
        for k, phi in enumerate(p.factor_phi):
            eta = factor_noise[k] * p.factor_innovation_sd[k]
            if k == p.short_factor and p.leverage != 0.0:
                # leverage: block b's return shock moves the short factor at the start of block b+1; the
                # block's innovation variance is kept (sqrt(1-rho^2) spread + rho * sqrt(60) lumped)
                eta *= math.sqrt(1.0 - p.leverage**2)
                previous = np.concatenate([[self._previous_shock], shocks[:-1]])
                eta[::STEPS_PER_BLOCK] += p.factor_innovation_sd[k] * p.leverage * math.sqrt(STEPS_PER_BLOCK) * previous
            path = ar1_path(phi, eta, float(self._factors[k]))
            self._factors[k] = path[-1]
            total += path
        seconds = p.start_time_ms / 1000.0 + float(self._segment * steps) + np.arange(steps, dtype=np.float64)
        season_vol = season_log(p.season_log_vol, seconds)
        season_rate = season_log(p.season_log_rate, seconds)
        log_vol_ratio = (total - p.vol_level_offset + season_vol).reshape(n, STEPS_PER_BLOCK)
        spread = ar1_path(p.spread_phi, spread_noise_draws * p.spread_innovation_sd, self._spread)
        self._spread = float(spread[-1])

        relative_var = np.exp(2.0 * log_vol_ratio).mean(axis=1)
        integrated_var = p.var_per_second * BLOCK_SECONDS * relative_var
        # jumps arrive in proportion to the variance (E = 1): they cluster in turbulent hours as real ones do
        jump_rate = p.jumps_per_block * relative_var
        counts = rng.poisson(jump_rate) if p.jumps_per_block > 0 else np.zeros(n, np.int64)
        n_jumps = int(counts.sum())
        jump_offset_ms = rng.random(n_jumps) * BLOCK_MS
        jump_size = self._jump_sizes(rng, n_jumps)
        # Student-t(nu) scaled to unit variance, as a normal variance mixture held for one block
        mix = (p.tail_dof - 2.0) / chi2
        diffusion = np.sqrt(mix * integrated_var) * shocks
        jump_total = np.bincount(np.repeat(np.arange(n), counts), weights=jump_size, minlength=n)
        # volume moves with price: part of the block's arrivals follows its own squared move over the move
        # expected from its volatility (mean 1), jumps included; the rest follows the volatility alone
        expected = integrated_var + jump_rate * p.jump_second_moment
        standardized = (diffusion + jump_total) / np.sqrt(expected)
        shock2 = np.minimum(standardized**2, SHOCK_CAP)
        # signed flow: buyers dominate the minutes that rise (logistic(1.7 x) is within 0.01 of Phi(x))
        buy_share = 1.0 / (1.0 + np.exp(-1.7 * p.flow_imbalance * standardized))
        activity = np.log((1.0 - p.volume_shock_weight) + p.volume_shock_weight * shock2)
        gamma, s2 = p.trade_vol_elasticity, p.total_factor_var
        arrival_log_rate = (gamma * total - 0.5 * gamma * gamma * s2 + season_rate).reshape(n, STEPS_PER_BLOCK)
        arrival_log_rate += activity[:, None]
        log_price = np.empty(n)
        drift = np.empty(n)
        x = self._log_price
        last_move = self._previous_diffusion
        for b in range(n):
            log_price[b] = x
            # transient impact: a share of the last block's move comes back in this one
            drift[b] = (p.drift_per_block - p.reversion_per_block * (x - p.log_price0)
                        - p.impact_reversal * last_move)
            last_move = float(diffusion[b])
            x = x + drift[b] + diffusion[b] + jump_total[b]
        self._previous_diffusion = last_move
        self._log_price = x
        self._previous_shock = float(shocks[-1])
        first = self._segment * SEGMENT_BLOCKS
        self._segment += 1
        return CoarseBlocks(
            first_block=first, log_vol_ratio=log_vol_ratio, arrival_log_rate=arrival_log_rate, buy_share=buy_share,
            spread_noise=spread.reshape(n, STEPS_PER_BLOCK),
            log_price=log_price, drift=drift, mix=mix, diffusion=diffusion,
            jump_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            jump_offset_ms=jump_offset_ms, jump_size=jump_size)

    def _jump_sizes(self, rng: np.random.Generator, n_jumps: int) -> FloatArray:
        p = self._p
        if p.jump_model == "merton":
            return p.jump_mean + p.jump_std * rng.standard_normal(n_jumps)
        if p.jump_model == "kou":
            up = rng.random(n_jumps) < p.kou_up_probability
            size = rng.standard_exponential(n_jumps)
            return np.where(up, p.kou_up_mean * size, -p.kou_down_mean * size)
        return np.zeros(n_jumps)


class CoarsePath:
    """Serves block ranges of the pre-pass in increasing order, keeping only what later ranges still need."""

    def __init__(self, params: ModelParams) -> None:
        self._process = CoarseProcess(params)
        self._segments: list[CoarseBlocks] = []
        self._first_kept = 0

    def blocks(self, first: int, stop: int) -> CoarseBlocks:
        """Blocks `[first, stop)`, `0 <= first`; `first` must not precede an earlier `release`."""
        if first < self._first_kept:
            raise ValueError(f"block {first} was released")
        while not self._segments or self._segments[-1].stop_block < stop:
            self._segments.append(self._process.next_segment())
        parts = [s for s in self._segments if s.stop_block > first and s.first_block < stop]
        return CoarseBlocks.concat(parts).slice(first, stop)

    def log_vol_ratio(self, first: int, stop: int) -> FloatArray:
        """Volatility of blocks `[first, stop)`; blocks before 0 (the Hawkes warm-up) repeat the first second."""
        head = max(0, -first)
        body = self.blocks(max(first, 0), stop).log_vol_ratio if stop > max(first, 0) else np.empty((0, 60))
        if head == 0:
            return body
        start_value = self.blocks(0, 1).log_vol_ratio[0, 0]
        return np.concatenate([np.full((head, STEPS_PER_BLOCK), start_value), body])

    def arrival_log_rate(self, first: int, stop: int) -> FloatArray:
        """Trade arrival log rates of blocks `[first, stop)`; warm-up blocks (before 0) repeat block 0's first."""
        head = max(0, -first)
        body = self.blocks(max(first, 0), stop).arrival_log_rate if stop > max(first, 0) else np.empty((0, 60))
        if head == 0:
            return body
        start_value = self.blocks(0, 1).arrival_log_rate[0, 0]
        return np.concatenate([np.full((head, STEPS_PER_BLOCK), start_value), body])

    def release(self, before: int) -> None:
        """Forget segments that end at or before block `before`."""
        self._first_kept = max(self._first_kept, before)
        self._segments = [s for s in self._segments if s.stop_block > before]
