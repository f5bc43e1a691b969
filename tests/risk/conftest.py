"""Risk fixtures: the desk fixtures of tests/desk (a real DeskService on real SQLite), a RiskService on the same
store and bus, and helpers that call tools over REST (`POST /tools/<name>`) on a real server."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quantdesk.tools.risk.service import RiskService

_spec = importlib.util.spec_from_file_location("desk_fixtures", Path(__file__).parent.parent / "desk" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

desks = _fixtures.desks
market_file = _fixtures.market_file
ev = _fixtures.ev
T0 = _fixtures.T0
SIMULATED = {"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_DESK_SEED": "11"}


class Risks:
    """Opens a desk and its risk service together (the service reads the desk's store and publishes on its bus)."""

    def __init__(self, desks: Any) -> None:
        self.desks = desks
        self.opened: list[RiskService] = []

    def open(self, name: str = "desk", **kwargs: Any) -> tuple[Any, RiskService]:
        desk = self.desks.open(name, **kwargs)
        risk = RiskService(desk, desk.bus, desk.state, background=False)
        self.opened.append(risk)
        return desk, risk

    def close(self, risk: RiskService) -> None:
        risk.close()
        self.opened.remove(risk)
        self.desks.close(risk.desk)


@pytest.fixture
def risks(desks: Any) -> Iterator[Risks]:
    made = Risks(desks)
    yield made
    for risk in made.opened:
        risk.close()


def call(server: Any, tool: str, args: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/tools/{tool}", json=args or {}, headers=server.headers(key), timeout=120)


def ok(server: Any, tool: str, args: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
    response = call(server, tool, args, key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def rest() -> Any:
    """`rest.call(server, tool, args, key)` (the response) and `rest.ok(...)` (the 200 body)."""
    import types

    return types.SimpleNamespace(call=call, ok=ok, SIMULATED=SIMULATED)
