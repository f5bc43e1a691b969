"""The control store: the trading state latch and the risk limits, in SQLite, each row with a checksum.

Fail closed: a row that is missing (on a desk that already exists), fails its checksum (edited by
hand, half-written, corrupted) or cannot be read (locked, damaged file) reads as *unknown*, and an
unknown state refuses every order. The checksum is an integrity check against accidents, not a
signature. Writes of the latch are durable (fsynced) before anyone is told the state changed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Protocol, TypeVar

TradingState = Literal["running", "paused", "killed"]
STATES: tuple[str, ...] = ("running", "paused", "killed")
_SALT = b"quantdesk-control/1\n"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS control_rows (
        name TEXT PRIMARY KEY, body TEXT NOT NULL, checksum TEXT NOT NULL)""",
]


class ControlSql(Protocol):
    """What the control plane needs of the server's state store (server/state.py `StateStore`)."""

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None: ...

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...

    def data_version(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ControlState:
    state: TradingState
    episode: int
    """Counts the kills: a flatten is done at most once per episode."""
    reason: str | None
    actor: str
    updated_ms: int
    paused_at_ms: int | None = None
    killed_at_ms: int | None = None
    kill_reason: str | None = None
    flattened_episode: int | None = None


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Pre-trade limits and circuit breakers; None switches a limit off."""

    max_order_notional_usd: float | None = 250_000.0
    max_position_notional_usd: float | None = 500_000.0
    max_gross_exposure_usd: float | None = 1_000_000.0
    max_net_exposure_usd: float | None = 1_000_000.0
    max_leverage: float | None = 10.0
    max_daily_loss_pct: float | None = 0.10
    max_drawdown_pct: float | None = 0.25
    max_orders_per_second: int | None = 100


T = TypeVar("T", ControlState, RiskLimits)


class ControlStoreError(Exception):
    """The control store cannot be trusted: missing, corrupt or unreadable."""


def _checksum(body: str) -> str:
    return hashlib.sha256(_SALT + body.encode()).hexdigest()


class ControlStore:
    def __init__(self, state: ControlSql) -> None:
        self.sql = state
        state.ensure_schema("control_store", SCHEMA)

    def read(self, name: str, kind: type[T]) -> T:
        """The row as its dataclass; ControlStoreError when it is missing, tampered with or unreadable."""
        try:
            rows = self.sql.query("SELECT body, checksum FROM control_rows WHERE name = ?", (name,))
        except sqlite3.Error as exc:
            raise ControlStoreError(f"the control store cannot be read ({type(exc).__name__})") from None
        if not rows:
            raise ControlStoreError(f"the control store has no {name} record")
        body, checksum = rows[0]["body"], rows[0]["checksum"]
        if not isinstance(body, str) or _checksum(body) != checksum:
            raise ControlStoreError(f"the {name} record fails its checksum (edited or corrupted)")
        try:
            data = json.loads(body)
            names = {f.name for f in fields(kind)}
            if not isinstance(data, dict) or set(data) != names:
                raise ValueError("fields differ")
            value = kind(**data)
        except (ValueError, TypeError) as exc:
            raise ControlStoreError(f"the {name} record is not valid ({exc})") from None
        if isinstance(value, ControlState) and value.state not in STATES:
            raise ControlStoreError(f"the {name} record holds an unknown state")
        return value

    def exists(self, name: str) -> bool:
        try:
            return bool(self.sql.query("SELECT 1 FROM control_rows WHERE name = ?", (name,)))
        except sqlite3.Error:
            return False

    @staticmethod
    def put(conn: sqlite3.Connection, name: str, value: ControlState | RiskLimits) -> None:
        body = json.dumps(asdict(value), sort_keys=True)
        conn.execute("INSERT OR REPLACE INTO control_rows (name, body, checksum) VALUES (?, ?, ?)",
                     (name, body, _checksum(body)))

    def write(self, name: str, value: ControlState | RiskLimits, *, durable: bool) -> None:
        with self.sql.transaction(durable=durable) as conn:
            self.put(conn, name, value)
