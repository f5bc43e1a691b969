"""Generation jobs: windows made by an executor, stitched in order into one Parquet file.

The parent walks the windows in order: it cuts each window's inputs from the streaming pre-pass,
keeps at most `2 * workers` windows in flight (running, waiting to be retried or waiting to be
written), and appends finished windows in window order. Memory is bounded by the windows in flight,
whatever the duration. A failed window is retried after `backoff_seconds * 2**(attempt - 1)`; a
crashed worker pool is rebuilt and its windows retried; after `max_retries` the job fails. Workers
of a local pool hand their encoded row groups over as files in tmpfs (`SPILL_DIRECTORY`), read once
and removed by the parent (and swept when the job ends, whatever happened), instead of through the
pool's pipe, which copied and pickled every byte several times (measured: a fifth of the parent's
CPU time in a 2-worker run). Written bytes are handed to the kernel's writeback as they go, so the
final fsync waits for the tail only (it cost 20 ms, 4% of a 6-hour busy run, at the end).

Two ways to write:
- `generate_to_parquet` writes a temporary file beside the target, fsynced and renamed only on
  success; on any failure or cancellation the temporary file is removed and nothing is left behind;
- `generate_resumable` writes into a work folder and records a `Checkpoint` after written windows
  (at most once a second): the file so far, the row groups' metadata beside it, the counts and the
  sha256 of the prefix. Called again with that checkpoint (after a restart, say), it checks the
  prefix, cuts off whatever was written after the checkpoint and goes on from the next window.
  Failures and cancellation leave the folder for the caller, which resumes or removes it.

Progress is counted in block-steps (see worker): `progress_total(manifest)` of them in all; the
parent adds what running windows report (a callback in-process, a tmpfs slot per window in a pool)
to the windows it has back, so progress moves within windows, not once per window.

Errors: `GenerationCancelled` (the cancel event was set), `GenerationFailed` (a window failed
after its retries), `ValueError` (a manifest the engine cannot honour), `OSError` (the output
could not be written: permissions, disk full).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest
from quantdesk.tools.market.blocks import BlockPlan, Window
from quantdesk.tools.market.coarse import CoarsePath
from quantdesk.tools.market.encode import encode_events
from quantdesk.tools.market.executors import InlineExecutor, WindowExecutor, make_executor
from quantdesk.tools.market.faults import FaultPlan
from quantdesk.tools.market.params import ModelParams
from quantdesk.tools.market.parquet_encoding import EncodedRowGroup
from quantdesk.tools.market.parquet_stitch import ParquetStitcher
from quantdesk.tools.market.table import build_table, empty_table
from quantdesk.tools.market.window import WindowEvents, generate_events, window_inputs
from quantdesk.tools.market.worker import WindowResult, WindowTask, cached_params

_POLL_SECONDS = 0.05
_WRITEBACK_BYTES = 4 << 20
_CHECKPOINT_SECONDS = 1.0
_PROGRESS_STEPS = 100
"""Windows are generated in chunks of about 1/100 of the job's blocks (never below `_MIN_CHUNK_BLOCKS`)."""
_MIN_CHUNK_BLOCKS = 2
"""Below two blocks a chunk costs more than it reports (measured: one-block chunks made a day 50% slower)."""
SPILL_DIRECTORY = Path("/dev/shm")
"""A local pool's workers hand encoded row groups over as files here (tmpfs) when it exists."""
PARTIAL_NAME = "dataset.parquet.partial"
GROUPS_NAME = "row_groups.bin"
DONE_NAME = "dataset.parquet"

ProgressFn = Callable[[float, float], None]
"""`on_progress(block_steps_done, block_steps_total)`; the total never changes within a job."""


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
    resumed_windows: int = 0
    """Windows taken from a checkpoint instead of being made again."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a resumable job stands: its first `windows_written` windows are in the work folder's files."""

    windows_written: int
    file_bytes: int
    file_sha256: str
    """sha256 of the file's first `file_bytes` bytes."""
    groups_bytes: int
    """Length of the row-group metadata file that goes with them."""
    row_groups: int
    rows: dict[str, int]
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None
    retries: int
    model_version: str = MODEL_VERSION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(**data)


