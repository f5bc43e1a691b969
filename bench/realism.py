"""Market realism: the issue-12 table of stylized facts, generated data beside real BTC minute candles.

Both sides are cut into windows of `--days` days of 1-minute bars (default 7). The generated side
runs the given manifest (default: the default manifest) for `--seeds` seeds, one window per seed,
in-process; its bars are built from trade prints (close = last trade, volume = sum of sizes), as
real candles are. The real side is every non-overlapping window of the candle file (default:
the Bybit BTCUSDT-perpetual month in ../shared/data/real/). Each cell is median [min, max] over
windows. Spread and size at the touch are not in candles: the real column shows the issue's figures.

Run: .venv/bin/python bench/realism.py [--days 7] [--seeds 3] [--preset NAME] [--set key=value ...] [--calibrated]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.pipeline import iter_event_tables
from quantdesk.tools.market.presets import PRESETS_BY_NAME

FloatArray = npt.NDArray[np.float64]
MINUTES_PER_YEAR = 365 * 1440
REAL_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "bybit_linear_btcusdt_1m_2025-06.csv"
HILL_SHARE = 0.025
"""Top 2.5% of |r|, as the real file's README computes it."""


@dataclass(frozen=True, slots=True)
class Bars:
    """One window of 1-minute bars: start times (ms), log returns into each bar, volume; optional touch stats."""

    start_ms: npt.NDArray[np.int64]
    r: FloatArray
    volume: FloatArray
    spread_ticks: float | None = None
    touch_size: float | None = None
    configured_vol: float | None = None


