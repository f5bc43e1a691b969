"""A dataset's minute facts beside a reference's: real candles (CSV/Parquet) or another event dataset.

Both sides go through the same statistics (calibrate.return_facts plus the volume link), on
one-minute bars: an event dataset's bars close on its last trade price (as real candles do)
or its last mid when it has no trades; a candle file's are its closes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from quantdesk.tools.market.bars import Dataset, forward_fill, read_bars
from quantdesk.tools.market.calibrate import read_candles, return_facts

FloatArray = npt.NDArray[np.float64]
MINUTE_MS = 60_000
MIN_MINUTES = 200
"""Fewer one-minute returns leave the facts meaningless (ACF at lag 100 needs a few hundred)."""


def is_event_dataset(path: str | os.PathLike[str]) -> bool:
    """A Parquet file in the canonical event schema (it has `event_type`), as opposed to candles."""
    name = os.fspath(path)
    if not name.lower().endswith((".parquet", ".pq")):
        return False
    import pyarrow.parquet as pq

    return "event_type" in pq.read_schema(name).names


def minute_series(source: Dataset) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
    """Bar start times (ms), one-minute log returns into each bar, and each bar's volume."""
    if isinstance(source, str | os.PathLike) and not is_event_dataset(source):
        candles = read_candles(source)
        contiguous = np.diff(candles.ts_ms) == MINUTE_MS
        return candles.ts_ms[1:][contiguous], candles.returns[contiguous], candles.volume[1:][contiguous]
    bars = read_bars(source, MINUTE_MS)
    price = bars.trade_price if np.isfinite(bars.trade_price).any() else bars.mid
    price = forward_fill(price)
    r = np.diff(np.log(price))
    starts = bars.origin_ms + MINUTE_MS * np.arange(1, price.size, dtype=np.int64)
    ok = np.isfinite(r)
    return starts[ok], r[ok], bars.volume[1:][ok]


def minute_facts(source: Dataset) -> dict[str, float]:
    starts, r, volume = minute_series(source)
    if r.size < MIN_MINUTES:
        raise ValueError(f"needs at least {MIN_MINUTES} one-minute returns, has {r.size}")
    facts = return_facts(r, starts)
    facts["volume_per_minute"] = float(volume.mean())
    facts["corr_volume_abs_r"] = float(np.corrcoef(volume, np.abs(r))[0, 1]) if volume.std() > 0 else float("nan")
    return {k: (v if np.isfinite(v) else float("nan")) for k, v in facts.items()}


def compare(dataset: Dataset, reference: Dataset) -> list[dict[str, Any]]:
    """Rows of {fact, data, reference}; a value that cannot be computed is None."""
    mine, theirs = minute_facts(dataset), minute_facts(reference)

    def clean(value: float | None) -> float | None:
        return value if value is not None and np.isfinite(value) else None

    return [{"fact": name, "data": clean(mine.get(name)), "reference": clean(theirs.get(name))}
            for name in dict.fromkeys([*mine, *theirs])]


ACF_LAGS: tuple[int, ...] = tuple(sorted({int(round(x)) for x in np.geomspace(1, 1000, 40)}))
"""Lags (minutes) of the ACF-of-|r| curve: log-spaced, one to a thousand."""


def abs_return_acf(source: Dataset) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """(lags, ACF of one-minute |r| at each lag) for the curve `plot_dataset` overlays; lags past the sample are cut."""
    _, r, _ = minute_series(source)
    if r.size < MIN_MINUTES:
        raise ValueError(f"needs at least {MIN_MINUTES} one-minute returns, has {r.size}")
    x = np.abs(r) - np.abs(r).mean()
    n = x.size
    spectrum = np.fft.rfft(x, 2 * n)
    full = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    lags = np.array([lag for lag in ACF_LAGS if lag < n // 2], dtype=np.int64)
    return lags, full[lags] / full[0] if full[0] > 0 else np.full(lags.size, np.nan)
