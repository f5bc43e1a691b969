"""The agent store: agents, their iterations and chat in the server's SQLite database (survives restarts).

An iteration is written in one durable transaction once it has finished, so a server killed
mid-iteration loses that iteration and nothing else; the agent resumes at `iterations + 1`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from quantdesk.server.errors import NotFound

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        paused_at TEXT,
        stop_requested INTEGER NOT NULL DEFAULT 0,
        goal TEXT NOT NULL,
        inbox TEXT NOT NULL DEFAULT '',
        state_md TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        phase TEXT NOT NULL DEFAULT '',
        error TEXT,
        holdout TEXT,
        holdout_runs INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS agent_iterations (
        agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        iteration INTEGER NOT NULL,
        record TEXT NOT NULL,
        code TEXT NOT NULL,
        PRIMARY KEY (agent_id, iteration)
    )""",
    """CREATE TABLE IF NOT EXISTS agent_chat (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        ts TEXT NOT NULL,
        type TEXT NOT NULL
    )""",
]
ACTIVE = ("starting", "running", "paused")
FINISHED = ("stopped", "crashed", "completed", "max_iterations_reached")


class SqlState(Protocol):
    """What the store needs of the server's state store."""

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None: ...

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AgentRow:
    id: str
    status: str
    config: dict[str, Any]
    created_at: str
    updated_at: str
    paused: bool
    paused_at: str | None
    stop_requested: bool
    goal: str
    inbox: str
    state_md: str
    notes: str
    phase: str
    error: str | None
    holdout: dict[str, Any] | None
    holdout_runs: int


def _row(row: sqlite3.Row) -> AgentRow:
    return AgentRow(row["id"], row["status"], json.loads(row["config"]), row["created_at"], row["updated_at"],
                    bool(row["paused"]), row["paused_at"], bool(row["stop_requested"]), row["goal"], row["inbox"],
                    row["state_md"], row["notes"], row["phase"], row["error"],
                    json.loads(row["holdout"]) if row["holdout"] else None, int(row["holdout_runs"]))


class AgentStore:
    def __init__(self, state: SqlState, on_change: Callable[[str, str], object] | None = None) -> None:
        """`on_change(agent_id, change)` runs after each committed write (the service publishes it on the bus)."""
        self._state = state
        self._on_change = on_change or (lambda agent_id, change: None)
        state.ensure_schema("agents", _SCHEMA)

    def create(self, agent_id: str, config: dict[str, Any], goal: str) -> None:
        now = now_iso()
        with self._state.transaction(durable=True) as conn:
            conn.execute("INSERT INTO agents (id, status, config, created_at, updated_at, goal) VALUES "
                         "(?, 'starting', ?, ?, ?, ?)", (agent_id, json.dumps(config), now, now, goal))
        self._on_change(agent_id, "created")

    def get(self, agent_id: str) -> AgentRow:
        rows = self._state.query("SELECT * FROM agents WHERE id = ?", (agent_id,))
        if not rows:
            raise NotFound(f"no agent {agent_id!r}")
        return _row(rows[0])

    def all(self) -> list[AgentRow]:
        return [_row(r) for r in self._state.query("SELECT * FROM agents ORDER BY created_at DESC, id")]

    def count_active(self) -> int:
        rows = self._state.query(f"SELECT COUNT(*) FROM agents WHERE status IN {ACTIVE}")
        return int(rows[0][0])

    def update(self, agent_id: str, *, durable: bool = False, **fields: Any) -> None:
        if not fields:
            return
        values = [json.dumps(v) if k in ("holdout", "config") and v is not None else v for k, v in fields.items()]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._state.transaction(durable=durable) as conn:
            changed = conn.execute(f"UPDATE agents SET {assignments}, updated_at = ? WHERE id = ?",
                                   (*values, now_iso(), agent_id)).rowcount
        if not changed:
            raise NotFound(f"no agent {agent_id!r}")
        self._on_change(agent_id, "updated")

    def append_inbox(self, agent_id: str, line: str) -> None:
        with self._state.transaction() as conn:
            row = conn.execute("SELECT inbox FROM agents WHERE id = ?", (agent_id,)).fetchone()
            if row is None:
                raise NotFound(f"no agent {agent_id!r}")
            inbox = f"{row['inbox']}\n\n{line}".strip()
            conn.execute("UPDATE agents SET inbox = ?, updated_at = ? WHERE id = ?", (inbox, now_iso(), agent_id))
        self._on_change(agent_id, "updated")

    def finish_iteration(self, agent_id: str, record: dict[str, Any], code: str, *, inbox_read: str,
                         state_md: str, notes: str) -> None:
        """Write the iteration and what it changed in the agent, in one durable transaction.

        The inbox is cleared only of what this iteration read: a message that arrived meanwhile stays.
        """
        with self._state.transaction(durable=True) as conn:
            conn.execute("INSERT OR REPLACE INTO agent_iterations VALUES (?, ?, ?, ?)",
                         (agent_id, record["iteration"], json.dumps(record), code))
            row = conn.execute("SELECT inbox FROM agents WHERE id = ?", (agent_id,)).fetchone()
            inbox = str(row["inbox"]) if row else ""
            if inbox_read and inbox.startswith(inbox_read):
                inbox = inbox[len(inbox_read):].strip()
            conn.execute("UPDATE agents SET inbox = ?, state_md = ?, notes = ?, updated_at = ? WHERE id = ?",
                         (inbox, state_md, notes, now_iso(), agent_id))
        self._on_change(agent_id, "iteration")

    def iterations(self, agent_id: str) -> list[dict[str, Any]]:
        rows = self._state.query("SELECT record FROM agent_iterations WHERE agent_id = ? ORDER BY iteration",
                                 (agent_id,))
        return [json.loads(r["record"]) for r in rows]

    def iteration_count(self, agent_id: str) -> int:
        return int(self._state.query("SELECT COUNT(*) FROM agent_iterations WHERE agent_id = ?",
                                     (agent_id,))[0][0])

    def iteration(self, agent_id: str, iteration: int) -> tuple[dict[str, Any], str]:
        rows = self._state.query("SELECT record, code FROM agent_iterations WHERE agent_id = ? AND iteration = ?",
                                 (agent_id, iteration))
        if not rows:
            raise NotFound(f"agent {agent_id!r} has no iteration {iteration}")
        return json.loads(rows[0]["record"]), str(rows[0]["code"])

    def add_chat(self, agent_id: str, role: str, text: str, kind: str) -> None:
        with self._state.transaction() as conn:
            conn.execute("INSERT INTO agent_chat (agent_id, role, text, ts, type) VALUES (?, ?, ?, ?, ?)",
                         (agent_id, role, text, now_iso(), kind))
        self._on_change(agent_id, "chat")

    def chat(self, agent_id: str, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._state.query("SELECT role, text, ts, type FROM (SELECT * FROM agent_chat WHERE agent_id = ? "
                                 "ORDER BY seq DESC LIMIT ?) ORDER BY seq", (agent_id, limit))
        return [{"role": r["role"], "text": r["text"], "ts": r["ts"], "type": r["type"]} for r in rows]

    def delete(self, agent_id: str) -> None:
        with self._state.transaction(durable=True) as conn:
            conn.execute("DELETE FROM agent_chat WHERE agent_id = ?", (agent_id,))
            conn.execute("DELETE FROM agent_iterations WHERE agent_id = ?", (agent_id,))
            if not conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,)).rowcount:
                raise NotFound(f"no agent {agent_id!r}")
        self._on_change(agent_id, "deleted")
