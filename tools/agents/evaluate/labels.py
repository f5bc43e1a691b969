"""Labels per challenge type, computed in the parent from prices only (a strategy never sees them).

Each function takes the data a segment may use and returns, for every row t, the label and whether
it is known there (a label needs prices up to t + horizon, so the last rows of any segment have none:
that is the purge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from quantdesk.tools.agents.evaluate.metrics import EPS, FloatArray, IntArray

npt_bool = np.ndarray[tuple[int], np.dtype[np.bool_]]
npt_bool_2d = np.ndarray[tuple[int, int], np.dtype[np.bool_]]
Q_THRESHOLDS = (0.5, 1.0, 2.0)
CHUNK_ROWS = 8192
Q_CLASSES = (0, 1, 3, 4)


def rolling_std(x: FloatArray, window: int) -> FloatArray:
    """Sample std of the `window` values ending at each index (NaN before a full window; NaNs poison)."""
    out = np.full(x.size, np.nan)
    if x.size < window:
        return out
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    s1 = c1[window:] - c1[:-window]
    s2 = c2[window:] - c2[:-window]
    var = (s2 - s1 * s1 / window) / max(window - 1, 1)
    out[window - 1:] = np.sqrt(np.maximum(var, 0.0))
    return out


def forward_extremes(x: FloatArray, width: int, count: int) -> tuple[FloatArray, FloatArray]:
    """Max and min of x[t : t + width] for t < count, in chunks so memory stays flat for long horizons."""
    highest, lowest = np.empty(count), np.empty(count)
    for start in range(0, count, CHUNK_ROWS):
        stop = min(count, start + CHUNK_ROWS)
        view = sliding_window_view(x[start: stop + width - 1], width)
        highest[start:stop], lowest[start:stop] = view.max(axis=1), view.min(axis=1)
    return highest, lowest


def trailing_extremes(x: FloatArray, width: int) -> tuple[FloatArray, FloatArray]:
    """Max and min of x[t - width : t] for t >= width (the range before t), O(n) whatever the width."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    centre = width // 2
    filled = np.where(np.isfinite(x), x, -np.inf)
    high = maximum_filter1d(filled, width, mode="nearest")
    low = minimum_filter1d(np.where(np.isfinite(x), x, np.inf), width, mode="nearest")
    # the window centred at i covers [i - centre, i - centre + width - 1]; the one ending at t - 1 is centred
    # at t - width + centre
    index = np.arange(width, x.size) - width + centre
    return high[index], low[index]


def forward_log_return(close: FloatArray, horizon: int) -> FloatArray:
    out = np.full(close.size, np.nan)
    if close.size > horizon:
        out[:-horizon] = np.log(close[horizon:] + EPS) - np.log(close[:-horizon] + EPS)
    return out


def binary_labels(close: FloatArray, horizon: int) -> tuple[IntArray, npt_bool]:
    forward = forward_log_return(close, horizon)
    known = np.isfinite(forward)
    return (forward > 0).astype(np.int64), known


def hitfirst_labels(close: FloatArray, horizon: int, vol_window: int) -> tuple[IntArray, npt_bool]:
    """0 = +sigma first, 1 = -sigma first, 2 = neither or both in the same minute."""
    n = close.size
    labels = np.full(n, -1, dtype=np.int64)
    if n <= horizon + 1:
        return labels, labels >= 0
    log_p = np.log(close + EPS)
    past = np.full(n, np.nan)
    past[horizon:] = log_p[horizon:] - log_p[:-horizon]
    # sigma from h-step returns that ended by t: known at t
    sigma = rolling_std(np.nan_to_num(past, nan=0.0), vol_window)
    sigma[: horizon + vol_window - 1] = np.nan
    body = np.empty(n - horizon, dtype=np.int64)
    for start in range(0, n - horizon, CHUNK_ROWS):
        stop = min(n - horizon, start + CHUNK_ROWS)
        paths = sliding_window_view(log_p[start + 1: stop + horizon], horizon) - log_p[start:stop, None]
        s = sigma[start:stop, None]
        with np.errstate(invalid="ignore"):
            up, down = paths >= s, paths <= -s
        first_up = np.where(up.any(axis=1), up.argmax(axis=1), horizon + 1)
        first_down = np.where(down.any(axis=1), down.argmax(axis=1), horizon + 1)
        body[start:stop] = np.where(first_up < first_down, 0, np.where(first_down < first_up, 1, 2))
    ok = np.isfinite(sigma[: n - horizon]) & (sigma[: n - horizon] > 0)
    labels[: n - horizon] = np.where(ok, body, -1)
    return labels, labels >= 0


@dataclass(frozen=True, slots=True)
class LbfgsLabels:
    bucket: IntArray
    """-1 where unknown."""
    q_hit: npt_bool_2d
    """(rows, 3): the opposite move reached 0.5, 1, 2 sigma_60 within [t, t+h] (meaningful for buckets 0, 1, 3, 4)."""

    @property
    def known(self) -> npt_bool:
        out: npt_bool = self.bucket >= 0
        return out


