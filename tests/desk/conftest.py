"""Desks for the tests: the real DeskService (control plane, engine, ledger, bus) on a real SQLite file, fed by
the synthetic generator or by a hand-written canonical-event Parquet file replayed on a simulated clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.server.state import StateStore
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.desk.config import DeskConfig
from quantdesk.tools.desk.service import DeskService

T0 = 1_735_689_600_000
"""2025-01-01T00:00:00Z: a funding boundary (00/08/16 UTC) and the desk's default simulated start."""


def book(symbol: str, t_ms: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> dict[str, Any]:
    return {"event_type": "book", "exchange": "test", "symbol": symbol, "timestamp_ms": t_ms,
            "capture_time_ms": t_ms, "bids": [{"price": p, "size": s} for p, s in bids],
            "asks": [{"price": p, "size": s} for p, s in asks], "is_snapshot": True, "depth": len(bids) + len(asks),
            "gap": False}


def trade(symbol: str, t_ms: int, price: float, size: float, side: str = "sell") -> dict[str, Any]:
    return {"event_type": "trade", "exchange": "test", "symbol": symbol, "timestamp_ms": t_ms,
            "capture_time_ms": t_ms, "side": side, "price": price, "size": size, "trade_id": f"t{t_ms}",
            "notional_usd": price * size}


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    """A canonical-event Parquet file (the same schema generate_dataset and normalize write)."""
    rows = []
    for event in sorted(events, key=lambda e: (e["timestamp_ms"], e["event_type"] != "book")):
        rows.append({name: event.get(name) for name in EVENT_SCHEMA.names})
    pq.write_table(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), path)
    return path


class Desks:
    """Opens desks on files under one temporary folder and closes them at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.opened: list[tuple[DeskService, StateStore]] = []

    def open(self, name: str = "desk", *, replay: Path | None = None, seed: int = 42, balance: float = 100_000.0,
             start_ms: int | None = None, bus: EventBus | None = None) -> DeskService:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        state = StateStore(folder / "quantdesk.sqlite3")
        config = DeskConfig(clock="simulated", start_time_ms=start_ms, feed="replay" if replay else "synthetic",
                            seed=seed, replay_path=str(replay) if replay else None,
                            initial_balances={"USDT": balance})
        desk = DeskService(state, bus or EventBus(), config, data_dir=folder)
        assert desk.error is None, desk.error
        self.opened.append((desk, state))
        return desk

    def close(self, desk: DeskService) -> None:
        for item in list(self.opened):
            if item[0] is desk:
                desk.close()
                item[1].close()
                self.opened.remove(item)

    def close_all(self) -> None:
        for desk, state in self.opened:
            desk.close()
            state.close()
        self.opened.clear()


@pytest.fixture
def desks(tmp_path: Path) -> Iterator[Desks]:
    made = Desks(tmp_path)
    yield made
    made.close_all()


@pytest.fixture
def market_file(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Path]:
    counter = iter(range(1_000_000))

    def make(events: list[dict[str, Any]]) -> Path:
        return write_events(tmp_path / f"market-{next(counter)}.parquet", events)

    return make


@pytest.fixture
def ev() -> Any:
    """The helpers that write markets: `ev.book`, `ev.trade` and the start instant `ev.T0`."""
    import types

    return types.SimpleNamespace(book=book, trade=trade, T0=T0)
