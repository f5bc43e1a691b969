"""Where windows run: in the calling thread, in a local process pool, or on a Dask cluster.

All three hand back `concurrent.futures.Future`s so the pipeline has one loop. A process-pool
crash breaks every pending future (BrokenProcessPool); `recover` builds one new pool per crash
(the other broken futures of the same dead pool do not rebuild it again) for the retries.
`close(cancel=True)` stops work promptly: pending tasks are dropped and the pool's processes (or
the LocalCluster this executor started) are terminated, not waited for. `close(cancel=False)` hands
a local pool over to the next job for `IDLE_POOL_SECONDS` (starting and warming two workers cost a
job about 35 ms, 7% of a 6-hour busy run); a pool is only ever used by one job at a time.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import threading
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from quantdesk.tools.market.worker import WindowResult, WindowTask, exit_with_parent, run_window

DASK_ADDRESS_VARIABLE = "QUANTDESK_DASK_ADDRESS"
logger = logging.getLogger("quantdesk.market")


class WindowExecutor(Protocol):
    """Runs window tasks."""

    def submit(self, task: WindowTask) -> Future[WindowResult]: ...

    def recover(self, failed: Future[WindowResult]) -> None: ...

    def close(self, *, cancel: bool) -> None: ...


class InlineExecutor:
    """Runs each window at submit time in the calling thread (workers=1 or multiprocess=False)."""

    def submit(self, task: WindowTask) -> Future[WindowResult]:
        future: Future[WindowResult] = Future()
        try:
            future.set_result(run_window(task))
        except Exception as exc:  # noqa: BLE001 - handed to the pipeline's retry logic
            future.set_exception(exc)
        return future

    def recover(self, failed: Future[WindowResult]) -> None:
        return None

    def close(self, *, cancel: bool) -> None:
        return None


def _process_context() -> multiprocessing.context.BaseContext:
    # forkserver: no fork of a threaded parent (servers run event loops and thread pools), and the
    # preloaded, warmed engine (see worker_process) makes each worker start in milliseconds at full speed
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["quantdesk.tools.market.worker_process"])
    return context


IDLE_POOL_SECONDS = 60.0
"""A pool whose job ended cleanly waits this long for the next job before its processes exit."""


class _IdlePools:
    """Pools between jobs, by worker count: the next job starts on warm processes instead of forking new ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[int, list[tuple[ProcessPoolExecutor, threading.Timer]]] = {}

    def take(self, workers: int) -> ProcessPoolExecutor | None:
        with self._lock:
            entries = self._idle.get(workers)
            if not entries:
                return None
            pool, timer = entries.pop()
        timer.cancel()
        return pool

    def give(self, workers: int, pool: ProcessPoolExecutor) -> None:
        timer = threading.Timer(IDLE_POOL_SECONDS, self._expire, (workers, pool))
        timer.daemon = True
        with self._lock:
            self._idle.setdefault(workers, []).append((pool, timer))
        timer.start()

    def close_all(self) -> None:
        with self._lock:
            entries = [entry for pools in self._idle.values() for entry in pools]
            self._idle.clear()
        for pool, timer in entries:
            timer.cancel()
            pool.shutdown(wait=True)

    def _expire(self, workers: int, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            entries = self._idle.get(workers, [])
            kept = [entry for entry in entries if entry[0] is not pool]
            if len(kept) == len(entries):
                return  # taken meanwhile
            self._idle[workers] = kept
        pool.shutdown(wait=True)


_IDLE_POOLS = _IdlePools()


def close_idle_pools() -> None:
    """Stop the processes of every pool waiting for a next job (the next job starts a fresh pool)."""
    _IDLE_POOLS.close_all()


class ProcessExecutor:
    """A local process pool of `workers` processes, kept warm between jobs for `IDLE_POOL_SECONDS`."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool = _IDLE_POOLS.take(workers) or self._new_pool()
        self._submitted: weakref.WeakSet[Future[WindowResult]] = weakref.WeakSet()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self._workers, mp_context=_process_context(),
                                   initializer=exit_with_parent)

    def submit(self, task: WindowTask) -> Future[WindowResult]:
        try:
            future = self._pool.submit(run_window, task)
        except BrokenProcessPool:
            # the pool died after the last wait, before its futures were seen to fail
            self._replace_pool()
            future = self._pool.submit(run_window, task)
        self._submitted.add(future)
        return future

    def recover(self, failed: Future[WindowResult]) -> None:
        if failed in self._submitted:  # not a future of a pool already replaced
            self._replace_pool()

    def _replace_pool(self) -> None:
        self._terminate()
        self._pool = self._new_pool()
        self._submitted = weakref.WeakSet()

    def close(self, *, cancel: bool) -> None:
        if cancel:
            self._terminate()
        else:
            # every task has finished: the processes are idle and healthy (a broken pool was replaced)
            _IDLE_POOLS.give(self._workers, self._pool)

    def _terminate(self) -> None:
        # ProcessPoolExecutor cannot stop running tasks (Python 3.14 adds terminate_workers), so kill them
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


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
            self._cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                     dashboard_address=None, silence_logs=logging.WARNING)
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


def make_executor(backend: str, workers: int, multiprocess: bool) -> WindowExecutor:
    """The executor a DriverConfig asks for."""
    if backend == "dask":
        return DaskExecutor(workers)
    if not multiprocess or workers == 1:
        return InlineExecutor()
    return ProcessExecutor(workers)
