"""A PNG chart of a dataset: price, volume and spread over time (matplotlib, Agg, no display).

Uses a `Figure` with an Agg canvas directly rather than pyplot, so it keeps no global state and is
safe to call from server threads.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from quantdesk.tools.market.bars import Dataset, dataset_span, forward_fill, read_bars

_TARGET_BARS = 1500
_NICE_BAR_MS = (1_000, 5_000, 15_000, 60_000, 300_000, 900_000, 3_600_000, 14_400_000, 86_400_000)


def _bar_ms(span_ms: int) -> int:
    for bar_ms in _NICE_BAR_MS:
        if span_ms / bar_ms <= _TARGET_BARS:
            return bar_ms
    return _NICE_BAR_MS[-1]


def plot_dataset(dataset: Dataset, *, title: str | None = None, width_px: int = 1200, height_px: int = 800,
                 dpi: int = 100, reference_acf: tuple[Any, Any] | None = None, reference_label: str = "reference"
                 ) -> bytes:
    """PNG bytes of three stacked panels: price (mid, or trades), volume per bar, mean spread in bps; with
    `reference_acf` (lags, values from compare.abs_return_acf), a fourth: the dataset's ACF of one-minute |r|
    beside the reference's, on a log lag axis."""
    span = dataset_span(dataset)
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    if reference_acf is not None:
        grid = figure.add_gridspec(4, 1, height_ratios=[3, 1, 1, 2])
        first = figure.add_subplot(grid[0])
        axes = [first, figure.add_subplot(grid[1], sharex=first), figure.add_subplot(grid[2], sharex=first)]
        _acf_panel(figure.add_subplot(grid[3]), dataset, reference_acf, reference_label)
    else:
        axes = list(figure.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1, 1]}))
    if span.book_rows + span.trade_rows == 0:
        axes[0].set_title(title or "empty dataset")
    else:
        bar_ms = _bar_ms(span.last_ms - span.first_ms)
        bars = read_bars(dataset, bar_ms, span)
        hours = (bars.origin_ms + np.arange(bars.mid.size) * bar_ms - span.first_ms) / 3_600_000
        has_mid = bool(np.isfinite(bars.mid).any())
        axes[0].plot(hours, forward_fill(bars.mid if has_mid else bars.trade_price), linewidth=0.8)
        axes[0].set_ylabel("mid price" if has_mid else "trade price")
        axes[0].set_title(title or f"{span.trade_rows:,} trades, {span.book_rows:,} book snapshots")
        axes[1].bar(hours, bars.volume, width=bar_ms / 3_600_000, color="tab:gray")
        axes[1].set_ylabel(f"volume / {bar_ms // 1000}s")
        axes[2].plot(hours, bars.spread_bps, linewidth=0.8, color="tab:red")
        axes[2].set_ylabel("spread (bps)")
        axes[2].set_xlabel("hours since first event")
    for axis in figure.axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _acf_panel(axis: Any, dataset: Dataset, reference: tuple[Any, Any], label: str) -> None:
    from quantdesk.tools.market.compare import abs_return_acf

    lags, values = abs_return_acf(dataset)
    axis.semilogx(lags, values, marker=".", linewidth=1.0, label="this dataset")
    axis.semilogx(reference[0], reference[1], marker=".", linewidth=1.0, label=label)
    axis.axhline(0.0, color="black", linewidth=0.5)
    axis.set_xlabel("lag (minutes)")
    axis.set_ylabel("ACF of |r|, 1 min")
    axis.legend(loc="upper right")
