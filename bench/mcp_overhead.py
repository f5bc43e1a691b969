"""Per-call cost of the doors, measured side by side on one server.

Cases, all answering the same JSON (the get_health result):
  (a) MCP `tools/call` over POST /mcp (plain JSON client, as curl or the Aleatoric document sends it)
  (b) the derived REST route POST /tools/get_health
  (c) a bare FastAPI route added to the same app, returning the same JSON with no auth or validation
plus, for context, MCP in the 2026-07-28 per-request era.

The server runs in a subprocess pinned to CPU 0; the load generator (raw HTTP/1.1 keep-alive
connections on asyncio, much cheaper per request than an HTTP library) runs here, pinned to CPU 1.
Server CPU per call comes from /proc/<pid>/stat. Cases are interleaved in short windows so drift
hits them all alike; the table reports medians. Run: `.venv/bin/python bench/mcp_overhead.py`.
"""



import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "qd_bench_key_000000000000000000000000"
CLK = os.sysconf("SC_CLK_TCK")
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {}}


def serve(port: int, data_dir: str) -> None:
    from datetime import UTC, datetime

    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response

    from quantdesk.server.app import create_app
    from quantdesk.server.discovery import package_version
    from quantdesk.server.http_state import json_response
    from quantdesk.server.settings import Settings

    app = create_app(Settings(data_dir=Path(data_dir), env_api_key=KEY))
    started = time.time()
    version = package_version()  # importlib.metadata is slow; the tool reads a cached copy too

    @app.post("/bench/bare")
    async def bare(request: Request) -> Response:
        now = datetime.now(UTC)
        return json_response({"status": "ok", "name": "quantdesk", "version": version,
                              "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                              "uptime_seconds": round(now.timestamp() - started, 3)})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def request_bytes(path: str, body: dict[str, object], headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}",
             "Content-Type: application/json", f"X-API-Key: {KEY}", *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_health", "arguments": {}}}
CASES: dict[str, bytes] = {
    "(a) MCP tools/call, JSON": request_bytes("/mcp", CALL, {"Accept": "application/json"}),
    "(b) REST POST /tools/get_health": request_bytes("/tools/get_health", {}, {}),
    "(c) bare FastAPI route": request_bytes("/bench/bare", {}, {}),
    "MCP 2026-07-28 per-request, JSON": request_bytes(
        "/mcp", {**CALL, "params": {**CALL["params"], "_meta": MODERN_META}},
        {"Accept": "application/json", "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
         "Mcp-Name": "get_health"}),
}


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lowered = head.lower()
    if b"content-length:" in lowered:
        length = int(lowered.split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    else:  # chunked (SSE responses)
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def window(port: int, payload: bytes, seconds: float, connections: int) -> int:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            writer.write(payload)
            status = await read_response(reader)
            if status != 200:
                raise RuntimeError(f"HTTP {status} from {payload[:40]!r}")
            done += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return done


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.data_dir)
        return 0
    cpus = os.sched_getaffinity(0)
    pin = len(cpus) >= 2
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        cmd = [sys.executable, __file__, "--serve", str(port), "--data-dir", data]
        proc = subprocess.Popen(cmd, preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pin else None)
        if pin:
            os.sched_setaffinity(0, {1})
        try:
            import httpx

            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            server_pid = proc.pid
            for payload in CASES.values():  # warm-up: imports, caches, first-call paths
                asyncio.run(window(port, payload, 0.5, args.connections))
            rates: dict[str, list[float]] = {name: [] for name in CASES}
            cpu: dict[str, list[float]] = {name: [] for name in CASES}
            for _ in range(args.rounds):
                for name, payload in CASES.items():
                    before = cpu_seconds(server_pid)
                    started = time.perf_counter()
                    count = asyncio.run(window(port, payload, args.seconds, args.connections))
                    elapsed = time.perf_counter() - started
                    rates[name].append(count / elapsed)
                    cpu[name].append((cpu_seconds(server_pid) - before) / count * 1e6)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    bare = "(c) bare FastAPI route"
    base_rate, base_cpu = statistics.median(rates[bare]), statistics.median(cpu[bare])
    print(f"server pinned to CPU 0, load generator to CPU 1: {pin}; {args.connections} keep-alive connections; "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s per case\n")
    print("| case | req/s (median) | vs (c) | server CPU µs/call | (c) CPU / case CPU |")
    print("|---|---|---|---|---|")
    for name in CASES:
        rate, per_call = statistics.median(rates[name]), statistics.median(cpu[name])
        print(f"| {name} | {rate:,.0f} | {rate / base_rate:.2f}x | {per_call:,.0f} | {base_cpu / per_call:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
