"""Job records in the server's SQLite store: what each job is, where it stands, what it gave.

One row per job, whatever its kind. A job is `queued`, then `running`, then `completed`, `failed`
or `cancelled`. Its owner says who it belongs to: `request` (a call that waits for it; the job
ends with that call) or `server` (started to run on its own; it survives disconnects and
restarts). The kind's checkpoint (small JSON) is what a resumed job continues from.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from quantdesk.server.errors import NotFound

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
JobOwner = Literal["request", "server"]
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS job_runs (
        job_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        owner TEXT NOT NULL,
        caller TEXT,
        arguments TEXT NOT NULL,
        progress REAL,
        total REAL,
        message TEXT,
        checkpoint TEXT,
        result TEXT,
        error TEXT,
        resumes INTEGER NOT NULL DEFAULT 0,
        runner TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        updated_at TEXT NOT NULL,
        finished_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS job_runs_by_creation ON job_runs (created_at)",
    "CREATE INDEX IF NOT EXISTS job_runs_unfinished ON job_runs (status) WHERE status IN ('queued', 'running')",
]


class SqlState(Protocol):
    """What the job store needs of the server's state store."""

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None: ...

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed, in the terms of the typed errors (`kind` is a QuantdeskError kind)."""

    kind: str
    message: str
    problems: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message,
                "problems": [{"path": path, "message": message} for path, message in self.problems]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobError:
        return cls(str(data["kind"]), str(data["message"]),
                   tuple((str(p["path"]), str(p["message"])) for p in data.get("problems", [])))


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    kind: str
    status: JobStatus
    owner: JobOwner
    caller: str | None
    arguments: dict[str, Any]
    progress: float | None
    total: float | None
    message: str | None
    checkpoint: dict[str, Any] | None
    result: dict[str, Any] | None
    error: JobError | None
    resumes: int
    runner: str | None
    """The process running the job (see `process_token`): another process leaves a job whose runner is alive."""
    created_at: str
    started_at: str | None
    updated_at: str
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


def _loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


def _record(row: sqlite3.Row) -> JobRecord:
    error = _loads(row["error"])
    return JobRecord(
        job_id=row["job_id"], kind=row["kind"], status=row["status"], owner=row["owner"], caller=row["caller"],
        arguments=json.loads(row["arguments"]), progress=row["progress"], total=row["total"], message=row["message"],
        checkpoint=_loads(row["checkpoint"]), result=_loads(row["result"]),
        error=JobError.from_dict(error) if error is not None else None, resumes=row["resumes"],
        runner=row["runner"], created_at=row["created_at"], started_at=row["started_at"], updated_at=row["updated_at"],
        finished_at=row["finished_at"])


class JobStore:
    """The `job_runs` table."""

    def __init__(self, state: SqlState) -> None:
        self._state = state
        state.ensure_schema("jobs", _SCHEMA)

    def add(self, job_id: str, kind: str, owner: JobOwner, caller: str | None, arguments: dict[str, Any],
            runner: str | None = None) -> JobRecord:
        now = now_iso()
        with self._state.transaction() as conn:
            conn.execute("INSERT INTO job_runs (job_id, kind, status, owner, caller, arguments, runner, created_at, "
                         "updated_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                         (job_id, kind, owner, caller, json.dumps(arguments, sort_keys=True), runner, now, now))
        return self.get(job_id)

    def take_over(self, job_id: str, runner: str) -> None:
        with self._state.transaction() as conn:
            conn.execute("UPDATE job_runs SET runner = ?, updated_at = ? WHERE job_id = ?", (runner, now_iso(), job_id))

    def get(self, job_id: str) -> JobRecord:
        rows = self._state.query("SELECT * FROM job_runs WHERE job_id = ?", (job_id,))
        if not rows:
            raise NotFound(f"no job {job_id!r}")
        return _record(rows[0])

    def recent(self, *, caller: str | None = None, statuses: Sequence[str] = (), kind: str | None = None,
             limit: int = 50) -> list[JobRecord]:
        """Newest first; `caller` None means every caller's jobs."""
        clauses, params = [], []
        if caller is not None:
            clauses.append("caller = ?")
            params.append(caller)
        if statuses:
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params += list(statuses)
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._state.query(f"SELECT * FROM job_runs {where} ORDER BY created_at DESC, job_id DESC LIMIT ?",
                                 (*params, limit))
        return [_record(row) for row in rows]

    def unfinished(self) -> list[JobRecord]:
        rows = self._state.query("SELECT * FROM job_runs WHERE status IN ('queued', 'running') ORDER BY created_at")
        return [_record(row) for row in rows]

    def mark_running(self, job_id: str, *, resumed: bool) -> None:
        now = now_iso()
        with self._state.transaction() as conn:
            conn.execute("UPDATE job_runs SET status = 'running', started_at = COALESCE(started_at, ?), "
                         "updated_at = ?, resumes = resumes + ? WHERE job_id = ?", (now, now, int(resumed), job_id))

    def set_progress(self, job_id: str, progress: float, total: float | None, message: str | None) -> None:
        with self._state.transaction() as conn:
            conn.execute("UPDATE job_runs SET progress = ?, total = ?, message = ?, updated_at = ? WHERE job_id = ?",
                         (progress, total, message, now_iso(), job_id))

    def set_checkpoint(self, job_id: str, checkpoint: dict[str, Any]) -> None:
        with self._state.transaction() as conn:
            conn.execute("UPDATE job_runs SET checkpoint = ?, updated_at = ? WHERE job_id = ?",
                         (json.dumps(checkpoint, sort_keys=True), now_iso(), job_id))

    def set_message(self, job_id: str, message: str) -> None:
        with self._state.transaction() as conn:
            conn.execute("UPDATE job_runs SET message = ?, updated_at = ? WHERE job_id = ?",
                         (message, now_iso(), job_id))

    def finish(self, job_id: str, status: JobStatus, *, result: dict[str, Any] | None = None,
               error: JobError | None = None, message: str | None = None) -> None:
        """Record the end of a job; its checkpoint goes (a finished job is never resumed)."""
        now = now_iso()
        with self._state.transaction() as conn:
            conn.execute(
                "UPDATE job_runs SET status = ?, result = ?, error = ?, message = COALESCE(?, message), "
                "checkpoint = NULL, finished_at = ?, updated_at = ? WHERE job_id = ?",
                (status, json.dumps(result, sort_keys=True) if result is not None else None,
                 json.dumps(error.as_dict()) if error is not None else None, message, now, now, job_id))


def process_token(pid: int | None = None) -> str:
    """`pid:start-time` of a process (Linux /proc; the pid alone elsewhere): a pid reused later does not match."""
    pid = os.getpid() if pid is None else pid
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return str(pid)
    # the command name (field 2) may hold spaces: fields after its closing parenthesis; start time is field 22
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def runner_alive(token: str | None) -> bool:
    """Whether the process a token names still runs (so its jobs are its own, not leftovers of a crash)."""
    if not token:
        return False
    pid = int(token.split(":", 1)[0])
    if pid == os.getpid():
        return False  # this process is starting: whatever its pid ran before is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return ":" not in token or process_token(pid) == token
