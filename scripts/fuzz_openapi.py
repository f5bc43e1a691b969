"""Fuzz the REST surface against its own OpenAPI document with schemathesis, every check on, bounded in time.

Starts `quantdesk serve` (simulated desk clock, a throwaway data directory, every `--compat`
profile on the main port) and runs schemathesis's coverage, fuzzing and stateful phases on every
operation but the few whose valid inputs mean minutes of work (multi-day generations, research
agents, data prefetches) or a connection held open for hours (live streams); those are covered by
their own tests. Exits non-zero on any failure.

    .venv/bin/python scripts/fuzz_openapi.py [--max-examples 25] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
KEY = "qd_fuzz_admin_key_0123456789abcdef0123"
# Valid inputs to these start long work (a week of data, an agent, a 365-day prefetch) or hold a stream open.
SLOW = ("generate_dataset", "/data/generate", "normalize_file", "create_agent", "/api/agents",
        "prefetch_data", "/prefetch", "stream", "advance_clock", "run_strategy", "ask_agent", "calibrate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit("the server did not become healthy")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    schemathesis = shutil.which("schemathesis", path=str(BIN)) or str(BIN / "schemathesis")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
        env.update({"QUANTDESK_DATA_DIR": data, "QUANTDESK_API_KEY": KEY, "QUANTDESK_DESK_CLOCK": "simulated",
                    "QUANTDESK_MANTIS_RATE_LIMIT": "0"})
        with open(Path(data) / "server.log", "wb") as log:
            proc = subprocess.Popen([str(BIN / "quantdesk"), "serve", "--port", str(port)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, proc)
            exclude = "|".join(SLOW)
            config = str(Path(__file__).with_name("schemathesis.toml"))
            command = [schemathesis, "--config-file", config, "run", f"{url}/openapi.json", "--checks", "all",
                       "-H", f"X-API-Key: {KEY}",
                       "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                       "--exclude-path-regex", f".*({exclude}).*", "--request-timeout", "30",
                       "--suppress-health-check", "all"]
            done = subprocess.run(command, env={**os.environ, "NO_COLOR": "1"}, check=False)
            server_errors = [line for line in (Path(data) / "server.log").read_text().splitlines()
                             if '"level": "ERROR"' in line or "Traceback" in line]
            if server_errors:
                print("server logged errors during the run:", *server_errors[:20], sep="\n")
            return done.returncode or (1 if server_errors else 0)
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
