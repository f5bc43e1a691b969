"""The decision log and the risk-event log: append-only SQLite tables (triggers refuse updates and deletes).

One decision per order intent, whatever its source (a tool call, a control-plane close, later a hedge
or a strategy), with the votes behind it as a list, the verdict and the reason codes; control actions
(pause, resume, kill, reset) are logged too, as `decision_type` "control".
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from quantdesk.tools.control.store import ControlSql

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS control_decisions (
        seq INTEGER PRIMARY KEY, decision_id TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
        decision_type TEXT NOT NULL, source TEXT NOT NULL, symbol TEXT, summary TEXT NOT NULL,
        agent_votes TEXT NOT NULL, selected_signal_id TEXT, selected_order_id TEXT, risk_passed INTEGER NOT NULL,
        risk_reasons TEXT NOT NULL, risk_messages TEXT NOT NULL, details TEXT NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS control_decisions_no_update BEFORE UPDATE ON control_decisions
        BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS control_decisions_no_delete BEFORE DELETE ON control_decisions
        BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END""",
    """CREATE TABLE IF NOT EXISTS control_risk_events (
        seq INTEGER PRIMARY KEY, timestamp_ms INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL,
        details TEXT NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS control_risk_events_no_update BEFORE UPDATE ON control_risk_events
        BEGIN SELECT RAISE(ABORT, 'the risk-event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS control_risk_events_no_delete BEFORE DELETE ON control_risk_events
        BEGIN SELECT RAISE(ABORT, 'the risk-event log is append-only'); END""",
]


@dataclass(frozen=True, slots=True)
class Decision:
    seq: int
    decision_id: str
    timestamp_ms: int
    decision_type: str
    source: str
    symbol: str | None
    summary: str
    agent_votes: list[dict[str, Any]]
    selected_signal_id: str | None
    selected_order_id: str | None
    risk_passed: bool
    risk_reasons: list[str]
    risk_messages: list[str]
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"decision_id": self.decision_id, "timestamp_ms": self.timestamp_ms,
                "decision_type": self.decision_type, "source": self.source, "symbol": self.symbol,
                "summary": self.summary, "agent_votes": self.agent_votes,
                "selected_signal_id": self.selected_signal_id, "selected_order_id": self.selected_order_id,
                "risk_passed": self.risk_passed, "risk_reasons": self.risk_reasons,
                "risk_messages": self.risk_messages, "details": self.details}


@dataclass(frozen=True, slots=True)
class RiskEvent:
    seq: int
    timestamp_ms: int
    code: str
    message: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "timestamp_ms": self.timestamp_ms, "code": self.code, "message": self.message,
                "details": self.details}


