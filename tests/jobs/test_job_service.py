"""The job service on a real SQLite store: ownership, restarts, cancellation, progress, errors, limits.

The kinds here are small real kinds (they count steps, save checkpoints and wait on a gate the test
opens), so each rule of the service is seen without the market engine's cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from quantdesk.server.context import ServerInfo, Services
from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.server.registry import ToolRegistry
from quantdesk.server.state import StateStore
from quantdesk.tools.jobs.kinds import CannotResume, JobContext, JobKind
from quantdesk.tools.jobs.service import JobService, error_of
from quantdesk.tools.jobs.store import JobRecord, JobStore

pytestmark = pytest.mark.anyio
STEPS = 10


class Gate:
    """Steps past `at` wait until the test opens the gate."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.opened = threading.Event()
        self.reached = threading.Event()


def counting_kind(gate: Gate, name: str = "count", resumable: bool = True, max_running: int = 2) -> JobKind:
    async def run(job: JobContext) -> dict[str, Any]:
        start = int((job.checkpoint or {}).get("next", 0))
        (job.workdir / "scratch").write_text(str(start))
        for step in range(start, STEPS):
            if step == gate.at:
                gate.reached.set()
                await anyio.to_thread.run_sync(gate.opened.wait, abandon_on_cancel=True)
            job.save_checkpoint({"next": step + 1})
            job.report(step + 1, STEPS, f"step {step + 1}")
        return {"started_at_step": start, "resumed": job.resumed}

    return JobKind(name, run=run, resume=run if resumable else None, id_prefix="qd_test", max_running=max_running)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(tmp_path / "quantdesk.sqlite3")
    yield store
    store.close()


