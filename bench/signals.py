"""Strategy-loop cycle time with 4 symbols x 4 generators, and a one-week run on the simulated clock.

    .venv/bin/python bench/signals.py [--cycles 2000] [--days 7]

A real desk (DeskService on a SQLite file in the system's temporary folder, the seeded synthetic feed of the
four instruments BTC-USDT, BTC-USDT-PERP, ETH-USDT, ETH-USDT-PERP), a RiskService and a SignalService, no
background threads, one core:
  cycle  the wall time of one strategy cycle (read the four mids, run the four generators on each symbol,
         store the cycle's prices and signals in one transaction, publish them, combine, size, check and place
         orders, log decisions), measured inside `run_strategy` after a 30-cycle warm-up; the desk's advance
         between cycles is not in it. Reported: median, p95, max and mean ms per cycle.
  week   `run_strategy` over `--days` of desk time at a 60 s cycle (10,080 cycles a week): wall seconds, cycles,
         orders and fills, orders per wall second, and the share of wall time spent in cycles (the rest is
         the desk advancing its synthetic market minute by minute).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from quantdesk.server.state import StateStore
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.desk.config import DeskConfig
from quantdesk.tools.desk.service import DeskService
from quantdesk.tools.risk.service import RiskService
from quantdesk.tools.signals.service import SignalService


def open_desk(folder: Path, seed: int) -> tuple[DeskService, RiskService, SignalService, StateStore]:
    state = StateStore(folder / "quantdesk.sqlite3")
    config = DeskConfig(clock="simulated", feed="synthetic", seed=seed, initial_balances={"USDT": 100_000.0})
    desk = DeskService(state, EventBus(), config, data_dir=folder, start_runner=False)
    assert desk.error is None, desk.error
    risk = RiskService(desk, desk.bus, state, background=False)
    return desk, risk, SignalService(desk, risk, desk.bus, state, background=False), state


def close(desk: DeskService, risk: RiskService, sig: SignalService, state: StateStore) -> None:
    sig.close()
    risk.close()
    desk.close()
    state.close()


def bench_cycle(root: Path, cycles: int) -> dict[str, Any]:
    desk, risk, sig, state = open_desk(root / "cycle", 7)
    sig.run(cycles=30)
    sig.cycle_ms.clear()
    sig.cycle_ms = type(sig.cycle_ms)(maxlen=cycles)
    sig.run(cycles=cycles)
    times = sorted(sig.cycle_ms)
    out = {"cycles": len(times), "median_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times))],
           "max_ms": times[-1], "mean_ms": statistics.fmean(times), "signals": sig.counters.signals,
           "orders": sig.counters.orders, "symbols": len(desk.engine.instruments.instruments),
           "generators": len(sig.generators)}
    close(desk, risk, sig, state)
    return out


def bench_week(root: Path, days: float) -> dict[str, Any]:
    desk, risk, sig, state = open_desk(root / "week", 11)
    cycles = int(days * 86_400 / sig.cycle_seconds)
    sig.cycle_ms = type(sig.cycle_ms)(maxlen=cycles + 1)
    started = time.perf_counter()
    out = sig.run(cycles=cycles)
    wall = time.perf_counter() - started
    fills = desk.state.query("SELECT COUNT(*) FROM desk_fills")[0][0]
    in_cycles = sum(sig.cycle_ms) / 1000
    result = {"days": days, "cycles": out["cycles"], "wall_seconds": wall, "orders": out["orders_placed"],
              "fills": int(fills), "orders_per_second": out["orders_placed"] / wall,
              "cycles_per_second": out["cycles"] / wall, "share_in_cycles": in_cycles / wall,
              "verdicts": out["verdicts"], "equity_usd": out["equity_usd"]}
    close(desk, risk, sig, state)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--days", type=float, default=7.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "cycle").mkdir()
        (root / "week").mkdir()
        c = bench_cycle(root, args.cycles)
        print(f"cycle ({c['symbols']} symbols x {c['generators']} generators, {c['cycles']} cycles): median "
              f"{c['median_ms']:.3f} ms, p95 {c['p95_ms']:.3f} ms, max {c['max_ms']:.3f} ms, mean {c['mean_ms']:.3f} ms"
              f" ({c['signals']} signals, {c['orders']} orders)")
        w = bench_week(root, args.days)
        print(f"week ({w['days']:g} days, {w['cycles']} cycles of 60 s): wall {w['wall_seconds']:.1f} s, "
              f"{w['orders']} orders, {w['fills']} fills, {w['orders_per_second']:.1f} orders/s, "
              f"{w['cycles_per_second']:.0f} cycles/s, {w['share_in_cycles']:.0%} of wall time in cycles, "
              f"verdicts {w['verdicts']}, equity {w['equity_usd']:.2f} USD")


if __name__ == "__main__":
    main()