_INSERT = ("INSERT INTO control_decisions (seq, decision_id, timestamp_ms, decision_type, source, symbol, summary, "
           "agent_votes, selected_signal_id, selected_order_id, risk_passed, risk_reasons, risk_messages, details) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class DecisionLog:
    def __init__(self, sql: ControlSql) -> None:
        self.sql = sql
        sql.ensure_schema("control_decisions", SCHEMA)
        self._seq = int(sql.query("SELECT COALESCE(MAX(seq), 0) FROM control_decisions")[0][0])
        self._staged: list[tuple[Any, ...]] = []
        self._risk_seq = int(sql.query("SELECT COALESCE(MAX(seq), 0) FROM control_risk_events")[0][0])

    def append(self, conn: sqlite3.Connection, *, timestamp_ms: int, decision_type: str, source: str,
               symbol: str | None, summary: str, agent_votes: list[dict[str, Any]], signal_id: str | None,
               order_id: str | None, risk_passed: bool, reasons: list[tuple[str, str]],
               details: dict[str, Any]) -> Decision:
        """Append in the caller's transaction (after any staged entries, which keep their place)."""
        row = self.stage(timestamp_ms=timestamp_ms, decision_type=decision_type, source=source, symbol=symbol,
                         summary=summary, agent_votes=agent_votes, signal_id=signal_id, order_id=order_id,
                         risk_passed=risk_passed, reasons=reasons, details=details)
        self.write_staged(conn)
        return Decision(row[0], row[1], timestamp_ms, decision_type, source, symbol, summary, agent_votes, signal_id,
                        order_id, risk_passed, [c for c, _ in reasons], [m for _, m in reasons], details)

    def stage(self, *, timestamp_ms: int, decision_type: str, source: str, symbol: str | None, summary: str,
              agent_votes: list[dict[str, Any]], signal_id: str | None, order_id: str | None, risk_passed: bool,
              reasons: list[tuple[str, str]], details: dict[str, Any]) -> tuple[Any, ...]:
        """An entry whose row waits for `write_staged` in the same transaction (one statement for a step's
        entries); `discard_staged` after a rollback. The sequence is only advanced for good if it commits.
        Returns the row as it will be stored (`decision_from_row` reads it)."""
        return self.stage_row(timestamp_ms, decision_type, source, symbol, summary, agent_votes, signal_id, order_id,
                              risk_passed, reasons, details)

    def stage_row(self, timestamp_ms: int, decision_type: str, source: str, symbol: str | None, summary: str,
                  agent_votes: list[dict[str, Any]], signal_id: str | None, order_id: str | None, risk_passed: bool,
                  reasons: list[tuple[str, str]], details: dict[str, Any]) -> tuple[Any, ...]:
        """`stage` with positional arguments (an order intent stages one per order)."""
        seq = self._seq + 1
        if reasons:
            codes, messages = _json([c for c, _ in reasons]), _json([m for _, m in reasons])
        else:
            codes = messages = "[]"
        row = (seq, f"decision_{seq:08d}", timestamp_ms, decision_type, source, symbol, summary, _json(agent_votes),
               signal_id, order_id, int(risk_passed), codes, messages, _json(details))
        self._staged.append(row)
        self._seq = seq
        return row

    def write_staged(self, conn: sqlite3.Connection) -> None:
        staged = self._staged
        if len(staged) == 1:
            conn.execute(_INSERT, staged[0])
        elif staged:
            conn.executemany(_INSERT, staged)
        staged.clear()

    def discard_staged(self) -> None:
        """After a rolled-back transaction: forget what was staged and take the sequence back from the table."""
        self._staged.clear()
        self.resync()

    def resync(self) -> None:
        """After a rolled-back transaction: take the sequence back from the table."""
        self._seq = int(self.sql.query("SELECT COALESCE(MAX(seq), 0) FROM control_decisions")[0][0])

    def entries(self, *, since_ms: int | None = None, until_ms: int | None = None, risk_passed: bool | None = None,
             symbol: str | None = None, decision_type: str | None = None, source: str | None = None,
             limit: int = 100) -> list[Decision]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("timestamp_ms >= ?", since_ms), ("timestamp_ms <= ?", until_ms),
                              ("symbol = ?", symbol), ("decision_type = ?", decision_type), ("source = ?", source)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if risk_passed is not None:
            where.append("risk_passed = ?")
            params.append(int(risk_passed))
        sql = (f"SELECT * FROM control_decisions {'WHERE ' + ' AND '.join(where) if where else ''} "
               "ORDER BY seq DESC LIMIT ?")
        return [_decision(r) for r in self.sql.query(sql, [*params, limit])]

    def add_risk_event(self, conn: sqlite3.Connection, timestamp_ms: int, code: str, message: str,
                       details: dict[str, Any]) -> RiskEvent:
        seq = self._risk_seq + 1
        conn.execute("INSERT INTO control_risk_events (seq, timestamp_ms, code, message, details) "
                     "VALUES (?, ?, ?, ?, ?)", (seq, timestamp_ms, code, message, _json(details)))
        self._risk_seq = seq
        return RiskEvent(seq, timestamp_ms, code, message, details)

    def risk_events(self, *, since_ms: int | None, code: str | None, limit: int) -> list[RiskEvent]:
        where: list[str] = []
        params: list[Any] = []
        if since_ms is not None:
            where.append("timestamp_ms >= ?")
            params.append(since_ms)
        if code is not None:
            where.append("code = ?")
            params.append(code)
        sql = (f"SELECT * FROM control_risk_events {'WHERE ' + ' AND '.join(where) if where else ''} "
               "ORDER BY seq DESC LIMIT ?")
        return [RiskEvent(r["seq"], r["timestamp_ms"], r["code"], r["message"], json.loads(r["details"]))
                for r in self.sql.query(sql, [*params, limit])]


def _json(value: Any) -> str:
    return "[]" if value == [] else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def decision_from_row(row: tuple[Any, ...]) -> Decision:
    """A decision from its stored row (the tuple `DecisionLog.stage` returns, in the table's column order)."""
    return Decision(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]), row[8], row[9],
                    bool(row[10]), json.loads(row[11]), json.loads(row[12]), json.loads(row[13]))


def _decision(r: sqlite3.Row) -> Decision:
    return Decision(r["seq"], r["decision_id"], r["timestamp_ms"], r["decision_type"], r["source"], r["symbol"],
                    r["summary"], json.loads(r["agent_votes"]), r["selected_signal_id"], r["selected_order_id"],
                    bool(r["risk_passed"]), json.loads(r["risk_reasons"]), json.loads(r["risk_messages"]),
                    json.loads(r["details"]))
