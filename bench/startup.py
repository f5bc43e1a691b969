"""Start-up, measured side by side in one run: spawn to `initialize` answer over stdio, and whole CLI commands.

Compares `quantdesk stdio` with a minimal stdio server written with the official SDK (one tool),
`quantdesk call get_health` and `quantdesk tools` with the same minimal server's start, and
prints the size of `tools/list`. Runs alternate so machine noise hits both sides alike.

    .venv/bin/python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUANTDESK = str(Path(sys.executable).parent / "quantdesk")
MINIMAL = '''
import anyio
import mcp.types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name="add", input_schema={"type": "object"})])

server = Server("minimal", on_list_tools=list_tools)

async def main():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
'''
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "bench", "version": "1"}}}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


def env(data_dir: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
    out["QUANTDESK_DATA_DIR"] = data_dir
    out["QUANTDESK_TOOLS_PAGE_SIZE"] = "1000"
    return out


def spawn_to_initialize(command: list[str], data_dir: str, list_tools: bool = False) -> tuple[float, int]:
    """Seconds from spawn to the initialize answer, or to the tools/list answer with `list_tools`
    (with the bytes of the tools array)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env(data_dir))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
    proc.stdin.flush()
    proc.stdout.readline()
    elapsed = time.perf_counter() - started
    size = 0
    if list_tools:
        proc.stdin.write((json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n").encode())
        proc.stdin.write((json.dumps(TOOLS_LIST) + "\n").encode())
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        elapsed = time.perf_counter() - started
        size = len(json.dumps(answer["result"]["tools"], separators=(",", ":")))
    proc.stdin.close()
    proc.wait(timeout=30)
    return elapsed, size


def whole(command: list[str], data_dir: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as data:
        minimal = Path(data) / "minimal_server.py"
        minimal.write_text(MINIMAL)
        cases = {
            "minimal SDK stdio server, spawn to initialize": lambda: spawn_to_initialize(
                [sys.executable, str(minimal)], data)[0],
            "quantdesk stdio, spawn to initialize": lambda: spawn_to_initialize([QUANTDESK, "stdio"], data)[0],
            "minimal SDK stdio server, spawn to tools/list": lambda: spawn_to_initialize(
                [sys.executable, str(minimal)], data, list_tools=True)[0],
            "quantdesk stdio, spawn to tools/list": lambda: spawn_to_initialize(
                [QUANTDESK, "stdio"], data, list_tools=True)[0],
            "quantdesk call get_health, whole process": lambda: whole([QUANTDESK, "call", "get_health"], data),
            "quantdesk tools, whole process": lambda: whole([QUANTDESK, "tools"], data),
        }
        for fn in cases.values():  # warm the file cache once
            fn()
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, fn in cases.items():
                times[name].append(fn())
        _, size = spawn_to_initialize([QUANTDESK, "stdio"], data, list_tools=True)
    base = statistics.median(times["minimal SDK stdio server, spawn to initialize"])
    print(f"{'case':<48} {'median s':>9} {'min s':>7} {'x minimal':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<48} {median:>9.3f} {min(values):>7.3f} {median / base:>10.2f}")
    print(f"tools/list: {size} bytes (compact JSON of the tools array)")


if __name__ == "__main__":
    main()