def progress_total(manifest: SimulationManifest) -> float:
    """Block-steps of the whole job: every block once generated and once encoded."""
    return 2.0 * BlockPlan.for_manifest(manifest).n_blocks


@dataclass(slots=True)
class _Flight:
    """A window between submission and being written."""

    task: WindowTask
    attempt: int = 1
    retry_at: float | None = None
    result: WindowResult | None = None
    future: Future[WindowResult] | None = field(default=None)


def _make_task(manifest: SimulationManifest, params: ModelParams, plan: BlockPlan, path: CoarsePath,
               window: Window, faults: FaultPlan | None, spill_prefix: str | None, chunk_blocks: int,
               progress_path: str | None) -> WindowTask:
    inputs = window_inputs(path, params, window.first_block, window.stop_block)
    # the next windows need nothing before their own lookback
    path.release(window.first_block - params.lookback_blocks - 1)
    starts = tuple(range(window.first_block, window.stop_block, plan.blocks_per_unit))
    return WindowTask(manifest=manifest, index=window.index, inputs=inputs, unit_starts=starts, faults=faults,
                      spill_prefix=spill_prefix, chunk_blocks=chunk_blocks, progress_path=progress_path)


def _spill_prefix(driver: DriverConfig) -> str | None:
    """Where a local pool's workers leave encoded bodies for the parent: tmpfs, when there is one."""
    local_pool = driver.backend == "process" and driver.multiprocess and driver.workers > 1
    if not local_pool or not os.access(SPILL_DIRECTORY, os.W_OK):
        return None
    remove_orphaned_spills()
    return str(SPILL_DIRECTORY / f"quantdesk-{os.getpid()}-{uuid.uuid4().hex}-")