def acf(x: FloatArray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def hill(r: FloatArray, share: float = HILL_SHARE) -> float:
    magnitudes = np.sort(np.abs(r[r != 0]))[::-1]
    k = max(int(share * magnitudes.size), 10)
    return float(1.0 / np.mean(np.log(magnitudes[:k] / magnitudes[k])))


def excess_kurtosis(r: FloatArray) -> float:
    z = r - r.mean()
    return float(np.mean(z**4) / np.mean(z**2) ** 2 - 3.0)


def leverage(r: FloatArray, horizon: int = 10) -> float:
    ahead = np.convolve(np.abs(r), np.ones(horizon), "valid")[1:]  # sum of |r| over t+1 .. t+horizon
    return float(np.corrcoef(r[:ahead.size], ahead)[0, 1])


def hour_profile(bars: Bars) -> FloatArray:
    hour = (bars.start_ms // 3_600_000) % 24
    return np.bincount(hour, weights=np.abs(bars.r), minlength=24) / np.maximum(np.bincount(hour, minlength=24), 1)


FACTS: list[tuple[str, Callable[[Bars], float | None]]] = [
    ("ACF |r| lag 1", lambda b: acf(np.abs(b.r), 1)),
    ("ACF |r| lag 10", lambda b: acf(np.abs(b.r), 10)),
    ("ACF |r| lag 100", lambda b: acf(np.abs(b.r), 100)),
    ("ACF |r| lag 1000", lambda b: acf(np.abs(b.r), 1000)),
    ("Hill tail index (top 2.5%)", lambda b: hill(b.r)),
    ("Hill tail index (top 1%)", lambda b: hill(b.r, 0.01)),
    ("excess kurtosis", lambda b: excess_kurtosis(b.r)),
    ("corr(volume, |r|)", lambda b: float(np.corrcoef(b.volume, np.abs(b.r))[0, 1])),
    ("leverage corr(r, next 10 |r|)", lambda b: leverage(b.r)),
    ("ACF r lag 1", lambda b: acf(b.r, 1)),
    ("hour-of-day |r| max/min", lambda b: float(hour_profile(b).max() / hour_profile(b).min())),
    ("volume per minute (base)", lambda b: float(b.volume.mean())),
    ("realized vol, annualized", lambda b: float(np.sqrt(np.mean(b.r**2) * MINUTES_PER_YEAR))),
    ("realized / volatility_annual", lambda b: None if b.configured_vol is None
     else float(np.sqrt(np.mean(b.r**2) * MINUTES_PER_YEAR)) / b.configured_vol),
    ("median spread (ticks)", lambda b: b.spread_ticks),
    ("median size at touch (base)", lambda b: b.touch_size),
]
REAL_TOUCH = {"median spread (ticks)": "1 (issue)", "median size at touch (base)": "~2 (issue)"}


def profile_week_correlation(windows: list[Bars]) -> float | None:
    """Mean pairwise correlation of the windows' hour-of-day profiles of |r|."""
    profiles = [hour_profile(b) for b in windows]
    pairs = [np.corrcoef(a, b)[0, 1] for i, a in enumerate(profiles) for b in profiles[i + 1:]]
    return float(np.mean(pairs)) if pairs else None


def real_windows(path: Path, days: float) -> list[Bars]:
    import pyarrow.csv as pv

    table = pv.read_csv(path)
    ts = table.column("timestamp").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    close = table.column("close").to_numpy().astype(np.float64)
    volume = table.column("volume").to_numpy().astype(np.float64)
    r = np.diff(np.log(close))
    size = int(days * 1440)
    return [Bars(start_ms=ts[1 + i:1 + i + size], r=r[i:i + size], volume=volume[1 + i:1 + i + size])
            for i in range(0, r.size - size + 1, size)]


def generated_window(manifest: SimulationManifest) -> Bars:
    """1-minute bars of one generated run, from trade prints; touch stats from every 50th book row."""
    n = -(-manifest.duration_seconds // 60)
    last_ts = np.full(n, -1, np.int64)
    close = np.full(n, np.nan)
    volume = np.zeros(n)
    spreads: list[FloatArray] = []
    touch: list[FloatArray] = []
    start = manifest.start_time_ms
    for table in iter_event_tables(manifest, blocks_per_table=60, stop_block=n):
        kind = table.column("event_type").cast(pa.string())
        trades = table.filter(pc.equal(kind, "trade"))
        ts = trades.column("timestamp_ms").to_numpy()
        bar = (ts - start) // 60_000
        ok = (bar >= 0) & (bar < n)
        price = trades.column("price").to_numpy()
        volume += np.bincount(bar[ok], weights=trades.column("size").to_numpy()[ok], minlength=n)
        order = np.lexsort((ts[ok], bar[ok]))
        b, t, p = bar[ok][order], ts[ok][order], price[ok][order]
        last = np.flatnonzero(np.r_[b[1:] != b[:-1], True])
        newer = t[last] >= last_ts[b[last]]
        last_ts[b[last][newer]] = t[last][newer]
        close[b[last][newer]] = p[last][newer]
        books = table.filter(pc.equal(kind, "book"))
        books = books.take(pa.array(np.arange(0, books.num_rows, 50)))
        bid, ask = books.column("best_bid").to_numpy(), books.column("best_ask").to_numpy()
        spreads.append(np.rint((ask - bid) / manifest.tick_size))
        bid_size = pc.struct_field(pc.list_element(books.column("bids"), 0), "size").to_numpy()
        ask_size = pc.struct_field(pc.list_element(books.column("asks"), 0), "size").to_numpy()
        touch.append(0.5 * (bid_size + ask_size))
    # a minute without trades keeps the previous close
    idx = np.where(np.isfinite(close), np.arange(n), -1)
    np.maximum.accumulate(idx, out=idx)
    close = np.where(idx >= 0, close[np.maximum(idx, 0)], manifest.initial_price)
    r = np.diff(np.log(close))
    starts = start + 60_000 * np.arange(1, n, dtype=np.int64)
    return Bars(start_ms=starts, r=r, volume=volume[1:], spread_ticks=float(np.median(np.concatenate(spreads))),
                touch_size=float(np.median(np.concatenate(touch))), configured_vol=manifest.volatility_annual)


def cell(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "-"
    fmt = (lambda v: f"{v:.3g}") if max(abs(v) for v in vals) < 100 else (lambda v: f"{v:.0f}")
    if len(vals) == 1:
        return fmt(vals[0])
    return f"{fmt(statistics.median(vals))} [{fmt(min(vals))}, {fmt(max(vals))}]"


def table_rows(windows: list[Bars]) -> dict[str, str]:
    rows = {name: cell([fn(b) for b in windows]) for name, fn in FACTS}
    corr = profile_week_correlation(windows)
    rows["hour profile week-to-week corr"] = "-" if corr is None else f"{corr:.2f}"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=7.0, help="window length in days")
    parser.add_argument("--seeds", type=int, default=3, help="generated windows (one per seed)")
    parser.add_argument("--preset", default="default", help="preset to generate")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="manifest override")
    parser.add_argument("--real", type=Path, default=REAL_FILE, help="real 1-minute candle CSV")
    parser.add_argument("--json", action="store_true", help="print the columns as JSON too")
    parser.add_argument("--calibrated", action="store_true",
                        help="generate from the manifest calibrate_manifest fits to the real file instead")
    args = parser.parse_args()

    overrides = dict(PRESETS_BY_NAME[args.preset].overrides)
    label = f"quantdesk {args.preset}"
    if args.calibrated:
        from quantdesk.tools.market.calibrate import calibrate, read_candles

        began = time.perf_counter()
        fitted = calibrate(read_candles(args.real), SimulationManifest.model_validate(overrides))
        print(f"calibrated on {args.real.name} in {time.perf_counter() - began:.1f} s")
        overrides = {k: v for k, v in fitted["manifest"].items() if k not in ("seed", "duration_seconds")}
        label = "quantdesk calibrated"
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    columns: dict[str, dict[str, str]] = {}
    if args.real.exists():
        columns[f"real ({args.real.name[:20]}...)"] = table_rows(real_windows(args.real, args.days))
    began = time.perf_counter()
    generated = []
    for seed in range(1, args.seeds + 1):
        manifest = SimulationManifest.model_validate({**overrides, "seed": seed,
                                                      "duration_seconds": int(args.days * 86_400)})
        generated.append(generated_window(manifest))
    columns[label] = table_rows(generated)
    elapsed = time.perf_counter() - began

    names = list(next(iter(columns.values())))
    width = max(len(n) for n in names) + 2
    header = "fact (1-minute bars)".ljust(width) + "".join(c.ljust(30) for c in columns)
    print(header)
    print("-" * len(header))
    for name in names:
        cells = [REAL_TOUCH.get(name, col[name]) if col_name.startswith("real") else col[name]
                 for col_name, col in columns.items()]
        print(name.ljust(width) + "".join(c.ljust(30) for c in cells))
    print(f"\n{args.seeds} seeds x {args.days:g} days generated in {elapsed:.1f} s; "
          "cells: median [min, max] over windows")
    if args.json:
        print(json.dumps(columns, indent=1))


if __name__ == "__main__":
    main()
