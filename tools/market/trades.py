"""Per-trade attributes: aggressor side with short-range persistence, sizes, latency, print price, ids.

Each block draws its trades' attributes from its own stream in a fixed order (boundary bit,
side/tail uniforms, size/latency normals), so block b-1's sides can be replayed cheaply to find
the side block b starts from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quantdesk.tools.market.blocks import Stream, stream_rng
from quantdesk.tools.market.params import ModelParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_TRIPLETS = np.array([[ord(c) for c in f"{i:03d}"] for i in range(1000)], dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class SideDraws:
    """The side uniforms of one block: `fresh` trades draw a new side, the others repeat the last one."""

    boundary_buy: bool
    fresh: BoolArray
    fresh_buy: BoolArray

    def last_fresh_buy(self) -> bool | None:
        """Side of the block's last freshly drawn trade, or None if every trade repeated."""
        index = np.flatnonzero(self.fresh)
        return bool(self.fresh_buy[index[-1]]) if index.size else None


@dataclass(frozen=True, slots=True)
class TradeDraws:
    """Everything random about the trades of one block except their times."""

    sides: SideDraws
    tail_uniform: FloatArray
    size_normal: FloatArray
    latency_normal: FloatArray


def draw_sides(params: ModelParams, block: int, n: int,
               buy_share: float = 0.5) -> tuple[np.random.Generator, SideDraws, FloatArray]:
    """The block's side draws (fresh signs buy with probability `buy_share`), its tail uniforms, and its stream."""
    rng = stream_rng(params.seed, Stream.TRADES, block)
    boundary = bool(rng.random() < 0.5)
    uniforms = rng.random((n, 2))
    keep = 1.0 - params.side_persistence
    # one uniform decides both: fresh with probability 1 - persistence, then buy with the block's buy share
    side_u = uniforms[:, 0]
    draws = SideDraws(boundary_buy=boundary, fresh=side_u < keep, fresh_buy=side_u < buy_share * keep)
    return rng, draws, uniforms[:, 1]


def draw_trades(params: ModelParams, block: int, n: int, buy_share: float = 0.5) -> TradeDraws:
    """All draws of the block's `n` trades."""
    rng, sides, tail_uniform = draw_sides(params, block, n, buy_share)
    normals = rng.standard_normal((n, 2))
    return TradeDraws(sides=sides, tail_uniform=tail_uniform, size_normal=normals[:, 0],
                      latency_normal=normals[:, 1])


def resolve_sides(draws: SideDraws, previous_last_fresh: bool | None) -> BoolArray:
    """True = buy. A repeat copies the previous trade; the first trades continue the previous block's side."""
    start = draws.boundary_buy if previous_last_fresh is None else previous_last_fresh
    n = draws.fresh.shape[0]
    last = np.maximum.accumulate(np.where(draws.fresh, np.arange(n), -1)) if n else np.zeros(0, np.int64)
    return np.where(last >= 0, draws.fresh_buy[np.maximum(last, 0)], start)


def trade_lots(params: ModelParams, size_normal: FloatArray, tail_uniform: FloatArray) -> IntArray:
    """Sizes in lots: lognormal body, Pareto tail above the body's 95th percentile, at least one lot."""
    p = params
    body = p.size_median_lots * np.exp(p.size_log_sd * size_normal)
    if p.tail_probability > 0.0:
        u = tail_uniform
        tail = u < p.tail_probability
        # conditional on the tail, u / p is uniform on (0, 1)
        scaled = np.maximum(u / p.tail_probability, 1e-300)
        body = np.where(tail, p.tail_scale_lots * scaled ** (-1.0 / p.tail_alpha), body)
    return np.maximum(np.rint(np.minimum(body, p.max_trade_lots)), 1.0).astype(np.int64)


def latency_ms(median_ms: float, log_sd: float, normals: FloatArray) -> IntArray:
    """Capture latency in whole ms, lognormal around the median, never negative."""
    return np.floor(median_ms * np.exp(log_sd * normals)).astype(np.int64)


def walk_book(lots: IntArray, rows: IntArray, level_lots: IntArray, level_ticks: IntArray) -> IntArray:
    """Print price of each trade: the level where the book's cumulative size first covers the trade.

    `rows` picks each trade's book in force from `level_lots`/`level_ticks` (one side, best first).
    A trade bigger than the whole book prints at the deepest level.
    """
    out: IntArray = level_ticks[rows, 0]
    deeper = np.flatnonzero(lots > level_lots[rows, 0])
    if deeper.size:
        deep_rows = rows[deeper]
        cumulative = np.cumsum(level_lots[deep_rows], axis=1)
        level = np.minimum((cumulative < lots[deeper, None]).sum(axis=1), level_lots.shape[1] - 1)
        out[deeper] = level_ticks[deep_rows, level]
    return out


_padded_cache: list[npt.NDArray[np.uint8]] = [np.zeros((0, 9), dtype=np.uint8)]