def lbfgs_labels(close: FloatArray, horizon: int, vol_window: int) -> LbfgsLabels:
    n = close.size
    log_p = np.log(close + EPS)
    bucket = np.full(n, -1, dtype=np.int64)
    q_hit = np.zeros((n, 3), dtype=bool)
    if n <= horizon + 1:
        return LbfgsLabels(bucket, q_hit)
    past = np.full(n, np.nan)
    past[horizon:] = log_p[horizon:] - log_p[:-horizon]
    sigma = rolling_std(np.nan_to_num(past, nan=0.0), vol_window)
    sigma[: horizon + vol_window - 1] = np.nan
    forward = forward_log_return(close, horizon)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = forward / sigma
    ok = np.isfinite(z) & (sigma > 0)
    buckets = np.select([z <= -2.0, z < -1.0, z <= 1.0, z < 2.0], [0, 1, 2, 3], 4)
    bucket[ok] = buckets[ok]
    one_minute = np.concatenate([[np.nan], np.diff(log_p)])
    sigma_60 = rolling_std(np.nan_to_num(one_minute, nan=0.0), 60)
    sigma_60[:61] = np.nan
    # path [t, t+h] relative to the bar before t
    base = np.concatenate([[np.nan], log_p[:-1]])
    highest, lowest = forward_extremes(log_p, horizon + 1, n - horizon)
    highest, lowest = highest - base[: n - horizon], lowest - base[: n - horizon]
    s60 = sigma_60[: n - horizon]
    for k, m in enumerate(Q_THRESHOLDS):
        with np.errstate(invalid="ignore"):
            up_hit = highest >= m * s60
            down_hit = lowest <= -m * s60
        realised = bucket[: n - horizon]
        q_hit[: n - horizon, k] = np.where(realised <= 1, up_hit, down_hit)
    bucket[np.isnan(sigma_60)] = -1
    return LbfgsLabels(bucket, q_hit)


@dataclass(frozen=True, slots=True)
class BreakoutEvents:
    trigger: IntArray
    resolution: IntArray
    asset_index: IntArray
    label: IntArray
    """1 = continuation, 0 = reversal."""


def breakout_events(closes: FloatArray, lookback: int, barrier_pct: float, min_range_pct: float,
                    max_pending: int) -> BreakoutEvents:
    """Range breakouts per asset, resolved within the data given (unresolved ones are not events yet)."""
    rows, n_assets = closes.shape
    found: list[tuple[int, int, int, int]] = []
    if rows <= lookback:
        return BreakoutEvents(*(np.zeros(0, np.int64) for _ in range(4)))
    for a in range(n_assets):
        prices = closes[:, a]
        high, low = trailing_extremes(prices, lookback)
        current = prices[lookback:]
        width = high - low
        with np.errstate(invalid="ignore"):
            wide = width >= current * min_range_pct / 100.0
            breaks_up = (current > high) & wide
            breaks_down = (current < low) & wide
        candidates = np.flatnonzero(breaks_up | breaks_down)
        pending_until = -1
        for i in candidates:
            t = lookback + int(i)
            if t <= pending_until:
                continue
            direction = 1.0 if breaks_up[i] else -1.0
            step = width[i] * barrier_pct / 100.0
            cont, rev = current[i] + direction * step, current[i] - direction * step
            future = prices[t + 1: min(rows, t + 1 + max_pending)]
            hit_cont = np.flatnonzero(direction * (future - cont) >= 0)
            hit_rev = np.flatnonzero(direction * (future - rev) <= 0)
            first_cont = int(hit_cont[0]) if hit_cont.size else None
            first_rev = int(hit_rev[0]) if hit_rev.size else None
            if first_cont is None and first_rev is None:
                pending_until = t + max_pending
                continue
            if first_rev is None or (first_cont is not None and first_cont < first_rev):
                found.append((t, t + 1 + int(first_cont or 0), a, 1))
                pending_until = t + 1 + int(first_cont or 0)
            else:
                found.append((t, t + 1 + first_rev, a, 0))
                pending_until = t + 1 + first_rev
    found.sort(key=lambda e: (e[0], e[2]))
    arrays = np.asarray(found, dtype=np.int64).reshape(-1, 4)
    return BreakoutEvents(arrays[:, 0], arrays[:, 1], arrays[:, 2], arrays[:, 3])


def forward_change(values: FloatArray, horizon: int) -> FloatArray:
    """values[t + h] - values[t] per column (NaN where unknown)."""
    out = np.full(values.shape, np.nan)
    if values.shape[0] > horizon:
        out[:-horizon] = values[horizon:] - values[:-horizon]
    return out

