"""WebSocket fan-out: desk events per second delivered to 1 and to 50 subscribers of AlphaPulse's `/ws/trades`,
side by side in one run.

    .venv/bin/python bench/ws_fanout.py [--subscribers 1,50] [--fills 5000] [--batch 100] [--rounds 3]

A `quantdesk serve` subprocess on a simulated clock (pinned to CPU 0; the clients on CPU 1, all in one asyncio
loop). Each subscriber connects, sends the `{"type": "auth"}` frame and waits; then `place_orders` batches of
market orders (alternating sides) make at least --fills fills, each published once on the event bus and sent to
every subscriber as a `new_trade` message; the desk clock moves one second before each batch so the book refills.
Timing runs from the first batch sent to the last message received by the last subscriber. Deliveries per
second = subscribers x fills / that time; the ratio compares 50 subscribers with 1 (50x would mean fan-out
cost nothing). Best of --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from desk import KEY, UNLIMITED, call, cpu_seconds, start_server  # noqa: E402


async def one_round(url: str, subscribers: int, fills: int, batch: int, pid: int) -> tuple[int, float, float, float]:
    import httpx
    import websockets

    ws_url = url.replace("http://", "ws://") + "/ws/trades"
    sockets = [await websockets.connect(ws_url, max_queue=None) for _ in range(subscribers)]
    for ws in sockets:
        await ws.send(json.dumps({"type": "auth", "token": KEY}))
    await asyncio.sleep(0.5)  # every subscription is open before the first fill

    made = [0, 0]  # fills made so far, and 1 once every batch has answered

    async def drain(ws: Any) -> None:
        got = 0
        while not made[1] or got < made[0]:
            try:
                raw = await asyncio.wait_for(ws.recv(), 10)
            except TimeoutError:
                raise RuntimeError(f"a subscriber got {got} of {made[0]} messages (the rest were dropped)") from None
            message = json.loads(raw)
            if message["type"] != "new_trade":
                raise RuntimeError(f"unexpected message: {message}")
            got += 1

    orders = [{"symbol": "BTC-USDT-PERP", "side": "buy" if i % 2 == 0 else "sell", "order_type": "market",
               "quantity": 0.002} for i in range(batch)]
    async with httpx.AsyncClient(headers={"X-API-Key": KEY}, timeout=120) as client:
        started = time.perf_counter()
        server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
        readers = [asyncio.create_task(drain(ws)) for ws in sockets]
        while made[0] < fills:
            # The book refills as the clock moves: one simulated second per batch, as bench/desk.py does.
            (await client.post(f"{url}/tools/advance_clock", json={"seconds": 1})).raise_for_status()
            response = await client.post(f"{url}/tools/place_orders", json={"orders": orders})
            response.raise_for_status()
            results = response.json()["results"]
            if not all(r["ok"] for r in results):
                raise RuntimeError(f"an order failed: {next(r for r in results if not r['ok'])}")
            new = sum(len(r["fills"]) for r in results)
            if not new:
                raise RuntimeError("a batch of market orders made no fills")
            made[0] += new
        made[1] = 1
        await asyncio.gather(*readers)
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
    for ws in sockets:
        await ws.close()
    return made[0], elapsed, server_cpu, client_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="1,50")
    parser.add_argument("--fills", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.subscribers.split(",")]
    pin = len(os.sched_getaffinity(0)) >= 2
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp), pin)
        try:
            if pin:
                os.sched_setaffinity(0, {1})
            call(url, "set_risk_limits", {"disable": sorted(UNLIMITED)})
            rates: dict[int, float] = {}
            for n in counts:
                made, best, server_cpu, client_cpu = min(
                    (asyncio.run(one_round(url, n, args.fills, args.batch, proc.pid)) for _ in range(args.rounds)),
                    key=lambda run: run[1] / run[0])
                rates[n] = n * made / best
                print(f"{n:>3} subscribers: {made} fills in {best:.3f} s -> {made / best:,.0f} events/s "
                      f"published, {rates[n]:,.0f} messages/s delivered (server CPU {server_cpu / best:.0%}, "
                      f"clients' CPU {client_cpu / best:.0%} of the wall time)")
            if len(counts) >= 2:
                low, high = counts[0], counts[-1]
                print(f"delivered messages/s, {high} subscribers / {low}: {rates[high] / rates[low]:.1f}x "
                      f"(ideal {high / low:.0f}x if fan-out cost nothing)")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
