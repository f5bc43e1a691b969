"""Helpers for the agent tests: JSON-RPC tool calls to a real server, bounded waits, small generated data."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from quantdesk.tools.agents.challenges import CHALLENGES, Challenge
from quantdesk.tools.agents.data.market import MarketData
from quantdesk.tools.agents.data.synthetic import PlantedReversal, SyntheticSource
from quantdesk.tools.agents.evaluate.evaluator import Evaluator
from quantdesk.tools.agents.sandbox.sandbox import Limits, Sandbox


@dataclass
class ToolAnswer:
    structured: dict[str, Any]
    is_error: bool
    text: str

    @property
    def kind(self) -> str:
        """The error kind the MCP door names (`invalid arguments: ...` for input problems)."""
        if not self.is_error:
            return ""
        head = self.text.split(":", 1)[0]
        return "invalid_argument" if head == "invalid arguments" else head


def call_tool(url: str, name: str, arguments: dict[str, Any], headers: dict[str, str] | None = None,
              timeout: float = 120.0) -> ToolAnswer:
    """A plain JSON-RPC tools/call to POST /mcp, as curl would send it."""
    response = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                              "params": {"name": name, "arguments": arguments}},
                          headers=headers or {}, timeout=timeout)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    text = "".join(block.get("text", "") for block in result.get("content", []))
    return ToolAnswer(result.get("structuredContent") or {}, bool(result.get("isError")), text)


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def small_data(challenge: Challenge, days: float, *, seed: int = 11, planted: float = 0.0) -> MarketData:
    assets = list(challenge.assets) + (["BTC"] if len(challenge.assets) == 1 and challenge.assets[0] != "BTC" else [])
    source = SyntheticSource(seed, planted=PlantedReversal(planted, assets=tuple(challenge.assets))
                             if planted else None)
    return source.generate(assets, int(days * 1440))


MINUTE = 60_000


class FakeBinance:
    """A loopback server speaking /api/v3/klines: `mode` picks a failing or serving behaviour."""

    def __init__(self, mode: str, listed: tuple[str, ...] | None = None) -> None:
        self.mode = mode
        self.listed = listed
        self.requests: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.rate_limited_once = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                fake.requests.append(query)
                fake.gate.wait(10)
                if fake.mode == "broken":
                    return self._send(503, {"msg": "maintenance"})
                if fake.mode == "limited" and not fake.rate_limited_once:
                    fake.rate_limited_once = True
                    return self._send(429, {"code": -1003}, {"Retry-After": "0"})
                unlisted = fake.listed is not None and query["symbol"].removesuffix("USDT") not in fake.listed
                if query["symbol"] == "NOPEUSDT" or unlisted:
                    return self._send(400, {"code": -1121, "msg": "Invalid symbol."})
                start, end = int(query["startTime"]), int(query["endTime"])
                limit = int(query["limit"])
                rows = []
                for t in range(start - start % MINUTE, end + 1, MINUTE):
                    if (t // MINUTE) % 97 == 13:
                        continue  # a missing minute
                    price = 100.0 + (t // MINUTE) % 50
                    rows.append([t, str(price), str(price + 1), str(price - 1), str(price + 0.5), "2.5", t + 59_999,
                                 "0", 1, "0", "0", "0"])
                    if len(rows) == limit:
                        break
                self._send(200, rows)

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_binance() -> Iterator[Callable[..., FakeBinance]]:
    """`fake_binance(mode, listed=None)`: a loopback /api/v3/klines server, closed at teardown."""
    made: list[FakeBinance] = []

    def make(mode: str, listed: tuple[str, ...] | None = None) -> FakeBinance:
        made.append(FakeBinance(mode, listed))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    return Sandbox(limits=Limits(wall_seconds=120, cpu_seconds=120))


@pytest.fixture(scope="session")
def evaluator(sandbox: Sandbox) -> Evaluator:
    return Evaluator(sandbox)


@pytest.fixture
def eth() -> Challenge:
    return CHALLENGES["ETH-1H-BINARY"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def make_data() -> Callable[..., MarketData]:
    """`make_data(challenge, days, seed=..., planted=...)`: generated minute bars for a challenge's assets."""
    return small_data


@pytest.fixture
def tool() -> Callable[..., ToolAnswer]:
    """`tool(url, name, arguments, headers)`: a JSON-RPC tools/call to a running server."""
    return call_tool


@pytest.fixture
def until() -> Callable[..., Any]:
    """`until(check, timeout, what)`: a bounded wait."""
    return wait_until
