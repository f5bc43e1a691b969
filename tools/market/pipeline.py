"""Generation jobs: windows made by an executor, stitched in order into one Parquet file, atomically.

The parent walks the windows in order: it cuts each window's inputs from the streaming pre-pass,
keeps at most `2 * workers` windows in flight (running, waiting to be retried or waiting to be
written), and appends finished windows in window order. Memory is bounded by the windows in flight,
whatever the duration. A failed window is retried after `backoff_seconds * 2**(attempt - 1)`; a
crashed worker pool is rebuilt and its windows retried; after `max_retries` the job fails. The
file is written to a temporary name beside the target, fsynced and renamed only on success; on any
failure or cancellation the temporary file is removed and nothing is left behind. Workers of a
local pool hand their encoded row groups over as files in tmpfs (`SPILL_DIRECTORY`), read once and
removed by the parent (and swept when the job ends, whatever happened), instead of through the
pool's pipe, which copied and pickled every byte several times (measured: a fifth of the parent's
CPU time in a 2-worker run). Written bytes are handed to the kernel's writeback as they go, so the
final fsync waits for the tail only (it cost 20 ms, 4% of a 6-hour busy run, at the end).

Errors: `GenerationCancelled` (the cancel event was set), `GenerationFailed` (a window failed
after its retries), `ValueError` (a manifest the engine cannot honour), `OSError` (the output
could not be written: permissions, disk full).
"""

from __future__ import annotations

import glob
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest
from quantdesk.tools.market.blocks import BlockPlan, Window
from quantdesk.tools.market.coarse import CoarsePath
from quantdesk.tools.market.encode import encode_events
from quantdesk.tools.market.executors import InlineExecutor, ProcessExecutor, WindowExecutor, make_executor
from quantdesk.tools.market.faults import FaultPlan
from quantdesk.tools.market.params import ModelParams
from quantdesk.tools.market.parquet_encoding import EncodedRowGroup
from quantdesk.tools.market.parquet_stitch import ParquetStitcher
from quantdesk.tools.market.table import build_table, empty_table
from quantdesk.tools.market.window import WindowEvents, generate_events, window_inputs
from quantdesk.tools.market.worker import WindowResult, WindowTask, cached_params

_POLL_SECONDS = 0.05
_WRITEBACK_BYTES = 4 << 20
SPILL_DIRECTORY = Path("/dev/shm")
"""A local pool's workers hand encoded row groups over as files here (tmpfs) when it exists."""


class GenerationCancelled(Exception):
    """The job's cancel event was set; no file was left behind."""


class GenerationFailed(RuntimeError):
    """A window kept failing after its retries; no file was left behind."""

    def __init__(self, message: str, window: int) -> None:
        super().__init__(message)
        self.window = window


@dataclass(frozen=True, slots=True)
class GenerationReport:
    """What a finished job wrote."""

    path: str
    row_count: int
    rows_by_event_type: dict[str, int]
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None
    sha256: str
    bytes: int
    windows: int
    retries: int
    row_groups: int
    model_version: str = MODEL_VERSION


@dataclass(slots=True)
class _Flight:
    """A window between submission and being written."""

    task: WindowTask
    attempt: int = 1
    retry_at: float | None = None
    result: WindowResult | None = None
    future: Future[WindowResult] | None = field(default=None)


def _make_task(manifest: SimulationManifest, params: ModelParams, plan: BlockPlan, path: CoarsePath,
               window: Window, faults: FaultPlan | None, spill_prefix: str | None) -> WindowTask:
    inputs = window_inputs(path, params, window.first_block, window.stop_block)
    # the next windows need nothing before their own lookback
    path.release(window.first_block - params.lookback_blocks - 1)
    starts = tuple(range(window.first_block, window.stop_block, plan.blocks_per_unit))
    return WindowTask(manifest=manifest, index=window.index, inputs=inputs, unit_starts=starts, faults=faults,
                      spill_prefix=spill_prefix)


def _spill_prefix(executor: WindowExecutor) -> str | None:
    """Where a local pool's workers leave encoded bodies for the parent: tmpfs, when there is one."""
    if not isinstance(executor, ProcessExecutor) or not os.access(SPILL_DIRECTORY, os.W_OK):
        return None
    return str(SPILL_DIRECTORY / f"quantdesk-{uuid.uuid4().hex}-")


