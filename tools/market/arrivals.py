"""Trade arrival times: a Hawkes process (exponential kernel) whose immigrants follow the volatility.

Branching construction: each block draws its immigrants (a Cox process with rate
mu_0 (sigma_t / sigma)^gamma times the block's shock activity and the hour's profile, normalized to
mean mu_0, on the 1 s grid) and their whole clusters
from the block's own stream. Offspring can land in later blocks, so a window regenerates the
clusters of the `lookback_blocks + 1` blocks before it and keeps what lands inside. Clusters are
cut `lookback_blocks` blocks after their immigrant's block; `derive_params` sizes the lookback so
the cut mass is below 1e-6 (at most an hour) and scales mu_0 so the mean rate stays the configured one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from quantdesk.tools.market.blocks import BLOCK_MS, BLOCK_SECONDS, Stream, stream_rng
from quantdesk.tools.market.params import ModelParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_SECONDS = np.arange(BLOCK_SECONDS, dtype=np.float64)


def cluster_times(params: ModelParams, block: int, arrival_log_rate: FloatArray) -> FloatArray:
    """Seconds since the run start of every event of the clusters born in `block` (unsorted).

    `arrival_log_rate` is the block's per-second log of immigrant rate over mu_0 (CoarseBlocks; mean 1 over
    the factors, the seasons and the block shocks).
    """
    p = params
    rng = stream_rng(p.seed, Stream.HAWKES, block)
    rates = p.immigrant_rate_per_second * np.exp(arrival_log_rate)
    counts = rng.poisson(rates)
    n = int(counts.sum())
    immigrants = np.repeat(_SECONDS + block * BLOCK_SECONDS, counts) + rng.random(n)
    if p.branching_ratio == 0.0 or n == 0:
        return immigrants
    horizon = float((block + 1 + p.lookback_blocks) * BLOCK_SECONDS)
    out = [immigrants]
    parents = immigrants
    while parents.size:
        # Poisson splitting: Poisson(n P) children spread uniformly over P parents is the same law as
        # Poisson(n) children per parent, for one draw instead of P
        n_children = int(rng.poisson(p.branching_ratio * parents.size))
        if n_children == 0:
            break
        children = parents[rng.integers(0, parents.size, n_children)]
        children += rng.standard_exponential(n_children) * p.decay_seconds
        children = children[children < horizon]
        out.append(children)
        parents = children
    return np.concatenate(out)


def trade_times_ms(params: ModelParams, first_block: int, stop_block: int, arrival_log_rate: FloatArray) -> IntArray:
    """Sorted trade times (ms since the run start) in blocks `[first_block, stop_block)`.

    `arrival_log_rate` covers blocks `[first_block - lookback_blocks, stop_block)`.
    """
    start = first_block - params.lookback_blocks
    if arrival_log_rate.shape[0] != stop_block - start:
        raise ValueError("arrival_log_rate does not cover the lookback")
    # only whole ms are kept, so ms are sorted, not seconds: as int32 from the window start (half the bytes
    # of a float), each block's on its own (cache-sized), then a run-merging stable sort of the lot
    low, high = first_block * BLOCK_SECONDS, stop_block * BLOCK_SECONDS
    origin = np.float64(first_block * BLOCK_MS)
    offset_type = np.int32 if (stop_block - first_block) * BLOCK_MS < 2**31 else np.int64
    parts = []
    for block in range(start, stop_block):
        times = cluster_times(params, block, arrival_log_rate[block - start])
        times = times[(times >= low) & (times < high)]
        ms = (np.floor(times * 1000.0) - origin).astype(offset_type)
        ms.sort()
        parts.append(ms)
    merged = np.concatenate(parts)
    merged.sort(kind="stable")
    return merged.astype(np.int64) + first_block * BLOCK_MS
