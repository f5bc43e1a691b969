"""The job service: jobs run as tasks of one event loop that the server process owns, not a request.

The loop runs in a thread of its own, started with the first job, so a job lives as long as the
process whatever door started it, and a request that waits for a job only watches it. Ownership
decides what ends a job:

- `request` (a call with wait=true): the waiting call is the job's only reader, so when that call
  ends early (MCP cancellation, a client that went away, a server stop) the job is cancelled; after
  a crash such a job is marked failed, never resumed;
- `server` (wait=false): only `cancel` ends it early. A server stop interrupts it, it stays
  `running` in the store, and the next start resumes it through its kind (or marks it failed with
  the kind's reason).

Progress from a job (any thread) is published to waiting calls and the store when it has moved by
1% of its total or a second has passed since the last publication, whichever comes first; a
waiting call hears only increasing values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.from_thread import BlockingPortal

from quantdesk.server import errors
from quantdesk.server.errors import InvalidArgument, NotFound, Problem, QuantdeskError, Unavailable
from quantdesk.tools.jobs.kinds import CannotResume, JobKind, ServiceLookup
from quantdesk.tools.jobs.store import (
    JobError,
    JobOwner,
    JobRecord,
    JobStore,
    SqlState,
    process_token,
    runner_alive,
)

logger = logging.getLogger("quantdesk.jobs")

PUBLISH_SHARE = 0.01
"""Progress is published when it has moved by this share of its total..."""
PUBLISH_SECONDS = 1.0
"""... or when this long has passed since the last publication (and it has moved at all)."""
STORE_SECONDS = 0.5
"""Published progress reaches the store at most this often (the final value always does)."""
SETTLE_SECONDS = 60.0
"""How long cancel_job and a server stop wait for a job to wind down (workers stopped, files removed)."""

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


class _Watcher:
    """A waiting call: every published progress, in order, and a wake-up in the waiting call's own loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pending: deque[tuple[float, float | None, str | None]] = deque()
        self.wakeup = asyncio.Event()
        self._loop = loop

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the waiting loop is closed: nobody to tell
            self._loop.call_soon_threadsafe(self.wakeup.set)


@dataclass(slots=True)
class _Live:
    """A job this process is running: its task, its last progress and the calls watching it."""

    record: JobRecord
    lock: threading.Lock = field(default_factory=threading.Lock)
    scope: anyio.CancelScope | None = None
    cancel_reason: str | None = None
    progress: tuple[float, float | None, str | None] | None = None
    published_at: float = 0.0
    stored_at: float = 0.0
    watchers: set[_Watcher] = field(default_factory=set)
    finished: threading.Event = field(default_factory=threading.Event)


