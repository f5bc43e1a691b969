"""Risk metrics per call on a one-year daily and a 90-day hourly equity series.

    .venv/bin/python bench/risk.py [--calls 200] [--repeats 5]

For each series (Student-t returns from a fixed seed; one-year daily: 366 points, P = 365; 90-day hourly:
2,161 points, P = 8,760) it times, one call after another on one core:
  engine   `compute_metrics` on the equity array: volatility, Sharpe, Sortino (rf 5 %), drawdown, CAGR,
           Calmar, moments, and VaR/CVaR by three methods at 95 % and 99 %.
  stored   what `get_risk_metrics` does after catching up: the equity on the bar grid from the recorded
           series in SQLite (a WAL file in the system's temporary folder), then the metrics. The recorded
           series is sampled at the bar (a desk with equity_sample_seconds = the bar) and, to show what the
           grid query costs on a desk's default 60-second samples, at 60 s (525,600 rows a year; 129,600 in
           90 days).
Reported: median and best milliseconds per call over --repeats runs of --calls calls.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from quantdesk.server.state import StateStore
from quantdesk.tools.risk.metrics import compute_metrics
from quantdesk.tools.risk.series import EquityPoint, MetricRecorder, equity_grid
from quantdesk.tools.risk.store import ensure_schema

T0 = 1_735_689_600_000
DAY_S, HOUR_S = 86_400, 3_600


def equity(seed: int, n: int, scale: float) -> np.ndarray:
    g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    return 100_000.0 * np.concatenate([[1.0], np.cumprod(1.0 + g.standard_t(5, size=n) * scale + 0.0003)])


def per_call_ms(work: Callable[[], object], calls: int, repeats: int) -> tuple[float, float]:
    work()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        runs.append((time.perf_counter() - started) / calls * 1000)
    return statistics.median(runs), min(runs)


def stored(folder: Path, name: str, values: np.ndarray, bar_s: int, sample_s: int) -> StateStore:
    """A state store whose recorded series holds `values` at every bar, sampled every `sample_s`."""
    state = StateStore(folder / f"{name}-{sample_s}.sqlite3")
    ensure_schema(state)
    recorder = MetricRecorder(state)
    per_bar = bar_s // sample_s
    times = T0 + np.arange((len(values) - 1) * per_bar + 1, dtype=np.int64) * sample_s * 1000
    # between bar boundaries the equity moves linearly: only the boundaries enter the metrics
    filled = np.interp(np.arange(times.shape[0]) / per_bar, np.arange(len(values)), values)
    points = [EquityPoint(int(t), float(v), 0.0, 0.0, 0.0) for t, v in zip(times, filled, strict=True)]
    for start in range(0, len(points), 50_000):
        with state.transaction() as conn:
            recorder.record(conn, points[start:start + 50_000])
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases = {"one-year daily": (equity(1, 365, 0.03), DAY_S, 365.0),
             "90-day hourly": (equity(2, 90 * 24, 0.005), HOUR_S, 8_760.0)}
    print(f"{'series':<16} {'points':>7} {'case':<28} {'median ms':>10} {'best ms':>9}")
    with tempfile.TemporaryDirectory(prefix="qd-bench-risk-") as tmp:
        for name, (values, bar_s, periods) in cases.items():

            def engine(values: np.ndarray = values, periods: float = periods) -> object:
                return compute_metrics(values, periods=periods, risk_free_rate_annual=0.05,
                                       confidence_levels=(0.95, 0.99))

            median, best = per_call_ms(engine, args.calls, args.repeats)
            print(f"{name:<16} {len(values):>7} {'engine':<28} {median:>10.3f} {best:>9.3f}")
            for sample_s in (bar_s, 60):
                state = stored(Path(tmp), name.replace(" ", "-"), values, bar_s, sample_s)

                def from_store(state: StateStore = state, bar_s: int = bar_s, periods: float = periods) -> object:
                    grid = equity_grid(state, bar_s, None, None)
                    return compute_metrics(np.asarray(grid.equity), periods=periods, risk_free_rate_annual=0.05,
                                           confidence_levels=(0.95, 0.99))

                check = equity_grid(state, bar_s, None, None)
                assert np.allclose(check.equity, values, rtol=1e-12), "the grid must give back the series"
                calls = args.calls if sample_s == bar_s else max(5, args.calls // 20)
                median, best = per_call_ms(from_store, calls, args.repeats)
                label = f"stored, samples every {sample_s} s"
                print(f"{name:<16} {len(values):>7} {label:<28} {median:>10.3f} {best:>9.3f}")
                state.close()


if __name__ == "__main__":
    main()