def remove_orphaned_spills() -> int:
    """Remove what jobs of processes that no longer exist (killed, say) left in tmpfs; returns how many files."""
    removed = 0
    for path in glob.glob(glob.escape(str(SPILL_DIRECTORY)) + "/quantdesk-*-*"):
        pid = Path(path).name.split("-")[1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        Path(path).unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_spilled(prefix: str | None) -> None:
    if prefix is not None:
        for path in glob.glob(glob.escape(prefix) + "*"):
            Path(path).unlink(missing_ok=True)


class _Job:
    """The window loop of one generation job."""

    def __init__(self, manifest: SimulationManifest, driver: DriverConfig, stitcher: ParquetStitcher,
                 on_window: Callable[[int, int], None] | None, on_progress: ProgressFn | None,
                 cancel: threading.Event | None, start: Checkpoint | None = None) -> None:
        self.manifest, self.driver, self.stitcher = manifest, driver, stitcher
        self.on_window, self.on_progress, self.cancel = on_window, on_progress, cancel or threading.Event()
        self.on_written: Callable[[_Job], None] | None = None
        """Hears the job after newly written windows: at most every `_CHECKPOINT_SECONDS`, and at the end."""
        self.params = cached_params(manifest)
        self.plan = BlockPlan.for_manifest(manifest)
        self.windows = self.plan.windows(driver.window_seconds)
        self.total_steps = 2.0 * self.plan.n_blocks
        self.chunk_blocks = max(_MIN_CHUNK_BLOCKS, -(-self.plan.n_blocks // _PROGRESS_STEPS))
        self.faults = FaultPlan.from_environment()
        self.spill_prefix = _spill_prefix(driver)
        self._progress_fd: int | None = None
        self._buffer = bytearray()
        self.written = start.windows_written if start else 0
        self._heard_written = self.written
        self._heard_at = time.monotonic()
        self.resumed_windows = self.written
        self.retries = start.retries if start else 0
        self.rows = dict(start.rows) if start else {"trade": 0, "book": 0}
        self.first_ms: int | None = start.first_timestamp_ms if start else None
        self.last_ms: int | None = start.last_timestamp_ms if start else None
        self._steps_done = sum(2.0 * w.n_blocks for w in self.windows[:self.written])
        self._running_steps: dict[int, float] = {}
        self._reported = -1.0

    # --- progress --------------------------------------------------------------------------------

    def _on_window_steps(self, index: int, steps: float) -> None:
        self._running_steps[index] = steps
        self._report()

    def _report(self) -> None:
        if self.on_progress is None:
            return
        done = min(self._steps_done + sum(self._running_steps.values()), self.total_steps)
        if done > self._reported:
            self._reported = done
            self.on_progress(done, self.total_steps)

    def _read_progress_file(self, flights: dict[int, _Flight]) -> None:
        if self._progress_fd is None or not flights:
            return
        running = [i for i, f in flights.items() if f.future is not None]
        if not running:
            return
        low, high = min(running), max(running) + 1
        data = os.pread(self._progress_fd, 8 * (high - low), 8 * low)
        values = struct.unpack(f"<{len(data) // 8}d", data)
        for index in running:
            if index - low < len(values):
                self._running_steps[index] = values[index - low]
        self._report()

    def _open_progress_file(self) -> str | None:
        if self.spill_prefix is None or self.on_progress is None:
            return None
        path = f"{self.spill_prefix}progress"
        self._progress_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self._progress_fd, 8 * len(self.windows))
        return path

    def close_progress_file(self) -> None:
        if self._progress_fd is not None:
            os.close(self._progress_fd)
            self._progress_fd = None

    # --- the loop --------------------------------------------------------------------------------

    def run(self, executor: WindowExecutor) -> None:
        progress_path = self._open_progress_file()
        # an inline executor runs at submit time: one window at a time keeps its memory to one window
        in_flight_limit = 1 if isinstance(executor, InlineExecutor) else 2 * self.driver.workers
        path = CoarsePath(self.params)
        for window in self.windows[:self.written]:
            # a resumed job walks the cheap pre-pass over the windows it already has
            path.blocks(window.stop_block - 1, window.stop_block)
            path.release(window.stop_block - self.params.lookback_blocks - 2)
        flights: dict[int, _Flight] = {}
        next_submit = next_write = self.written
        self._report()
        while next_write < len(self.windows):
            if self.cancel.is_set():
                raise GenerationCancelled("generation cancelled")
            while next_submit < len(self.windows) and len(flights) < in_flight_limit:
                task = _make_task(self.manifest, self.params, self.plan, path, self.windows[next_submit],
                                  self.faults, self.spill_prefix, self.chunk_blocks, progress_path)
                flight = flights[next_submit] = _Flight(task=task)
                flight.future = executor.submit(task)
                next_submit += 1
            now = time.monotonic()
            for flight in flights.values():
                if flight.retry_at is not None and flight.retry_at <= now:
                    flight.retry_at = None
                    self._running_steps[flight.task.index] = 0.0
                    flight.future = executor.submit(flight.task)
            running = {f.future: f for f in flights.values() if f.future is not None}
            if running:
                done, _ = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    self._settle(running[future], executor)
                self._read_progress_file(flights)
            else:
                self.cancel.wait(_POLL_SECONDS)
            while next_write in flights and flights[next_write].result is not None:
                self._write(flights.pop(next_write))
                next_write += 1
                self.written = next_write
                if self.on_window is not None:
                    self.on_window(next_write, len(self.windows))
            self._tell_written()

    def _tell_written(self) -> None:
        # checked on every pass of the loop, so windows written just before a stall are still heard
        if self.on_written is None or self.written == self._heard_written:
            return
        now = time.monotonic()
        if self.written < len(self.windows) and now - self._heard_at < _CHECKPOINT_SECONDS:
            return
        self._heard_written, self._heard_at = self.written, now
        self.on_written(self)

    def _settle(self, flight: _Flight, executor: WindowExecutor) -> None:
        future = flight.future
        assert future is not None
        flight.future = None
        error = future.exception()
        index = flight.task.index
        if error is None:
            flight.result = future.result()
            self._running_steps.pop(index, None)
            self._steps_done += 2.0 * flight.task.n_blocks
            self._report()
            return
        if isinstance(error, BrokenProcessPool):
            # every pending future of the dead pool fails the same way; the first one rebuilds it
            executor.recover(future)
        if flight.attempt > self.driver.max_retries:
            raise GenerationFailed(f"window {index} failed after {flight.attempt} attempts: "
                                   f"{type(error).__name__}", index) from error
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

    def report(self, path: Path, sha256: str, size: int) -> GenerationReport:
        return GenerationReport(
            path=str(path), row_count=self.rows["trade"] + self.rows["book"], rows_by_event_type=dict(self.rows),
            first_timestamp_ms=self.first_ms, last_timestamp_ms=self.last_ms, sha256=sha256, bytes=size,
            windows=len(self.windows), retries=self.retries, row_groups=self.stitcher.row_groups,
            resumed_windows=self.resumed_windows)


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


class _Output:
    """The file being written: hashed as it goes, handed to writeback every few MB."""

    def __init__(self, handle: BinaryIO, digest: Any) -> None:
        self.handle, self.digest = handle, digest
        self._pending = 0

    def write(self, data: bytes | memoryview) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self._pending += len(data)
        if self._pending >= _WRITEBACK_BYTES:
            self.handle.flush()
            _start_writeback(self.handle.fileno())
            self._pending = 0


def _execute(job: _Job) -> None:
    """Run the job's windows on the executor its driver asks for; stop the executor whatever happens."""
    executor: WindowExecutor | None = None
    try:
        executor = make_executor(job.driver.backend, job.driver.workers, job.driver.multiprocess,
                                 report=job._on_window_steps if job.on_progress is not None else None)
        job.run(executor)
        executor.close(cancel=False)
        executor = None
    finally:
        if executor is not None:
            executor.close(cancel=True)
        job.close_progress_file()
        # after the workers are stopped: what failed, cancelled or crashed windows left behind
        _remove_spilled(job.spill_prefix)


def generate_to_parquet(manifest: SimulationManifest, driver: DriverConfig, out_path: str | os.PathLike[str], *,
                        on_window: Callable[[int, int], None] | None = None, on_progress: ProgressFn | None = None,
                        cancel: threading.Event | None = None) -> GenerationReport:
    """Generate the manifest's events into one zstd Parquet file at `out_path` (replaced atomically).

    `on_window(done, total)` is called after each window is written, `on_progress` as block-steps
    are done (see `progress_total`); setting `cancel` stops the job within about 50 ms plus the time
    to stop the workers. The bytes depend only on the manifest.
    """
    target = Path(out_path)
    cached_params(manifest)  # refuse an infeasible manifest before touching the disk
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "xb") as handle:
            output = _Output(handle, hashlib.sha256())
            job = _Job(manifest, driver, ParquetStitcher(output.write), on_window, on_progress, cancel)
            _execute(job)
            size = job.stitcher.finish()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return job.report(target, output.digest.hexdigest(), size)


def _read_groups(path: Path, length: int) -> tuple[bytes, list[bytes]]:
    """The shared metadata and the row-group structs recorded in the first `length` bytes of `path`."""
    data = path.read_bytes()[:length]
    records, at = [], 0
    while at < len(data):
        if at + 4 > len(data):
            raise ValueError("truncated row-group record")
        (size,) = struct.unpack_from("<I", data, at)
        if at + 4 + size > len(data):
            raise ValueError("truncated row-group record")
        records.append(data[at + 4:at + 4 + size])
        at += 4 + size
    if not records:
        raise ValueError("no shared metadata recorded")
    return records[0], records[1:]


def _prefix_sha256(path: Path, length: int) -> Any:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        left = length
        while left > 0:
            chunk = handle.read(min(left, 1 << 20))
            if not chunk:
                raise ValueError("the partial file is shorter than its checkpoint")
            digest.update(chunk)
            left -= len(chunk)
    return digest


def usable_checkpoint(work_dir: Path, checkpoint: Checkpoint) -> str | None:
    """Why the work folder cannot continue from `checkpoint` (None when it can)."""
    if checkpoint.model_version != MODEL_VERSION:
        return f"the generator changed since the checkpoint ({checkpoint.model_version} -> {MODEL_VERSION})"
    partial, groups = work_dir / PARTIAL_NAME, work_dir / GROUPS_NAME
    if not partial.is_file() or partial.stat().st_size < checkpoint.file_bytes:
        return "the partial file is missing or shorter than its checkpoint"
    if not groups.is_file() or groups.stat().st_size < checkpoint.groups_bytes:
        return "the row-group metadata is missing or shorter than its checkpoint"
    try:
        if _prefix_sha256(partial, checkpoint.file_bytes).hexdigest() != checkpoint.file_sha256:
            return "the partial file does not match its checkpoint"
        _, structs = _read_groups(groups, checkpoint.groups_bytes)
    except (OSError, ValueError) as exc:
        return f"the work folder cannot be read: {exc}"
    if len(structs) != checkpoint.row_groups:
        return "the row-group metadata does not match its checkpoint"
    return None


def generate_resumable(manifest: SimulationManifest, driver: DriverConfig, work_dir: Path, *,
                       checkpoint: Checkpoint | None = None, on_checkpoint: Callable[[Checkpoint], None] | None = None,
                       on_progress: ProgressFn | None = None,
                       cancel: threading.Event | None = None) -> GenerationReport:
    """Generate into `work_dir` (created if needed), continuing from `checkpoint` when it is given.

    The finished, fsynced file is `work_dir / DONE_NAME` (the report's path). `on_checkpoint` gets a
    new checkpoint after written windows (at most once a second); a checkpoint that `usable_checkpoint`
    refuses raises ValueError. On failure or cancellation the folder is left as it is.
    """
    cached_params(manifest)
    work_dir.mkdir(parents=True, exist_ok=True)
    partial, groups_path = work_dir / PARTIAL_NAME, work_dir / GROUPS_NAME
    resuming = checkpoint is not None and checkpoint.windows_written > 0
    if resuming:
        assert checkpoint is not None
        problem = usable_checkpoint(work_dir, checkpoint)
        if problem is not None:
            raise ValueError(f"cannot resume: {problem}")
    with contextlib.ExitStack() as files:
        handle = files.enter_context(open(partial, "r+b" if resuming else "w+b"))
        groups_file = files.enter_context(open(groups_path, "r+b" if resuming else "w+b"))
        if resuming:
            assert checkpoint is not None
            shared, structs = _read_groups(groups_path, checkpoint.groups_bytes)
            digest = _prefix_sha256(partial, checkpoint.file_bytes)
            # whatever was written after the checkpoint is cut off and made again
            handle.truncate(checkpoint.file_bytes)
            groups_file.truncate(checkpoint.groups_bytes)
            handle.seek(checkpoint.file_bytes)
            groups_file.seek(checkpoint.groups_bytes)
            output = _Output(handle, digest)
            stitcher = ParquetStitcher.resume(output.write, checkpoint.file_bytes, shared, structs,
                                              sum(checkpoint.rows.values()))
        else:
            output = _Output(handle, hashlib.sha256())
            stitcher = ParquetStitcher(output.write)
        start = checkpoint if resuming else None
        job = _Job(manifest, driver, stitcher, None, on_progress, cancel, start)
        saved = {"groups": stitcher.row_groups, "groups_bytes": start.groups_bytes if start else 0}

        def record(finished: _Job) -> None:
            if on_checkpoint is None:
                return
            if saved["groups_bytes"] == 0 and stitcher.shared is not None:
                saved["groups_bytes"] += _append_record(groups_file, stitcher.shared)
            for struct_bytes in stitcher.groups(int(saved["groups"])):
                saved["groups_bytes"] += _append_record(groups_file, struct_bytes)
            saved["groups"] = stitcher.row_groups
            # flushed to the kernel, which keeps them across a killed process; not fsynced (a power cut
            # loses the tail, and the prefix check on resume notices it)
            groups_file.flush()
            handle.flush()
            on_checkpoint(Checkpoint(
                windows_written=finished.written, file_bytes=stitcher.position,
                file_sha256=output.digest.copy().hexdigest(), groups_bytes=int(saved["groups_bytes"]),
                row_groups=stitcher.row_groups, rows=dict(finished.rows), first_timestamp_ms=finished.first_ms,
                last_timestamp_ms=finished.last_ms, retries=finished.retries))

        job.on_written = record
        _execute(job)
        size = stitcher.finish()
        handle.flush()
        os.fsync(handle.fileno())
    done = work_dir / DONE_NAME
    os.replace(partial, done)
    return job.report(done, output.digest.hexdigest(), size)


def _append_record(handle: BinaryIO, data: bytes) -> int:
    handle.write(struct.pack("<I", len(data)) + data)
    return 4 + len(data)


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
