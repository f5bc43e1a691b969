"""Signal metrics, alphalens conventions (spec/desk.md §8), as time series per signal type and symbol.

- Forward return at horizon h: price h cycles after the signal over the price at the signal (the signal is made
  from prices up to its cycle, so it is strictly before the return it is scored on).
- IC: Spearman rank correlation of the signal's score (signed strength) with its forward return. Overlapping
  returns inflate t, so pairs are sampled non-overlapping: a pair is kept only if it starts at least h cycles
  after the last kept one.
- IC mean, std, IR (mean / std) and t-statistic (mean / (std / sqrt(k)), alphalens' one-sample t) over the ICs of
  consecutive blocks of `block` kept pairs; `ic` itself is the pooled IC of every kept pair.
- Hit rate: the share of kept pairs where sign(score) == sign(return), zero returns excluded (quantstats
  win_rate), with a Wilson score interval at 95 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
HORIZONS = (1, 5, 10)
Z95 = 1.959963984540054


def ranks(x: FloatArray) -> FloatArray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata 'average')."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    r = np.empty(len(x), dtype=np.float64)
    i = 0
    n = len(x)
    while i < n:
        j = i
        while j + 1 < n and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r


def spearman(x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> float | None:
    """Spearman's rho (Pearson on average ranks); None with fewer than 3 pairs or a constant side."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def wilson(k: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class HorizonStats:
    horizon: int
    n: int
    ic: float | None
    ic_mean: float | None
    ic_std: float | None
    ic_ir: float | None
    t_stat: float | None
    blocks: int
    hit_rate: float | None
    hit_rate_ci_low: float | None
    hit_rate_ci_high: float | None
    hits: int
    scored: int

    def to_dict(self) -> dict[str, Any]:
        return {"horizon_bars": self.horizon, "n": self.n, "ic": self.ic, "ic_mean": self.ic_mean,
                "ic_std": self.ic_std, "ic_ir": self.ic_ir, "t_stat": self.t_stat, "blocks": self.blocks,
                "hit_rate": self.hit_rate, "hit_rate_ci_low": self.hit_rate_ci_low,
                "hit_rate_ci_high": self.hit_rate_ci_high, "hits": self.hits, "scored": self.scored}


def non_overlapping(times: Sequence[int], horizon_ms: int) -> list[int]:
    """Indices of signals (sorted by time) each starting at least one horizon after the last kept one."""
    kept: list[int] = []
    last: int | None = None
    for i, t in enumerate(times):
        if last is None or t >= last + horizon_ms:
            kept.append(i)
            last = t
    return kept


def horizon_stats(scores: Sequence[float], returns: Sequence[float], horizon: int, block: int = 20) -> HorizonStats:
    """Scores and forward returns of the kept (non-overlapping) pairs, in time order."""
    s, r = np.asarray(scores, dtype=np.float64), np.asarray(returns, dtype=np.float64)
    n = len(s)
    ic = spearman(s, r)
    block_ics = [v for v in (spearman(s[i:i + block], r[i:i + block]) for i in range(0, n - block + 1, block))
                 if v is not None]
    ic_mean = ic_std = ic_ir = t_stat = None
    if block_ics:
        ic_mean = float(np.mean(block_ics))
    if len(block_ics) >= 2:
        ic_std = float(np.std(block_ics, ddof=1))
        # block ICs equal up to rounding have no spread: IR and t are undefined, not 1e16
        if ic_std > 1e-12 and ic_mean is not None:
            ic_ir = ic_mean / ic_std
            t_stat = ic_mean / (ic_std / math.sqrt(len(block_ics)))
    mask = (s != 0) & (r != 0)
    scored = int(mask.sum())
    hits = int((np.sign(s[mask]) == np.sign(r[mask])).sum())
    low, high = wilson(hits, scored)
    return HorizonStats(horizon, n, ic, ic_mean, ic_std, ic_ir, t_stat, len(block_ics),
                        hits / scored if scored else None, low, high, hits, scored)


def forward_returns(times: Sequence[int], price_times: Sequence[int], price_values: Sequence[float],
                    horizon_ms: int) -> list[float | None]:
    """For each signal time, price(t + horizon) / price(t) - 1 from the cycle prices (None past the data)."""
    index = {t: p for t, p in zip(price_times, price_values, strict=True)}
    out: list[float | None] = []
    for t in times:
        start, end = index.get(t), index.get(t + horizon_ms)
        out.append(end / start - 1.0 if start and end is not None else None)
    return out
