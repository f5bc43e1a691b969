"""Desk engine throughput and kill-switch latency, in process, on one core.

    .venv/bin/python bench/desk.py [--orders 10000] [--repeats 3] [--ledger disk,memory]

Cases (each on a fresh desk: control plane, engine, SQLite ledger, event bus; best of --repeats):
  market   market orders (alternating sides) against the synthetic 10-level book; the simulated clock moves
           one second every 1,000 orders, so the book refills as it would;
  limit    limit orders that rest, then a tape of trades through their prices that fills every one of them;
  kill     the kill switch with 1,000 open orders: from the call to the last cancel committed (and fsynced).
Every order goes through the risk checks, the decision log and one SQLite transaction per step (an order with
its immediate fills, or a trade print with the resting fills it causes). `disk` is a WAL SQLite file in a
temporary folder (on disk, not tmpfs); `memory` is an in-memory SQLite database (the engine's own cost).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.server.state import StateStore
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.desk.config import DeskConfig
from quantdesk.tools.desk.model import OrderRequest
from quantdesk.tools.desk.service import DeskService

PERP = "BTC-USDT-PERP"
T0 = 1_735_689_600_000
UNLIMITED = {"max_orders_per_second": None, "max_order_notional_usd": None, "max_position_notional_usd": None,
             "max_gross_exposure_usd": None, "max_net_exposure_usd": None, "max_leverage": None,
             "max_daily_loss_pct": None, "max_drawdown_pct": None}


def open_desk(folder: Path, ledger: str, replay: Path | None = None) -> tuple[DeskService, StateStore]:
    folder.mkdir(parents=True, exist_ok=True)
    state = StateStore(Path(":memory:") if ledger == "memory" else folder / "quantdesk.sqlite3")
    config = DeskConfig(clock="simulated", feed="replay" if replay else "synthetic",
                        replay_path=str(replay) if replay else None, initial_balances={"USDT": 1e9})
    desk = DeskService(state, EventBus(), config, data_dir=folder)
    if desk.error:
        raise SystemExit(desk.error)
    desk.control.set_limits(UNLIMITED, "bench")
    desk.engine.sync()
    return desk, state


def market_orders(folder: Path, ledger: str, n: int) -> float:
    desk, state = open_desk(folder, ledger)
    engine = desk.engine
    requests = [OrderRequest(PERP, "buy" if i % 2 else "sell", "market", 0.002) for i in range(n)]
    started = time.perf_counter()
    for i, request in enumerate(requests):
        engine.place_order(request)
        if i % 1000 == 999:
            engine.advance(engine.now_ms + 1000)
    elapsed = time.perf_counter() - started
    assert engine.metrics.fills >= n
    desk.close()
    state.close()
    return n / elapsed


def _tape(path: Path, levels: int, per_level: int) -> Path:
    def level(price: float, size: float) -> dict[str, float]:
        return {"price": price, "size": size}

    rows = [{"event_type": "book", "exchange": "bench", "symbol": PERP, "timestamp_ms": T0, "capture_time_ms": T0,
             "bids": [level(95000.0 - i, 50.0) for i in range(10)],
             "asks": [level(95001.0 + i, 50.0) for i in range(10)], "is_snapshot": True, "depth": 20, "gap": False}]
    for k in range(levels):
        t = T0 + 1000 + 10 * k
        rows.append({"event_type": "trade", "exchange": "bench", "symbol": PERP, "timestamp_ms": t,
                     "capture_time_ms": t, "side": "sell", "price": 94000.0 - k - 0.5, "size": per_level * 0.002,
                     "trade_id": f"t{k}", "notional_usd": 1.0})
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in EVENT_SCHEMA.names} for r in rows],
                                        schema=EVENT_SCHEMA), path)
    return path


def limit_orders(folder: Path, ledger: str, n: int) -> tuple[float, float, float]:
    levels = 500
    folder.mkdir(parents=True, exist_ok=True)
    desk, state = open_desk(folder, ledger, _tape(folder / "tape.parquet", levels, -(-n // levels)))
    engine = desk.engine
    requests = [OrderRequest(PERP, "buy", "limit", 0.002, price=94000.0 - (i % levels)) for i in range(n)]
    started = time.perf_counter()
    for request in requests:
        engine.place_order(request)
    placed = time.perf_counter()
    engine.advance(T0 + 60_000)
    filled = time.perf_counter()
    assert not engine.open_orders and engine.metrics.fills == n, (len(engine.open_orders), engine.metrics.fills)
    desk.close()
    state.close()
    return n / (filled - started), n / (placed - started), n / (filled - placed)


def kill_latency(folder: Path, ledger: str, open_orders: int = 1000) -> float:
    desk, state = open_desk(folder, ledger)
    engine = desk.engine
    mid = engine.markets[PERP].book.mid  # type: ignore[union-attr]
    assert mid is not None
    for i in range(open_orders):
        engine.place_order(OrderRequest(PERP, "buy", "limit", 0.002, price=round(mid - 200.0 - i * 0.1, 1)))
    assert len(engine.open_orders) == open_orders
    started = time.perf_counter()
    result = desk.control.kill("bench", flatten=False, actor="bench")
    elapsed = time.perf_counter() - started
    assert len(result["cancelled"]) == open_orders and not engine.open_orders
    desk.close()
    state.close()
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ledger", default="disk,memory")
    parser.add_argument("--cpu", type=int, default=0, help="pin the process to this CPU (-1: do not pin)")
    args = parser.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    root = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    print(f"load average before: {os.getloadavg()[0]:.2f}; ledger folder {root}")
    open_desk(root / "warm", "memory")  # imports and the generator's first windows, outside the timings
    rows = []
    for ledger in args.ledger.split(","):
        market = max(market_orders(root / f"market-{ledger}-{i}", ledger, args.orders) for i in range(args.repeats))
        limits = [limit_orders(root / f"limit-{ledger}-{i}", ledger, args.orders) for i in range(args.repeats)]
        limit = max(limits)
        kills = [kill_latency(root / f"kill-{ledger}-{i}", ledger) for i in range(max(5, args.repeats))]
        rows += [(ledger, "market orders vs 10-level book", f"{market:,.0f} orders/s"),
                 (ledger, "limit orders placed then filled", f"{limit[0]:,.0f} orders/s "
                                                             f"(place {limit[1]:,.0f}/s, fill {limit[2]:,.0f}/s)"),
                 (ledger, "kill switch, 1,000 open orders", f"median {statistics.median(kills):.1f} ms, "
                                                            f"max {max(kills):.1f} ms")]
    width = max(len(r[1]) for r in rows)
    for ledger, case, value in rows:
        print(f"{ledger:7s} {case:{width}s}  {value}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    root.rmdir()


if __name__ == "__main__":
    main()
