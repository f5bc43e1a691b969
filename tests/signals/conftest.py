"""Signals fixtures: the desk fixtures of tests/desk (a real DeskService on real SQLite, replaying a hand-written
market on a simulated clock), a RiskService and a SignalService on the same store and bus, and planted markets."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from quantdesk.tools.risk.service import RiskService
from quantdesk.tools.signals.service import SignalService

_spec = importlib.util.spec_from_file_location("desk_fixtures", Path(__file__).parent.parent / "desk" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

desks = _fixtures.desks
market_file = _fixtures.market_file
ev = _fixtures.ev
T0 = _fixtures.T0
MINUTE = 60_000
SYMBOLS = ("BTC-USDT", "BTC-USDT-PERP", "ETH-USDT", "ETH-USDT-PERP")


def planted(ev: Any, market_file: Any, mids: Callable[[str, int], float], minutes: int, depth: float = 1_000.0
            ) -> Path:
    """A book every minute for every symbol at mids(symbol, minute), one tick either side, `depth` deep."""
    events = []
    for m in range(minutes + 1):
        for symbol in SYMBOLS:
            mid = mids(symbol, m)
            events.append(ev.book(symbol, T0 + m * MINUTE, [(round(mid - 0.5, 1), depth)],
                                  [(round(mid + 0.5, 1), depth)]))
    return market_file(events)


@pytest.fixture
def plant(ev: Any, market_file: Any) -> Callable[[Callable[[str, int], float], int], Path]:
    """`plant(mids, minutes)`: a replay file of the planted market (see `planted`)."""

    def make(mids: Callable[[str, int], float], minutes: int) -> Path:
        return planted(ev, market_file, mids, minutes)

    return make


class Strategies:
    def __init__(self, desks: Any) -> None:
        self.desks = desks
        self.opened: list[tuple[RiskService, SignalService]] = []

    def open(self, name: str = "desk", **kwargs: Any) -> tuple[Any, SignalService]:
        desk = self.desks.open(name, **kwargs)
        risk = RiskService(desk, desk.bus, desk.state, background=False)
        signals = SignalService(desk, risk, desk.bus, desk.state, background=False)
        self.opened.append((risk, signals))
        return desk, signals


@pytest.fixture
def strategies(desks: Any) -> Iterator[Strategies]:
    made = Strategies(desks)
    yield made
    for risk, signals in made.opened:
        signals.close()
        risk.close()