@pytest.fixture
def make_service(tmp_path: Path, state: StateStore) -> Iterator[Callable[..., JobService]]:
    made: list[JobService] = []

    def make(*kinds: JobKind) -> JobService:
        services = Services(tmp_path, state, ServerInfo("test", "0", ()), ToolRegistry())
        service = JobService(state, tmp_path, services, {kind.name: kind for kind in kinds})
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def wait_for(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def settled(service: JobService, job_id: str) -> JobRecord:
    wait_for(lambda: service.get(job_id).finished)
    return service.get(job_id)


def test_a_server_job_stopped_with_the_server_resumes_from_its_checkpoint_at_the_next_start(
        make_service: Callable[..., JobService], tmp_path: Path) -> None:
    gate = Gate(at=4)
    first = make_service(counting_kind(gate))
    record = first.submit("count", {"n": 1}, owner="server", caller="k1")
    assert gate.reached.wait(30)
    first.close()
    stopped = first.get(record.job_id)
    assert stopped.status == "running" and stopped.checkpoint == {"next": 4}
    assert "resumes at the next start" in str(stopped.message)
    assert (tmp_path / "jobs" / record.job_id / "scratch").exists(), "a resumable job keeps its folder"

    gate.opened.set()
    second = make_service(counting_kind(gate))
    done = settled(second, record.job_id)
    assert done.status == "completed" and done.resumes == 1
    assert done.result == {"started_at_step": 4, "resumed": True}
    assert done.checkpoint is None and not (tmp_path / "jobs" / record.job_id).exists()


def test_at_start_unfinished_jobs_that_cannot_resume_are_failed_with_their_reason(
        make_service: Callable[..., JobService], state: StateStore, tmp_path: Path) -> None:
    # what a killed server leaves behind: rows still running, and a folder
    store = JobStore(state)
    rows = {"request": store.add("qd_a", "count", "request", "k1", {}),
            "unknown": store.add("qd_b", "vanished", "server", "k1", {}),
            "no_resume": store.add("qd_c", "once", "server", "k1", {})}
    for record in rows.values():
        store.mark_running(record.job_id, resumed=False)
    (tmp_path / "jobs" / "qd_a").mkdir(parents=True)
    service = make_service(counting_kind(Gate(at=-1)), counting_kind(Gate(at=-1), name="once", resumable=False))
    messages = {key: service.get(r.job_id) for key, r in rows.items()}
    assert {r.status for r in messages.values()} == {"failed"}
    assert "the call that started the job waited" in messages["request"].error.message  # type: ignore[union-attr]
    assert "no job kind 'vanished'" in messages["unknown"].error.message  # type: ignore[union-attr]
    assert "cannot resume" in messages["no_resume"].error.message  # type: ignore[union-attr]
    assert not (tmp_path / "jobs" / "qd_a").exists()


async def test_a_waiting_call_that_ends_cancels_its_request_job_but_not_a_server_job(
        make_service: Callable[..., JobService]) -> None:
    gate = Gate(at=2)
    service = make_service(counting_kind(gate))

    async def progress(done: float, total: float | None, message: str | None) -> None:
        return None

    for owner, expected in (("request", "cancelled"), ("server", "running")):
        gate.reached.clear()
        record = service.submit("count", {}, owner=owner, caller="k1")
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(service.wait, record.job_id, progress)
                await anyio.to_thread.run_sync(gate.reached.wait)
                group.cancel_scope.cancel()
        assert not scope.cancelled_caught
        assert service.get(record.job_id).status == expected, owner
    gate.opened.set()


async def test_progress_is_published_by_the_percent_or_the_second_and_only_increases(
        make_service: Callable[..., JobService]) -> None:
    async def run(job: JobContext) -> dict[str, Any]:
        for step in range(1, 20_001):
            job.report(step / 2, 10_000.0, None)  # 20,000 reports of 0.005% each
        job.report(9_000.0, 10_000.0, "a value that goes back is dropped")
        return {}

    service = make_service(JobKind("fine", run=run))
    heard: list[tuple[float, float | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        heard.append((done, total))

    record = service.submit("fine", {}, owner="request", caller="k1")
    final = await service.wait(record.job_id, progress)
    done = [d for d, _ in heard]
    assert final.status == "completed" and final.progress == 10_000.0
    assert done == sorted(set(done)) and done[-1] == 10_000.0 and {t for _, t in heard} == {10_000.0}
    assert 1 <= len(done) <= 101, "published every 1% at most (plus the end)"


async def test_a_failing_job_keeps_its_typed_error_and_a_waiting_call_raises_it_again(
        make_service: Callable[..., JobService]) -> None:
    async def run(job: JobContext) -> dict[str, Any]:
        raise InvalidArgument.from_problems([Problem("$.config.tick_size", "must be smaller than initial_price")])

    async def lost(job: JobContext) -> dict[str, Any]:
        raise CannotResume("the inputs are gone")

    service = make_service(JobKind("bad", run=run), JobKind("lost", run=lost))
    record = service.submit("bad", {}, owner="request", caller="k1")

    async def progress(done: float, total: float | None, message: str | None) -> None:
        return None

    final = await service.wait(record.job_id, progress)
    assert final.status == "failed" and final.error is not None and final.error.kind == "invalid_argument"
    error = error_of(final)
    assert isinstance(error, InvalidArgument) and [p.path for p in error.problems] == ["$.config.tick_size"]
    lost_record = settled(service, service.submit("lost", {}, owner="server", caller="k1").job_id)
    assert lost_record.error is not None and lost_record.error.message == "cannot resume: the inputs are gone"


async def test_jobs_beyond_a_kinds_limit_wait_queued_and_a_queued_job_can_be_cancelled(
        make_service: Callable[..., JobService]) -> None:
    gate = Gate(at=0)
    service = make_service(counting_kind(gate, max_running=1))
    running = service.submit("count", {}, owner="server", caller="k1")
    queued = service.submit("count", {}, owner="server", caller="k1")
    await anyio.to_thread.run_sync(gate.reached.wait)
    assert service.get(running.job_id).status == "running"
    assert service.get(queued.job_id).status == "queued"
    cancelled = await service.cancel(queued.job_id, "not needed")
    assert cancelled.status == "cancelled" and cancelled.error is not None
    assert "not needed" in cancelled.error.message
    gate.opened.set()
    assert settled(service, running.job_id).status == "completed"
    again = await service.cancel(running.job_id, "too late")
    assert again.status == "completed", "a finished job is left as it is"


def test_a_job_whose_runner_still_runs_is_left_to_it_and_one_whose_runner_died_is_taken_over(
        make_service: Callable[..., JobService], state: StateStore) -> None:
    import subprocess
    import sys

    from quantdesk.tools.jobs.store import process_token

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
        store = JobStore(state)
        theirs = store.add("qd_live", "count", "server", "k1", {}, runner=process_token(sleeper.pid))
        orphan = store.add("qd_dead", "count", "request", "k1", {}, runner=f"{dead}:1")
        for record in (theirs, orphan):
            store.mark_running(record.job_id, resumed=False)
        service = make_service(counting_kind(Gate(at=-1)))
        assert service.get("qd_live").status == "running", "another live process's job is not touched"
        assert service.get("qd_dead").status == "failed"
    finally:
        sleeper.kill()
        sleeper.wait()