class _Run:
    """The `JobContext` a kind's run or resume receives."""

    def __init__(self, service: JobService, live: _Live, resumed: bool) -> None:
        record = live.record
        self.job_id, self.kind, self.arguments = record.job_id, record.kind, record.arguments
        self.checkpoint = record.checkpoint if resumed else None
        self.resumed = resumed
        self.services = service.services
        self._service, self._live = service, live

    @property
    def workdir(self) -> Path:
        path = self._service.workdir(self.job_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def report(self, done: float, total: float, message: str | None = None) -> None:
        self._service._report(self._live, done, total, message)

    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._service.store.set_checkpoint(self.job_id, checkpoint)


class JobService:
    def __init__(self, state: SqlState, data_dir: Path, services: ServiceLookup, kinds: Mapping[str, JobKind], *,
                 resume: bool = True) -> None:
        self.store = JobStore(state)
        self.services = services
        self.root = data_dir / "jobs"
        self.token = process_token()
        self._kinds = dict(kinds)
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._limits: dict[str, anyio.Semaphore] = {}
        self._closing = False
        if resume:
            self._recover()

    # --- start-up ---------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Jobs a stopped server left unfinished: resume the server's, fail the requests'.

        A job whose runner still runs (a server beside this process, on the same data directory) is
        that server's, and left alone.
        """
        for record in self.store.unfinished():
            if runner_alive(record.runner):
                continue
            self.store.take_over(record.job_id, self.token)
            kind = self._kinds.get(record.kind)
            if record.owner == "request":
                self._fail(record.job_id, "the server stopped while the call that started the job waited for it; "
                                          "call again (an identical generation is then served from the cache)")
            elif kind is None:
                self._fail(record.job_id, f"no job kind {record.kind!r} is registered in this server")
            elif kind.resume is None:
                self._fail(record.job_id, f"a {record.kind} job cannot resume after a restart")
            else:
                logger.info("resuming job", extra={"job_id": record.job_id, "kind": record.kind})
                self._launch(record, resumed=True)
        if self.root.is_dir():
            unfinished = {record.job_id for record in self.store.unfinished()}
            for folder in self.root.iterdir():
                if folder.name not in self._live and folder.name not in unfinished:
                    shutil.rmtree(folder, ignore_errors=True)

    def _fail(self, job_id: str, reason: str) -> None:
        self.store.finish(job_id, "failed", error=JobError("unavailable", f"interrupted: {reason}"))
        shutil.rmtree(self.workdir(job_id), ignore_errors=True)

    # --- submitting and running -------------------------------------------------------------------

    def kind(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise NotFound(f"no job kind {name!r}") from None

    def submit(self, kind: str, arguments: dict[str, Any], *, owner: JobOwner, caller: str | None) -> JobRecord:
        """Record a job and start it; it runs whether or not anyone waits for it."""
        job_kind = self.kind(kind)
        if self._closing:
            raise Unavailable("the server is stopping")
        record = self.store.add(f"{job_kind.id_prefix}_{secrets.token_hex(8)}", kind, owner, caller, arguments,
                                self.token)
        self._launch(record, resumed=False)
        return record

    def workdir(self, job_id: str) -> Path:
        return self.root / job_id

    def _ensure_portal(self) -> BlockingPortal:
        """The job loop, started with the first job: a daemon thread, so it never holds up a process exit."""
        with self._lock:
            if self._portal is None:
                started: list[BlockingPortal] = []
                ready = threading.Event()

                async def serve() -> None:
                    async with BlockingPortal() as portal:
                        started.append(portal)
                        ready.set()
                        await portal.sleep_until_stopped()

                def main() -> None:
                    try:
                        anyio.run(serve)
                    finally:
                        ready.set()

                self._thread = threading.Thread(target=main, name="quantdesk-jobs", daemon=True)
                self._thread.start()
                ready.wait()
                if not started:
                    raise RuntimeError("the job loop did not start")
                self._portal = started[0]
            return self._portal

    def _launch(self, record: JobRecord, *, resumed: bool) -> None:
        live = _Live(record)
        with self._lock:
            self._live[record.job_id] = live
        self._ensure_portal().start_task_soon(self._run, live, resumed)

    def _limit(self, kind: JobKind) -> anyio.Semaphore:
        # created in the job loop, on first use
        if kind.name not in self._limits:
            self._limits[kind.name] = anyio.Semaphore(kind.max_running)
        return self._limits[kind.name]

    async def _run(self, live: _Live, resumed: bool) -> None:
        record = live.record
        kind = self._kinds[record.kind]
        outcome: tuple[str, dict[str, Any] | None, JobError | None] | None = None
        try:
            with anyio.CancelScope() as scope:
                with live.lock:
                    live.scope = scope
                    if live.cancel_reason is not None:
                        scope.cancel()
                async with self._limit(kind):
                    self.store.mark_running(record.job_id, resumed=resumed)
                    run = _Run(self, live, resumed)
                    function = kind.resume if resumed and kind.resume is not None else kind.run
                    try:
                        outcome = ("completed", await function(run), None)
                    except CannotResume as exc:
                        outcome = ("failed", None, JobError("unavailable", f"cannot resume: {exc}"))
                    except QuantdeskError as exc:
                        problems = tuple((p.path, p.message) for p in getattr(exc, "problems", []))
                        outcome = ("failed", None, JobError(exc.kind, exc.message, problems))
                    except Exception:
                        logger.exception("job failed", extra={"job_id": record.job_id, "kind": record.kind})
                        outcome = ("failed", None, JobError("internal", f"internal error (job {record.job_id})"))
        finally:
            self._settle(live, outcome)

    def _settle(self, live: _Live, outcome: tuple[str, dict[str, Any] | None, JobError | None] | None) -> None:
        record = live.record
        # interrupted, not cancelled: a server job stopped with the server resumes from its checkpoint
        keep = outcome is None and self._closing and record.owner == "server" and live.cancel_reason == _STOPPING
        if not keep:
            # Before the final status: whoever reads a finished job finds its working folder gone.
            shutil.rmtree(self.workdir(record.job_id), ignore_errors=True)
        if keep:
            self.store.set_message(record.job_id, "interrupted by a server stop; resumes at the next start")
        elif outcome is None:
            reason = live.cancel_reason or "cancelled"
            self.store.finish(record.job_id, "cancelled", message=reason,
                              error=JobError("unavailable", f"the job was cancelled: {reason}"))
        else:
            status, result, error = outcome
            if status == "completed" and live.progress is not None and live.progress[1] is not None:
                self._publish(live, (live.progress[1], live.progress[1], live.progress[2]), force=True)
            self.store.finish(record.job_id, status, result=result, error=error)  # type: ignore[arg-type]
        with self._lock:
            self._live.pop(record.job_id, None)
        live.finished.set()
        self._notify(live)

    # --- progress ---------------------------------------------------------------------------------

    def _report(self, live: _Live, done: float, total: float, message: str | None) -> None:
        with live.lock:
            last = live.progress
            if last is not None and done <= last[0]:
                return
            moved = done - (last[0] if last is not None else 0.0)
            due = (last is None or done >= total or moved >= PUBLISH_SHARE * total
                   or time.monotonic() - live.published_at >= PUBLISH_SECONDS)
            if not due:
                return
        self._publish(live, (done, total, message))

    def _publish(self, live: _Live, progress: tuple[float, float | None, str | None], *, force: bool = False) -> None:
        now = time.monotonic()
        with live.lock:
            if not force and live.progress is not None and progress[0] <= live.progress[0]:
                return
            live.progress = progress
            live.published_at = now
            store = force or now - live.stored_at >= STORE_SECONDS
            if store:
                live.stored_at = now
            # each waiting call hears every published value (about a hundred per job, plus one a second)
            for watcher in live.watchers:
                watcher.pending.append(progress)
        if store:
            self.store.set_progress(live.record.job_id, *progress)
        self._notify(live)

    @staticmethod
    def _notify(live: _Live) -> None:
        with live.lock:
            watchers = list(live.watchers)
        for watcher in watchers:
            watcher.wake()

    # --- reading, waiting, cancelling -------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        live = self._live.get(job_id)
        if live is not None and live.progress is not None and not record.finished:
            # the store is written at most twice a second; the live value is newer
            done, total, message = live.progress
            record = _with_progress(record, done, total, message)
        return record

    def recent(self, *, caller: str | None, statuses: tuple[str, ...] = (), kind: str | None = None,
               limit: int = 50) -> list[JobRecord]:
        """Jobs newest first (`caller` None: everyone's), with the live progress of running ones."""
        return [self.get(r.job_id) if r.job_id in self._live else r
                for r in self.store.recent(caller=caller, statuses=statuses, kind=kind, limit=limit)]

    async def wait(self, job_id: str, on_progress: ProgressFn) -> JobRecord:
        """Watch a job to its end, passing its progress on; if this call ends first, a `request` job is cancelled."""
        live = self._live.get(job_id)
        if live is None:
            return self.get(job_id)
        watcher = _Watcher(asyncio.get_running_loop())
        with live.lock:
            live.watchers.add(watcher)
            if live.progress is not None:
                watcher.pending.append(live.progress)
        sent = -1.0
        try:
            while True:
                watcher.wakeup.clear()
                with live.lock:
                    heard = list(watcher.pending)
                    watcher.pending.clear()
                for progress in heard:
                    if progress[0] <= sent:
                        continue
                    sent = progress[0]
                    try:
                        await on_progress(*progress)
                    except Exception:  # noqa: BLE001 - a caller that went away is told by cancellation, not here
                        pass
                if live.finished.is_set() and not watcher.pending:
                    break
                await watcher.wakeup.wait()
        except BaseException:
            if live.record.owner == "request" and not live.finished.is_set():
                with anyio.CancelScope(shield=True):
                    await self.cancel(job_id, "the call that waited for it ended")
            raise
        finally:
            with live.lock:
                live.watchers.discard(watcher)
        return self.get(job_id)

    async def cancel(self, job_id: str, reason: str) -> JobRecord:
        """Cancel a job and wait (up to SETTLE_SECONDS) until it has wound down; a finished job is left alone."""
        live = self._live.get(job_id)
        if live is None:
            record = self.store.get(job_id)
            if not record.finished:  # recorded but run by no task here (another process's, say)
                self.store.finish(job_id, "cancelled", message=reason,
                                  error=JobError("unavailable", f"the job was cancelled: {reason}"))
            return self.store.get(job_id)
        self._request_cancel(live, reason)
        with anyio.move_on_after(SETTLE_SECONDS):
            await anyio.to_thread.run_sync(live.finished.wait, abandon_on_cancel=True)
        return self.get(job_id)

    def _request_cancel(self, live: _Live, reason: str) -> None:
        with live.lock:
            if live.cancel_reason is None:
                live.cancel_reason = reason
            scope = live.scope
        if scope is not None and self._portal is not None:
            with contextlib.suppress(RuntimeError):  # the portal already stopped
                self._portal.call(scope.cancel)

    # --- stopping ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every job: `server` jobs are kept for the next start, `request` jobs are cancelled."""
        self._closing = True
        with self._lock:
            lives = list(self._live.values())
        for live in lives:
            self._request_cancel(live, _STOPPING if live.record.owner == "server" else "the server stopped")
        deadline = time.monotonic() + SETTLE_SECONDS
        for live in lives:
            live.finished.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            portal, thread, self._portal, self._thread = self._portal, self._thread, None, None
        if portal is not None and thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                portal.call(portal.stop, True)
            thread.join(SETTLE_SECONDS)


_STOPPING = "the server is stopping"


def _with_progress(record: JobRecord, done: float, total: float | None, message: str | None) -> JobRecord:
    return replace(record, progress=done, total=total, message=message)


def error_of(record: JobRecord) -> QuantdeskError:
    """The typed error a waiting call raises for a job that did not complete (the job's own, re-raised)."""
    error = record.error or JobError("unavailable", f"the job ended {record.status}")
    if error.kind == "invalid_argument":
        if error.problems:
            return InvalidArgument.from_problems([Problem(path, message) for path, message in error.problems])
        return InvalidArgument(error.message)
    if error.kind == "internal":
        return errors.InternalError(record.job_id)
    classes: dict[str, type[QuantdeskError]] = {
        cls.kind: cls for cls in (errors.NotFound, errors.Conflict, errors.Unavailable, errors.PayloadTooLarge)}
    return classes.get(error.kind, Unavailable)(error.message)

