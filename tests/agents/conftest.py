"""Helpers for the agent tests: JSON-RPC tool calls to a real server, bounded waits, small generated data."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
