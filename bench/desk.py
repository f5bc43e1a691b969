"""The desk's benchmarks, side by side in one run: engine throughput in process, the doors against get_health, and
kill-switch latency with 1,000 open orders.

    .venv/bin/python bench/desk.py [--orders 20000] [--repeats 3] [--ledger disk,memory] [--batch 100]
                                   [--seconds 2] [--rounds 3] [--connections 4] [--skip-doors] [--skip-engine]

In process (one core; each case on a fresh desk: control plane, engine, SQLite ledger, event bus; best of
--repeats). Every order passes the risk checks (all limits off, so none refuses), the decision log and the
ledger; `disk` is a WAL SQLite file in the system's temporary folder, `memory` an in-memory database.
  market   market orders (alternating sides) against the synthetic 10-level book; the simulated clock moves one
           second every 1,000 orders, so the book refills as it would. `place_order` is one call (and one
           transaction) per order; `place_orders` is the batch tool's path, --batch orders per call and per
           transaction.
  limit    limit orders that rest (placed one call each, or --batch per call), then a tape of trade prints
           through their prices fills every one of them in one `advance`.
  kill     the kill switch with 1,000 open orders: from the call to the last cancel committed (and fsynced).
`--gc-freeze` calls gc.freeze() once the desk is warm, as a server does after start-up if it freezes its
start-up objects (see the report): the collector then no longer walks them on every full collection.

Doors (a `quantdesk serve` subprocess on a simulated clock with an on-disk ledger, pinned to CPU 0; the load
generator on CPU 1): place_order (market, alternating sides, every answer checked to be a fill) and get_health
through the plain JSON-RPC POST /mcp, REST POST /tools/<tool> and the official MCP SDK client over Streamable
HTTP, in interleaved windows; the clock advances a second before each window. Then the kill switch through
REST with 1,000 open orders (the answer comes after the last cancel is committed). Ratios are place_order /
get_health: calls per second, and server CPU per call (get_health's over place_order's).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
KEY = "qd_bench_desk_key_0000000000000000000"
QUANTDESK = str(Path(sys.executable).parent / "quantdesk")
CLK = os.sysconf("SC_CLK_TCK")


# --- in process ------------------------------------------------------------------------------------------

def open_desk(folder: Path, ledger: str, replay: Path | None = None) -> tuple[DeskService, StateStore]:
    gc.collect()  # the desks of earlier cases are garbage now: a server runs one desk, so no case pays for them
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


def place(desk: DeskService, requests: list[OrderRequest], batch: int, every: Callable[[int], None] | None) -> None:
    """Place the requests one call each (batch 1) or `batch` per place_orders call; `every(i)` after each call."""
    engine = desk.engine
    if batch == 1:
        for i, request in enumerate(requests):
            engine.place_order(request)
            if every is not None:
                every(i + 1)
        return
    for i in range(0, len(requests), batch):
        results = engine.place_orders(requests[i:i + batch])
        if any(not hasattr(r, "order") for r in results):
            raise SystemExit(f"a bench order failed: {next(r for r in results if not hasattr(r, 'order'))}")
        if every is not None:
            every(i + batch)


def market_orders(folder: Path, ledger: str, n: int, batch: int) -> float:
    desk, state = open_desk(folder, ledger)
    engine = desk.engine
    requests = [OrderRequest(PERP, "buy" if i % 2 else "sell", "market", 0.002) for i in range(n)]

    def every(done: int) -> None:
        if done % 1000 == 0:
            engine.advance(engine.now_ms + 1000)

    started = time.perf_counter()
    place(desk, requests, batch, every)
    elapsed = time.perf_counter() - started
    assert engine.metrics.fills >= n and engine.metrics.orders_accepted == n, engine.metrics
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


def limit_orders(folder: Path, ledger: str, n: int, batch: int) -> tuple[float, float, float]:
    levels = 500
    folder.mkdir(parents=True, exist_ok=True)
    desk, state = open_desk(folder, ledger, _tape(folder / "tape.parquet", levels, -(-n // levels)))
    engine = desk.engine
    requests = [OrderRequest(PERP, "buy", "limit", 0.002, price=94000.0 - (i % levels)) for i in range(n)]
    started = time.perf_counter()
    place(desk, requests, batch, None)
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
    place(desk, [OrderRequest(PERP, "buy", "limit", 0.002, price=round(mid - 200.0 - i * 0.1, 1))
                 for i in range(open_orders)], 100, None)
    assert len(engine.open_orders) == open_orders
    started = time.perf_counter()
    result = desk.control.kill("bench", flatten=False, actor="bench")
    elapsed = time.perf_counter() - started
    assert len(result["cancelled"]) == open_orders and not engine.open_orders
    desk.close()
    state.close()
    return elapsed * 1000


def engine_rows(root: Path, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    rows = []
    for ledger in args.ledger.split(","):
        for batch, call in ((1, "place_order"), (args.batch, f"place_orders x{args.batch}")):
            market = max(market_orders(root / f"market-{ledger}-{batch}-{i}", ledger, args.orders, batch)
                         for i in range(args.repeats))
            limit = max(limit_orders(root / f"limit-{ledger}-{batch}-{i}", ledger, args.orders, batch)
                        for i in range(args.repeats))
            rows += [(ledger, f"market orders vs 10-level book, {call}", f"{market:,.0f} orders/s"),
                     (ledger, f"limit orders rested then filled, {call}",
                      f"{limit[0]:,.0f} orders/s (place {limit[1]:,.0f}/s, fill {limit[2]:,.0f}/s)")]
        kills = [kill_latency(root / f"kill-{ledger}-{i}", ledger) for i in range(max(5, args.repeats))]
        rows.append((ledger, "kill switch, 1,000 open orders",
                     f"median {statistics.median(kills):.1f} ms, max {max(kills):.1f} ms"))
    return rows


# --- through the doors ---------------------------------------------------------------------------------

def request_bytes(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}",
             "Content-Type: application/json", f"X-API-Key: {KEY}",
             *[f"{k}: {v}" for k, v in (headers or {}).items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def rpc(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}


def order(side: str) -> dict[str, Any]:
    return {"symbol": PERP, "side": side, "order_type": "market", "quantity": 0.002}


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return status, await reader.readexactly(length)


def check_fill(body: bytes) -> None:
    if b'"status":"filled"' not in body or b'"isError":true' in body:
        raise RuntimeError(f"place_order did not fill: {body[:300]!r}")


async def raw_window(port: int, payloads: list[bytes], seconds: float, connections: int,
                     check: Callable[[bytes], None] | None) -> int:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < stop:
            writer.write(payloads[i % len(payloads)])
            i += 1
            status, body = await read_response(reader)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
            if check is not None:
                check(body)
            done += 1
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return done


async def sdk_window(url: str, tool: str, seconds: float, connections: int) -> int:
    """The official MCP SDK client over Streamable HTTP: `connections` concurrent calls on one session."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    done = 0
    async with create_mcp_http_client(headers={"X-API-Key": KEY}) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            # as a client does before calling tools: every page of tools/list (the SDK validates a result
            # against the listed output schema, and lists page one again for a tool it has not seen)
            cursor = (await client.list_tools()).next_cursor
            while cursor is not None:
                cursor = (await client.list_tools(cursor=cursor)).next_cursor
            stop = time.perf_counter() + seconds

            async def worker(offset: int) -> None:
                nonlocal done
                i = offset
                while time.perf_counter() < stop:
                    arguments = order("buy" if i % 2 else "sell") if tool == "place_order" else {}
                    i += 1
                    result = await client.call_tool(tool, arguments)
                    if result.is_error or (tool == "place_order" and
                                           result.structured_content["order"]["status"] != "filled"):
                        raise RuntimeError(f"{tool} through the SDK: {result}")
                    done += 1

            await asyncio.gather(*(worker(k) for k in range(connections)))
    return done


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, tool: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    response = httpx.post(f"{url}/tools/{tool}", json=body, headers={"X-API-Key": KEY}, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(f"{tool}: HTTP {response.status_code} {response.text[:300]}")
    answer: dict[str, Any] = response.json()
    return answer


def start_server(data_dir: Path, pin: bool) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
    env.update({"QUANTDESK_DATA_DIR": str(data_dir), "QUANTDESK_API_KEY": KEY, "QUANTDESK_DESK_CLOCK": "simulated",
                "QUANTDESK_DESK_BALANCE_USDT": "1000000000", "QUANTDESK_LOG_LEVEL": "warning"})
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - the server owns it until it exits
    proc = subprocess.Popen([QUANTDESK, "serve", "--port", str(port)], env=env, stdout=log, stderr=log,
                            preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pin else None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.2)


def server_kill_latency(url: str, open_orders: int = 1000) -> float:
    """REST trigger_kill_switch with `open_orders` resting: request to answer (which follows the last cancel's
    commit), then reset and resume for the next round."""
    import httpx

    best_bid = call(url, "get_quote", {"symbol": PERP})["best_bid"]
    for start in range(0, open_orders, 100):
        batch = [{"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.002,
                  "price": round(best_bid - 500.0 - (start + k) * 0.1, 1)} for k in range(100)]
        answer = call(url, "place_orders", {"orders": batch})
        assert answer["accepted"] == 100, answer
    with httpx.Client(headers={"X-API-Key": KEY}, timeout=120) as client:
        client.get(f"{url}/health")  # the connection is open before the clock starts
        started = time.perf_counter()
        response = client.post(f"{url}/tools/trigger_kill_switch", json={"reason": "bench"})
        elapsed = time.perf_counter() - started
    answer = response.json()
    assert len(answer["cancelled"]) == open_orders and answer["latched_durably"], answer
    call(url, "reset_kill_switch", {"reason": "bench", "confirm": True})
    call(url, "resume_trading", {"reason": "bench"})
    return elapsed * 1000


def door_rows(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    pin = len(os.sched_getaffinity(0)) >= 2
    with tempfile.TemporaryDirectory(prefix="bench-desk-doors-") as tmp:
        proc, url = start_server(Path(tmp), pin)
        if pin:
            os.sched_setaffinity(0, {1})
        try:
            port = int(url.rsplit(":", 1)[1])
            call(url, "set_risk_limits", {"disable": sorted(UNLIMITED)})
            mcp_json = {"Accept": "application/json"}
            raw: dict[tuple[str, str], tuple[list[bytes], Callable[[bytes], None] | None]] = {
                ("MCP JSON-RPC POST /mcp", "get_health"): ([request_bytes("/mcp", rpc("get_health", {}), mcp_json)],
                                                           None),
                ("MCP JSON-RPC POST /mcp", "place_order"): (
                    [request_bytes("/mcp", rpc("place_order", order(s)), mcp_json) for s in ("buy", "sell")],
                    check_fill),
                ("REST POST /tools/<tool>", "get_health"): ([request_bytes("/tools/get_health", {})], None),
                ("REST POST /tools/<tool>", "place_order"): (
                    [request_bytes("/tools/place_order", order(s)) for s in ("buy", "sell")], check_fill),
            }
            sdk_door = "MCP SDK client, Streamable HTTP"
            sdk = [(sdk_door, "get_health"), (sdk_door, "place_order")]
            cases = [*raw, *sdk]
            rates: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
            cpu: dict[tuple[str, str], list[float]] = {case: [] for case in cases}

            def run(case: tuple[str, str], seconds: float) -> tuple[int, float, float]:
                if case[1] == "place_order":
                    call(url, "advance_clock", {"seconds": 1})  # a fresh book for the window
                before, started = cpu_seconds(proc.pid), time.perf_counter()
                if case in raw:
                    payloads, check = raw[case]
                    count = asyncio.run(raw_window(port, payloads, seconds, args.connections, check))
                else:
                    count = asyncio.run(sdk_window(url, case[1], seconds, args.connections))
                return count, time.perf_counter() - started, cpu_seconds(proc.pid) - before

            for case in cases:  # warm-up: imports, caches, first-call paths
                run(case, 0.5)
            for _ in range(args.rounds):
                for case in cases:
                    count, elapsed, server_cpu = run(case, args.seconds)
                    rates[case].append(count / elapsed)
                    cpu[case].append(server_cpu / count * 1e6)
            kills = [server_kill_latency(url) for _ in range(max(3, args.rounds))]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    rows = []
    for door in dict.fromkeys(case[0] for case in cases):
        health, placed = (door, "get_health"), (door, "place_order")
        h_rate, p_rate = statistics.median(rates[health]), statistics.median(rates[placed])
        h_cpu, p_cpu = statistics.median(cpu[health]), statistics.median(cpu[placed])
        rows.append(("server", f"{door}: place_order / get_health",
                     f"{p_rate:,.0f} / {h_rate:,.0f} calls/s = {p_rate / h_rate:.2f}x; server CPU "
                     f"{p_cpu:,.0f} / {h_cpu:,.0f} us per call = {h_cpu / p_cpu:.2f}x"))
    rows.append(("server", "kill switch via REST, 1,000 open orders",
                 f"median {statistics.median(kills):.1f} ms, max {max(kills):.1f} ms (request to answer)"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ledger", default="disk,memory")
    parser.add_argument("--batch", type=int, default=100, help="orders per place_orders call (at most 100)")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the desk is warm")
    parser.add_argument("--seconds", type=float, default=2.0, help="door window length")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved door windows per case")
    parser.add_argument("--connections", type=int, default=4, help="concurrent door clients")
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--skip-doors", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    if not args.skip_engine:
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        root = Path(tempfile.mkdtemp(prefix="bench-desk-"))
        open_desk(root / "warm", "memory")  # imports and the generator's first windows, outside the timings
        if args.gc_freeze:
            gc.freeze()
        rows += engine_rows(root, args)
        for path in sorted(root.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        root.rmdir()
        os.sched_setaffinity(0, cpus)
    if not args.skip_doors:
        rows += door_rows(args)
    width = max(len(r[1]) for r in rows)
    print(f"gc.freeze after warm-up: {args.gc_freeze}")
    for where, case, value in rows:
        print(f"{where:7s} {case:{width}s}  {value}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
