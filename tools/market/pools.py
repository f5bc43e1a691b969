"""Local worker pools: started in the background, kept warm between jobs, stopped with the server.

Starting a pool is slow: the forkserver is a fresh interpreter that imports and warms the engine
(`worker_process`) before it forks a worker, about 0.4 s of one core, and `ProcessPoolExecutor`
starts its workers inside `submit`, in the caller's thread. So a pool is started in a thread of its
own (`start_pool`) and says when its workers answer (`WarmPool.ready`); a job that finds its pool
still starting makes windows in-process meanwhile (see executors.ProcessExecutor). A job that ended
cleanly hands its pool back (`give_pool`) for `IDLE_POOL_SECONDS`, so the next job starts on warm
processes.

This module imports the standard library only, so a tool can start a pool before it imports numpy.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor

IDLE_POOL_SECONDS = 60.0
"""A pool whose job ended cleanly waits this long for the next job before its processes exit."""
PRELOAD = "quantdesk.tools.market.worker_process"


def exit_with_parent() -> None:
    """Pool initializer: end this worker as soon as the process that started the pool is gone.

    Pools outlive their jobs (they wait for the next one), and a worker blocked on its task queue
    never notices a parent that was killed; this one watches the parent's sentinel instead.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _process_context() -> multiprocessing.context.BaseContext:
    # forkserver: no fork of a threaded parent (servers run event loops and thread pools), and the
    # preloaded, warmed engine (see worker_process) makes each worker start in milliseconds at full speed
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])
    return context


class WarmPool:
    """A `ProcessPoolExecutor` whose workers are being started in a background thread."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=_process_context(),
                                            initializer=exit_with_parent)
        self.ready = threading.Event()
        """Set once every worker has answered (or the start failed: submits then say how)."""
        self._thread = threading.Thread(target=self._start, name="quantdesk-pool-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            # one probe per worker: the executor starts one process per submit until it has them all
            probes = [self.executor.submit(os.getpid) for _ in range(self.workers)]
            for probe in probes:
                probe.result()
        except BaseException:  # noqa: BLE001 - a broken pool shows itself to the job's next submit
            pass
        finally:
            self.ready.set()

    def wait_started(self) -> None:
        self._thread.join()

    def shutdown(self) -> None:
        self._thread.join()
        self.executor.shutdown(wait=True)

    def terminate(self) -> None:
        """Stop the workers now, running tasks included (Python 3.14 adds terminate_workers)."""
        self._thread.join()
        processes = list(getattr(self.executor, "_processes", {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


class _Pools:
    """Pools that no job holds, by worker count: started ahead of a job, or handed back by one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[int, list[tuple[WarmPool, threading.Timer]]] = {}

    def take(self, workers: int) -> WarmPool | None:
        with self._lock:
            entries = self._free.get(workers)
            if not entries:
                return None
            # a warm pool before one still starting
            entries.sort(key=lambda entry: entry[0].ready.is_set())
            pool, timer = entries.pop()
        timer.cancel()
        return pool

    def put(self, pool: WarmPool) -> None:
        timer = threading.Timer(IDLE_POOL_SECONDS, self._expire, (pool,))
        timer.daemon = True
        with self._lock:
            self._free.setdefault(pool.workers, []).append((pool, timer))
        timer.start()

    def close_all(self) -> None:
        with self._lock:
            entries = [entry for pools in self._free.values() for entry in pools]
            self._free.clear()
        for pool, timer in entries:
            timer.cancel()
            pool.shutdown()

    def _expire(self, pool: WarmPool) -> None:
        with self._lock:
            entries = self._free.get(pool.workers, [])
            kept = [entry for entry in entries if entry[0] is not pool]
            if len(kept) == len(entries):
                return  # taken meanwhile
            self._free[pool.workers] = kept
        pool.shutdown()


_POOLS = _Pools()


def prestart_pool(workers: int) -> None:
    """Start a pool of `workers` for a job about to run, unless a free one exists; unused, it stops as idle ones do."""
    if workers >= 2:
        _POOLS.put(_POOLS.take(workers) or WarmPool(workers))


def take_pool(workers: int) -> WarmPool:
    """A free pool of `workers` processes (warm, or still starting), or a new one being started."""
    return _POOLS.take(workers) or WarmPool(workers)


def give_pool(pool: WarmPool) -> None:
    """Hand a healthy, idle pool back for the next job; it stops after `IDLE_POOL_SECONDS` unused."""
    _POOLS.put(pool)


def close_idle_pools() -> None:
    """Stop the processes of every pool no job holds (the next job starts a fresh pool)."""
    _POOLS.close_all()


class WorkerPools:
    """The server's handle on the pools: closing the services stops the processes of pools kept for a next job."""

    def close(self) -> None:
        close_idle_pools()