def _remove_spilled(prefix: str | None) -> None:
    if prefix is not None:
        for path in glob.glob(glob.escape(prefix) + "*"):
            Path(path).unlink(missing_ok=True)


class _Job:
    """The window loop of one generation job."""

    def __init__(self, manifest: SimulationManifest, driver: DriverConfig, executor: WindowExecutor,
                 stitcher: ParquetStitcher, on_window: Callable[[int, int], None] | None,
                 cancel: threading.Event | None) -> None:
        self.manifest, self.driver, self.executor, self.stitcher = manifest, driver, executor, stitcher
        self.on_window, self.cancel = on_window, cancel or threading.Event()
        self.params = cached_params(manifest)
        self.plan = BlockPlan.for_manifest(manifest)
        self.windows = self.plan.windows(driver.window_seconds)
        # an inline executor runs at submit time: one window at a time keeps its memory to one window
        self.in_flight_limit = 1 if isinstance(executor, InlineExecutor) else 2 * driver.workers
        self.faults = FaultPlan.from_environment()
        self.spill_prefix = _spill_prefix(executor)
        self._buffer = bytearray()
        self.retries = 0
        self.rows = {"trade": 0, "book": 0}
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    def run(self) -> None:
        path = CoarsePath(self.params)
        flights: dict[int, _Flight] = {}
        next_submit = next_write = 0
        while next_write < len(self.windows):
            if self.cancel.is_set():
                raise GenerationCancelled("generation cancelled")
            while next_submit < len(self.windows) and len(flights) < self.in_flight_limit:
                task = _make_task(self.manifest, self.params, self.plan, path, self.windows[next_submit],
                                  self.faults, self.spill_prefix)
                flight = flights[next_submit] = _Flight(task=task)
                flight.future = self.executor.submit(task)
                next_submit += 1
            now = time.monotonic()
            for flight in flights.values():
                if flight.retry_at is not None and flight.retry_at <= now:
                    flight.retry_at = None
                    flight.future = self.executor.submit(flight.task)
            running = {f.future: f for f in flights.values() if f.future is not None}
            if running:
                done, _ = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    self._settle(running[future])
            else:
                self.cancel.wait(_POLL_SECONDS)
            while next_write in flights and flights[next_write].result is not None:
                self._write(flights.pop(next_write))
                next_write += 1
                if self.on_window is not None:
                    self.on_window(next_write, len(self.windows))

    def _settle(self, flight: _Flight) -> None:
        future = flight.future
        assert future is not None
        flight.future = None
        error = future.exception()
        if error is None:
            flight.result = future.result()
            return
        if isinstance(error, BrokenProcessPool):
            # every pending future of the dead pool fails the same way; the first one rebuilds it
            self.executor.recover(future)
        if flight.attempt > self.driver.max_retries:
            raise GenerationFailed(f"window {flight.task.index} failed after {flight.attempt} attempts: "
                                   f"{type(error).__name__}", flight.task.index) from error
        self.retries += 1
        flight.retry_at = time.monotonic() + self.driver.backoff_seconds * 2 ** (flight.attempt - 1)
        flight.attempt += 1

    def _write(self, flight: _Flight) -> None:
        result = flight.result
        assert result is not None
        for k, part in enumerate(result.parts):
            if not result.spilled:
                self.stitcher.add(part)
                continue
            with open(result.spilled[k], "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if len(self._buffer) < size:
                    self._buffer = bytearray(size)
                view = memoryview(self._buffer)[:size]
                if handle.readinto(view) != size:
                    raise OSError(f"short read of {result.spilled[k]}")
            self.stitcher.add(part, body=(view,))
            os.unlink(result.spilled[k])
        self.rows["trade"] += result.trade_rows
        self.rows["book"] += result.book_rows
        if result.first_timestamp_ms is not None and self.first_ms is None:
            self.first_ms = result.first_timestamp_ms
        if result.last_timestamp_ms is not None:
            self.last_ms = result.last_timestamp_ms


def _start_writeback(fd: int) -> None:
    """Have the kernel start writing the file's dirty pages now, so the final fsync waits for little.

    `POSIX_FADV_DONTNEED` starts asynchronous writeback of dirty pages (and drops the clean ones,
    which are not read again); the fsync at the end still makes the file durable.
    """
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_to_parquet(manifest: SimulationManifest, driver: DriverConfig, out_path: str | os.PathLike[str], *,
                        on_window: Callable[[int, int], None] | None = None,
                        cancel: threading.Event | None = None) -> GenerationReport:
    """Generate the manifest's events into one zstd Parquet file at `out_path` (replaced atomically).

    `on_window(done, total)` is called after each window is written; setting `cancel` stops the
    job within about 50 ms plus the time to stop the workers. The bytes depend only on the manifest.
    """
    target = Path(out_path)
    cached_params(manifest)  # refuse an infeasible manifest before touching the disk
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    executor: WindowExecutor | None = None
    job: _Job | None = None
    try:
        with open(temporary, "xb") as handle:
            digest = hashlib.sha256()

            pending = 0

            def write(data: bytes | memoryview) -> None:
                nonlocal pending
                handle.write(data)
                digest.update(data)
                pending += len(data)
                if pending >= _WRITEBACK_BYTES:
                    handle.flush()
                    _start_writeback(handle.fileno())
                    pending = 0

            stitcher = ParquetStitcher(write)
            executor = make_executor(driver.backend, driver.workers, driver.multiprocess)
            job = _Job(manifest, driver, executor, stitcher, on_window, cancel)
            job.run()
            executor.close(cancel=False)
            executor = None
            size = stitcher.finish()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    except BaseException:
        if executor is not None:
            executor.close(cancel=True)
        temporary.unlink(missing_ok=True)
        raise
    finally:
        # after the workers are stopped: what failed, cancelled or crashed windows left behind
        _remove_spilled(job.spill_prefix if job is not None else None)
    assert job is not None
    return GenerationReport(
        path=str(target), row_count=job.rows["trade"] + job.rows["book"], rows_by_event_type=dict(job.rows),
        first_timestamp_ms=job.first_ms, last_timestamp_ms=job.last_ms, sha256=digest.hexdigest(), bytes=size,
        windows=len(job.windows), retries=job.retries, row_groups=stitcher.row_groups)


def _iter_events(manifest: SimulationManifest, blocks_per_table: int, first_block: int, stop_block: int | None,
                 cut_at_end: bool) -> Iterator[tuple[ModelParams, WindowEvents]]:
    if blocks_per_table < 1 or first_block < 0:
        raise ValueError("blocks_per_table must be at least 1 and first_block at least 0")
    params = cached_params(manifest)
    path = CoarsePath(params)
    block = first_block
    while stop_block is None or block < stop_block:
        stop = block + blocks_per_table if stop_block is None else min(block + blocks_per_table, stop_block)
        inputs = window_inputs(path, params, block, stop)
        path.release(block - params.lookback_blocks - 1)
        yield params, generate_events(params, inputs, cut_at_end=cut_at_end and stop_block is not None)
        block = stop


def iter_event_tables(manifest: SimulationManifest, *, blocks_per_table: int = 1, first_block: int = 0,
                      stop_block: int | None = None, cut_at_end: bool = True) -> Iterator[pa.Table]:
    """Events in time order as tables of `blocks_per_table` minutes, from `first_block` on, in-process.

    With `stop_block=None` the stream runs past the manifest's duration without end (for live
    streams); otherwise it stops at `stop_block`. Concatenated, the tables equal the generated file.
    """
    for params, events in _iter_events(manifest, blocks_per_table, first_block, stop_block, cut_at_end):
        yield build_table(params, events.books, events.trades)


def iter_event_parts(manifest: SimulationManifest, *, blocks_per_part: int = 1, first_block: int = 0,
                     stop_block: int | None = None) -> Iterator[EncodedRowGroup]:
    """The events of `iter_event_tables` encoded as Parquet row groups (one per part), in-process."""
    for params, events in _iter_events(manifest, blocks_per_part, first_block, stop_block, True):
        if events.n_rows:
            yield encode_events(params, events.books, events.trades)


def generate_table(manifest: SimulationManifest, *, first_block: int = 0, stop_block: int | None = None) -> pa.Table:
    """All events of blocks `[first_block, stop_block)` (default: the whole run) as one table, in-process."""
    plan = BlockPlan.for_manifest(manifest)
    stop = plan.n_blocks if stop_block is None else stop_block
    if stop <= first_block:
        return empty_table()
    tables = list(iter_event_tables(manifest, blocks_per_table=plan.blocks_per_unit, first_block=first_block,
                                    stop_block=stop))
    return pa.concat_tables(tables)
