"""The mid-price path at snapshot times and the L2 book snapshots built on it.

Inside a block the log mid is a Brownian bridge from the block's start price to its pre-drawn
end: Gaussian increments with variance mix_b * integral(sigma_t^2 dt), shifted in proportion to
their variance so they sum to the block's diffusive return (the exact conditional law), plus the
block's drift (linear in time) and its jumps. Snapshots restart at every block start, every
`book_interval_ms` (the last gap of a block is shorter when the interval does not divide 60 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quantdesk.tools.market.blocks import BLOCK_MS, Stream, stream_rng
from quantdesk.tools.market.coarse import CoarseBlocks
from quantdesk.tools.market.params import ModelParams
from quantdesk.tools.market.trades import latency_ms

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BookSnapshots:
    """Snapshots of a run of blocks, block-major; prices in ticks, sizes in lots, best first."""

    offset_ms: IntArray
    latency_ms: IntArray
    bid_ticks: IntArray
    ask_ticks: IntArray
    bid_lots: IntArray
    ask_lots: IntArray

    @property
    def n_rows(self) -> int:
        return int(self.offset_ms.shape[0])

    @staticmethod
    def allocate(n_rows: int, levels: int) -> BookSnapshots:
        """Room for `n_rows` snapshots, for `build_snapshots(..., out=)` to fill in runs (no copies to join them)."""
        return BookSnapshots(offset_ms=np.empty(n_rows, np.int64), latency_ms=np.empty(n_rows, np.int64),
                             bid_ticks=np.empty((n_rows, levels), np.int64),
                             ask_ticks=np.empty((n_rows, levels), np.int64),
                             bid_lots=np.empty((n_rows, levels), np.int64),
                             ask_lots=np.empty((n_rows, levels), np.int64))

    @staticmethod
    def concat(parts: list[BookSnapshots]) -> BookSnapshots:
        """Consecutive runs of snapshots joined into one."""
        if len(parts) == 1:
            return parts[0]
        return BookSnapshots(*(np.concatenate([getattr(part, name) for part in parts]) for name in
                               ("offset_ms", "latency_ms", "bid_ticks", "ask_ticks", "bid_lots", "ask_lots")))

    def rows(self, start: int, stop: int) -> BookSnapshots:
        """Snapshots `[start, stop)` (views)."""
        return BookSnapshots(offset_ms=self.offset_ms[start:stop], latency_ms=self.latency_ms[start:stop],
                             bid_ticks=self.bid_ticks[start:stop], ask_ticks=self.ask_ticks[start:stop],
                             bid_lots=self.bid_lots[start:stop], ask_lots=self.ask_lots[start:stop])


def snapshot_offsets(params: ModelParams) -> IntArray:
    """Offsets (ms) of the snapshots inside any block."""
    return np.arange(params.snapshots_per_block, dtype=np.int64) * params.book_interval_ms


def _integrated_variance(variance: FloatArray, offsets: IntArray) -> FloatArray:
    """Integral of the per-second variance from the block start to each offset (exact: piecewise constant)."""
    cumulative = np.concatenate([np.zeros((variance.shape[0], 1)), np.cumsum(variance, axis=1)], axis=1)
    padded = np.concatenate([variance, np.zeros((variance.shape[0], 1))], axis=1)
    second = offsets // 1000
    fraction = (offsets % 1000) / 1000.0
    result: FloatArray = cumulative[:, second] + fraction * padded[:, second]
    return result


def mid_log_path(params: ModelParams, coarse: CoarseBlocks, normals: FloatArray) -> FloatArray:
    """Log mid at each snapshot, shape (blocks, snapshots); `normals` holds one N(0,1) per snapshot gap."""
    p = params
    offsets = snapshot_offsets(p)
    ends = np.append(offsets[1:], BLOCK_MS)
    variance = p.var_per_second * np.exp(2.0 * coarse.log_vol_ratio)
    gap_var = coarse.mix[:, None] * (_integrated_variance(variance, ends) - _integrated_variance(variance, offsets))
    steps = np.sqrt(gap_var) * normals
    # bridge to the pre-drawn block total: for Gaussian steps this is the exact conditional law
    steps += gap_var * ((coarse.diffusion - steps.sum(axis=1)) / gap_var.sum(axis=1))[:, None]
    path = np.zeros_like(steps)
    np.cumsum(steps[:, :-1], axis=1, out=path[:, 1:])
    path += coarse.log_price[:, None] + coarse.drift[:, None] * (offsets / BLOCK_MS)
    if coarse.jump_size.size:
        # a jump shows from the first snapshot at or after it
        block = np.repeat(np.arange(coarse.n_blocks), np.diff(coarse.jump_start))
        first = np.ceil(coarse.jump_offset_ms / p.book_interval_ms).astype(np.int64)
        jumps = np.zeros((coarse.n_blocks, offsets.size + 1))
        np.add.at(jumps, (block, first), coarse.jump_size)
        path += np.cumsum(jumps, axis=1)[:, :-1]
    return path


def _depth_lots(params: ModelParams, normals: FloatArray, out: IntArray | None = None) -> IntArray:
    """Level sizes in lots from N(0,1) draws shaped (..., levels): hump-shaped mean times mean-one lognormal noise."""
    sd = params.depth_noise_sd
    log_mean = np.log(np.asarray(params.depth_mean_lots)) - 0.5 * sd * sd
    size = normals * sd
    size += log_mean
    np.exp(size, out=size)
    np.rint(size, out=size)
    np.maximum(size, 1.0, out=size)
    if out is not None:
        out[...] = size.reshape(-1, params.num_levels)  # whole numbers: the cast is exact, as astype's is
        return out
    lots: IntArray = size.astype(np.int64).reshape(-1, params.num_levels)
    return lots


def build_snapshots(params: ModelParams, coarse: CoarseBlocks, out: BookSnapshots | None = None) -> BookSnapshots:
    """The book snapshots of the blocks in `coarse`, each block from its own PATH stream (written into `out`)."""
    p = params
    n_blocks, n_snap, levels = coarse.n_blocks, p.snapshots_per_block, p.num_levels
    # per block, one draw in a fixed layout: path gaps, latencies, bid depth, ask depth
    per_block = n_snap * (2 + 2 * levels)
    draws = np.empty((n_blocks, per_block))
    for i in range(n_blocks):
        stream_rng(p.seed, Stream.PATH, coarse.first_block + i).standard_normal(out=draws[i])
    side = n_snap * levels
    bid_normals = draws[:, 2 * n_snap:2 * n_snap + side].reshape(n_blocks, n_snap, levels)
    ask_normals = draws[:, 2 * n_snap + side:].reshape(n_blocks, n_snap, levels)

    log_mid = mid_log_path(p, coarse, draws[:, :n_snap]).reshape(-1)
    offsets = snapshot_offsets(p)
    second = offsets // 1000
    log_spread = (np.log(p.base_spread_bps * 1e-4) + p.spread_vol_elasticity * coarse.log_vol_ratio[:, second]
                  + coarse.spread_noise[:, second]).reshape(-1)
    mid_ticks = np.exp(log_mid) / p.tick_size
    spread = np.maximum(np.rint(np.exp(log_spread) * mid_ticks), 1.0).astype(np.int64)
    depth = np.arange(levels, dtype=np.int64) * p.level_step_ticks
    # keep every bid level on a positive tick, even for a price a few ticks above zero
    best_bid = np.maximum(np.floor(mid_ticks - spread / 2.0 + 0.5).astype(np.int64), 1 + depth[-1])
    best_ask = best_bid + spread
    block_offsets = (np.arange(coarse.first_block, coarse.stop_block, dtype=np.int64) * BLOCK_MS)[:, None]
    offset_ms = (block_offsets + offsets[None, :]).reshape(-1)
    latency = latency_ms(p.latency_median_ms, p.latency_log_sd, draws[:, n_snap:2 * n_snap].reshape(-1))
    if out is None:
        return BookSnapshots(
            offset_ms=offset_ms, latency_ms=latency,
            bid_ticks=best_bid[:, None] - depth[None, :], ask_ticks=best_ask[:, None] + depth[None, :],
            bid_lots=_depth_lots(p, bid_normals), ask_lots=_depth_lots(p, ask_normals))
    out.offset_ms[...] = offset_ms
    out.latency_ms[...] = latency
    np.subtract(best_bid[:, None], depth[None, :], out=out.bid_ticks)
    np.add(best_ask[:, None], depth[None, :], out=out.ask_ticks)
    _depth_lots(p, bid_normals, out.bid_lots)
    _depth_lots(p, ask_normals, out.ask_lots)
    return out
