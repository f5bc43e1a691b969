"""Normalization throughput: binance trades and depth diffs against a parse-only baseline.

Run: `python bench/normalize.py [--messages N] [--depth-messages N] [--repeats R]`. Every figure is measured in this run
on the same pre-built lines (bytes, as read from a file): the baseline is `orjson.loads` of each
line; the columnar path is `Normalizer.arrow_session().feed` (lines to EVENT_SCHEMA Arrow tables, the
path of `normalize_file`, which feeds it file blocks: the same lines joined 64k at a time, built before the
timing like the lines); the dict path is `Normalizer.normalize` (lines to canonical event
dicts, the path `normalize_events` uses). Best of R runs, baseline and candidates interleaved.
Every path runs on one core (the columnar lane decodes with msgspec under the GIL), like the baseline.
Target (issue 4): columnar binance trades at >= 0.6x the baseline rate.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import time
from collections.abc import Callable

import msgspec
import orjson
import pyarrow as pa

from quantdesk.tools.normalize import Normalizer

CHUNK = 65536
BLOCKS: dict[int, list[bytes]] = {}  # pre-built file blocks per workload, like the pre-built lines


def trade_lines(n: int, seed: int) -> list[bytes]:
    """Binance spot `trade` messages (about 125 bytes each, like the spec's workload)."""
    rng = random.Random(seed)
    t, trade_id, px = 1_700_000_000_000, 3_000_000_000, 43_000.0
    out = []
    for _ in range(n):
        t += rng.randint(0, 40)
        trade_id += 1
        px = max(1.0, px + rng.choice((-0.01, 0.0, 0.01)))
        out.append(orjson.dumps({"e": "trade", "E": t + 1, "s": "BTCUSDT", "t": trade_id, "p": f"{px:.2f}",
                                 "q": f"{rng.lognormvariate(-5, 1.5):.5f}", "T": t, "m": rng.random() < 0.5,
                                 "M": True}))
    return out


def depth_lines(n: int, seed: int) -> list[bytes]:
    """A REST snapshot (1000 levels a side) then n continuous spot diffs of 1 to 20 levels."""
    rng = random.Random(seed)
    mid, tick = 43_000.0, 0.01
    bids = {round(mid - tick * (i + 1), 2): 1.0 for i in range(1000)}
    asks = {round(mid + tick * (i + 1), 2): 1.0 for i in range(1000)}
    out = [orjson.dumps({"lastUpdateId": 1000, "bids": [[f"{p:.2f}", "1.0"] for p in bids],
                         "asks": [[f"{p:.2f}", "1.0"] for p in asks]})]
    last, t = 1000, 1_700_000_000_000
    for _ in range(n):
        k = rng.randint(1, 20)
        b = [[f"{mid - tick * rng.randint(1, 1200):.2f}", "0" if rng.random() < 0.2 else f"{rng.random():.4f}"]
             for _ in range(k)]
        a = [[f"{mid + tick * rng.randint(1, 1200):.2f}", "0" if rng.random() < 0.2 else f"{rng.random():.4f}"]
             for _ in range(k)]
        t += 100
        out.append(orjson.dumps({"e": "depthUpdate", "E": t, "s": "BTCUSDT", "U": last + 1, "u": last + k,
                                 "b": b, "a": a}))
        last += k
    return out


def parse_only(lines: list[bytes]) -> None:
    loads = orjson.loads
    for line in lines:
        loads(line)


def columnar(lines: list[bytes]) -> None:
    session = Normalizer("binance", "BTCUSDT").arrow_session()
    for start in range(0, len(lines), CHUNK):
        session.feed(lines[start:start + CHUNK], start)
    session.close()


def columnar_blocks(lines: list[bytes]) -> None:
    """As `normalize_file` reads: blocks of about 8 MB of complete lines (joined here, outside the timing)."""
    session = Normalizer("binance", "BTCUSDT").arrow_session()
    start = 0
    for block in BLOCKS[id(lines)]:
        start += session.feed_block(block, start)[1]
    session.close()


def dicts(lines: list[bytes]) -> None:
    Normalizer("binance", "BTCUSDT").normalize(lines)


def best_rates(lines: list[bytes], runs: dict[str, Callable[[list[bytes]], None]], repeats: int) -> dict[str, float]:
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            gc.collect()
            started = time.perf_counter()
            run(lines)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: len(lines) / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000, help="binance trade messages")
    parser.add_argument("--depth-messages", type=int, default=30_000, help="binance depth diffs (about 1 kB each)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, orjson {orjson.__version__}, msgspec {msgspec.__version__}, "
          f"pyarrow {pa.__version__}, best of {args.repeats}, load {os.getloadavg()[0]:.2f}")
    workloads = {f"binance trade ({args.messages:,})": trade_lines(args.messages, 1),
                 f"binance depthUpdate ({args.depth_messages:,})": depth_lines(args.depth_messages, 2)}
    for lines in workloads.values():
        BLOCKS[id(lines)] = [b"\n".join(lines[i:i + CHUNK]) for i in range(0, len(lines), CHUNK)]
    runs = {"parse-only (orjson.loads)": parse_only, "columnar (lines -> Arrow)": columnar,
            "columnar (file blocks -> Arrow)": columnar_blocks, "dicts (lines -> events)": dicts}
    print(f"{'workload':30} {'path':32} {'msg/s':>12} {'x parse-only':>13}")
    for workload, lines in workloads.items():
        rates = best_rates(lines, runs, args.repeats)
        base = rates["parse-only (orjson.loads)"]
        for name, rate in rates.items():
            print(f"{workload:30} {name:32} {rate:12,.0f} {rate / base:13.2f}")
    print("target: columnar binance trades >= 0.60x parse-only")


if __name__ == "__main__":
    main()