def _padded_indices(count: int) -> npt.NDArray[np.uint8]:
    """ASCII of `f"{i:09d}"` for i < count, from a table grown on demand (ids are block prefix + index)."""
    table = _padded_cache[0]
    if table.shape[0] < count:
        size = max(count, 2 * table.shape[0], 65_536)
        index = np.arange(size)
        table = np.concatenate([_TRIPLETS[index // 1_000_000], _TRIPLETS[(index // 1000) % 1000],
                                _TRIPLETS[index % 1000]], axis=1)
        _padded_cache[0] = table
    return table[:count]


def trade_id_strings(blocks: IntArray, counts: IntArray) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
    """Arrow string buffers (offsets, UTF-8 bytes) of the ids of `counts[i]` trades in `blocks[i]`.

    An id is `str((block + 1) * 10**9 + index_in_block)`: decimal like a venue's, unique and increasing
    over the run, known without counting earlier blocks' trades.
    """
    prefixes = [str(block + 1).encode() for block in blocks.tolist()]
    widths = np.array([len(prefix) + 9 for prefix in prefixes], dtype=np.int64)
    lengths = np.repeat(widths, counts).astype(np.int32)
    offsets = np.zeros(lengths.size + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    if not lengths.size:
        return offsets, np.zeros(0, dtype=np.uint8)
    # whole ids as fixed-size records (prefix, 9 digits): element copies instead of a 2-D byte scatter
    suffixes = _padded_indices(int(counts.max())).view("V9").reshape(-1)
    parts = []
    for prefix, count in zip(prefixes, counts.tolist(), strict=True):
        if count == 0:
            continue
        records = np.empty(count, dtype=[("prefix", f"V{len(prefix)}"), ("index", "V9")])
        records["prefix"] = np.frombuffer(prefix, dtype=f"V{len(prefix)}")[0]
        records["index"] = suffixes[:count]
        parts.append(records.view(np.uint8))
    return offsets, np.concatenate(parts)


@dataclass(frozen=True, slots=True)
class _SuffixTable:
    """For ids i = 1 .. size - 1 of a block: digits changed since id i - 1 and those digits, back to back."""

    changed: IntArray
    """changed[i] = 1 + trailing decimal zeros of i (changed[0] unused)."""
    ends: IntArray
    """Suffix i ends at ends[i] in `digits` (ends[0] = 0)."""
    digits: npt.NDArray[np.uint8]


_suffix_cache: list[_SuffixTable] = []


def _suffix_table(count: int) -> _SuffixTable:
    """The table for at least `count` ids, grown on demand (ids are a block prefix plus a 9-digit index)."""
    if _suffix_cache and _suffix_cache[0].changed.size >= count:
        return _suffix_cache[0]
    size = max(count, 2 * (_suffix_cache[0].changed.size if _suffix_cache else 0), 65_536)
    changed = np.ones(size, dtype=np.int64)
    at = np.arange(10, size, 10)
    power = 10
    while at.size:
        changed[at] += 1
        power *= 10
        at = at[at % power == 0]
    changed[0] = 0
    ends = np.cumsum(changed)
    text = _padded_indices(size)  # (size, 9) ASCII digits
    keep = np.arange(9)[None, :] >= 9 - changed[:, None]
    table = _SuffixTable(changed=changed, ends=ends, digits=text[keep])
    _suffix_cache[:] = [table]
    return table


def trade_id_deltas(blocks: IntArray, counts: IntArray) -> tuple[IntArray, IntArray, npt.NDArray[np.uint8]]:
    """The ids of `trade_id_strings` as `DELTA_BYTE_ARRAY` parts: prefix lengths, suffix lengths, suffix bytes.

    Inside a block, id i shares all but its last `1 + trailing decimal zeros of i` digits with id i - 1,
    so a block's suffixes are a slice of one cached table; the first id of each block is compared with
    the previous id as text.
    """
    table = _suffix_table(int(counts.max()) if counts.size else 0)
    previous = b""
    suffix_lengths: list[IntArray] = []
    prefix_widths: list[int] = []
    digits: list[npt.NDArray[np.uint8] | bytes] = []
    for block, count in zip(blocks.tolist(), counts.tolist(), strict=True):
        if count == 0:
            continue
        prefix = str(block + 1).encode()
        text = prefix + b"000000000"
        common = 0
        while common < min(len(text), len(previous)) and text[common] == previous[common]:
            common += 1
        lengths = table.changed[:count].copy()
        lengths[0] = len(text) - common
        suffix_lengths.append(lengths)
        prefix_widths.append(len(text))
        digits += [text[common:], table.digits[:table.ends[count - 1]]]
        previous = prefix + f"{count - 1:09d}".encode()
    if not suffix_lengths:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.uint8)
    suffix = np.concatenate(suffix_lengths)
    prefix_lengths = np.repeat(np.array(prefix_widths, dtype=np.int64), [a.size for a in suffix_lengths]) - suffix
    out = np.concatenate([np.frombuffer(d, dtype=np.uint8) if isinstance(d, bytes) else d for d in digits])
    return prefix_lengths, suffix, out


def warm_up_tables(count: int = 1 << 17) -> None:
    """Build the trade-id tables for blocks of up to `count` trades ahead of time (for preloaded workers)."""
    _padded_indices(count)
    _suffix_table(count)
