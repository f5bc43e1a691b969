"""Where windows run: in the calling thread, in a local process pool, or on a Dask cluster.

All three hand back `concurrent.futures.Future`s so the pipeline has one loop. A process-pool
crash breaks every pending future (BrokenProcessPool); `recover` builds one new pool per crash
(the other broken futures of the same dead pool do not rebuild it again) for the retries.
`close(cancel=True)` stops work promptly: pending tasks are dropped and the pool's processes (or
the LocalCluster this executor started) are terminated, not waited for. `close(cancel=False)` hands
a local pool over to the next job (see pools); a pool is only ever used by one job at a time.

A local pool that is still starting (its forkserver imports the engine, about 0.4 s) does not hold
the job up: until its workers answer, windows are made in the calling thread, as the inline
executor makes them; a job of a few seconds is thus never slower than one without a pool. Windows
of a fault drill (QUANTDESK_MARKET_FAULTS) always go to the pool: an injected crash must not end
the server.
"""

from __future__ import annotations

import importlib
import logging
import os
import weakref
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any, Protocol

from quantdesk.tools.market.pools import WarmPool, give_pool, take_pool
from quantdesk.tools.market.worker import WindowProgress, WindowResult, WindowTask, run_window

DASK_ADDRESS_VARIABLE = "QUANTDESK_DASK_ADDRESS"
logger = logging.getLogger("quantdesk.market")


class WindowExecutor(Protocol):
    """Runs window tasks."""

    def submit(self, task: WindowTask) -> Future[WindowResult]: ...

    def recover(self, failed: Future[WindowResult]) -> None: ...

    def close(self, *, cancel: bool) -> None: ...


def _run_here(task: WindowTask, report: WindowProgress | None) -> Future[WindowResult]:
    future: Future[WindowResult] = Future()
    try:
        future.set_result(run_window(task, report))
    except Exception as exc:  # noqa: BLE001 - handed to the pipeline's retry logic
        future.set_exception(exc)
    return future


class InlineExecutor:
    """Runs each window at submit time in the calling thread (workers=1 or multiprocess=False)."""

    def __init__(self, report: WindowProgress | None = None) -> None:
        self._report = report

    def submit(self, task: WindowTask) -> Future[WindowResult]:
        return _run_here(task, self._report)

    def recover(self, failed: Future[WindowResult]) -> None:
        return None

    def close(self, *, cancel: bool) -> None:
        return None


class ProcessExecutor:
    """A local process pool of `workers` processes, warm from an earlier job when one ended lately."""

    def __init__(self, workers: int, report: WindowProgress | None = None) -> None:
        self._workers = workers
        self._report = report
        self._pool = take_pool(workers)
        self._submitted: weakref.WeakSet[Future[WindowResult]] = weakref.WeakSet()
        self.inline_windows = 0
        """Windows made in the calling thread while the pool was starting."""

    def submit(self, task: WindowTask) -> Future[WindowResult]:
        if not self._pool.ready.is_set() and task.faults is None:
            self.inline_windows += 1
            return _run_here(replace(task, spill_prefix=None, progress_path=None), self._report)
        try:
            future = self._pool.executor.submit(run_window, task)
        except BrokenProcessPool:
            # the pool died after the last wait, before its futures were seen to fail
            self._replace_pool()
            future = self._pool.executor.submit(run_window, task)
        self._submitted.add(future)
        return future

    def recover(self, failed: Future[WindowResult]) -> None:
        if failed in self._submitted:  # not a future of a pool already replaced
            self._replace_pool()

    def _replace_pool(self) -> None:
        self._pool.terminate()
        self._pool = WarmPool(self._workers)
        self._pool.wait_started()
        self._submitted = weakref.WeakSet()

    def close(self, *, cancel: bool) -> None:
        if cancel:
            self._pool.terminate()
        else:
            # every task has finished: the processes are idle and healthy (a broken pool was replaced)
            give_pool(self._pool)


class DaskExecutor:
    """A `distributed.Client` to QUANTDESK_DASK_ADDRESS, or to a LocalCluster of `workers` processes."""

    def __init__(self, workers: int) -> None:
        # distributed ships no type hints; it is imported only when the Dask backend is chosen
        distributed: Any = importlib.import_module("distributed")
        address = os.environ.get(DASK_ADDRESS_VARIABLE)
        self._cluster: Any = None
        self._client: Any
        if address:
            self._client = distributed.Client(address, set_as_default=False)
        else:
            # ":0": a random port for the scheduler's HTTP routes; None still tries 8787 and warns when it is taken
            self._cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                     dashboard_address=":0", silence_logs=logging.WARNING)
            self._client = distributed.Client(self._cluster, set_as_default=False)
        self._futures: set[Any] = set()

    def submit(self, task: WindowTask) -> Future[WindowResult]:
        out: Future[WindowResult] = Future()
        remote = self._client.submit(run_window, task, pure=False)
        self._futures.add(remote)

        def transfer(done: Any) -> None:
            self._futures.discard(done)
            try:
                out.set_result(done.result())
            except BaseException as exc:  # noqa: BLE001 - cancelled and failed tasks alike go to the pipeline
                if not out.done():
                    out.set_exception(exc)

        remote.add_done_callback(transfer)
        return out

    def recover(self, failed: Future[WindowResult]) -> None:
        return None  # the scheduler replaces lost workers itself

    def close(self, *, cancel: bool) -> None:
        if cancel:
            for remote in list(self._futures):
                remote.cancel()
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(backend: str, workers: int, multiprocess: bool,
                  report: WindowProgress | None = None) -> WindowExecutor:
    """The executor a DriverConfig asks for; `report` hears the block-steps of windows made in this process."""
    if backend == "dask":
        return DaskExecutor(workers)
    if not multiprocess or workers == 1:
        return InlineExecutor(report)
    return ProcessExecutor(workers, report)
