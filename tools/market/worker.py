"""The unit of work sent to workers: one window in, its row-group units as encoded row groups out.

Generation and Parquet encoding both run here, in the worker, so workers scale; the parent only
copies bytes and writes the footer (see parquet_stitch). Everything a task carries is plain data,
picklable for a process pool or Dask.

Progress inside a window is counted in block-steps: each block counts once when its events are
generated (in chunks of `chunk_blocks`) and once when its row group is encoded, so a window is worth
`2 * n_blocks`. A worker in a local pool writes its window's count into the job's progress file
(one float64 slot per window, in tmpfs), which the parent reads as it polls; an in-process window
reports through a callback.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.blocks import BLOCK_MS
from quantdesk.tools.market.book import BookSnapshots
from quantdesk.tools.market.encode import encode_events
from quantdesk.tools.market.faults import FaultPlan
from quantdesk.tools.market.params import ModelParams, derive_params
from quantdesk.tools.market.parquet_encoding import EncodedRowGroup
from quantdesk.tools.market.table import TradeRows
from quantdesk.tools.market.window import WindowEvents, WindowInputs, generate_events

WindowProgress = Callable[[int, float], None]
"""`report(window_index, block_steps_done_in_that_window)`."""


@dataclass(frozen=True, slots=True)
class WindowTask:
    """Window `index`: its pre-pass inputs and where its row-group units start (block indices)."""

    manifest: SimulationManifest
    index: int
    inputs: WindowInputs
    unit_starts: tuple[int, ...]
    faults: FaultPlan | None = None
    spill_prefix: str | None = None
    """When set (a local pool), the encoded bodies go to files `<prefix><window>-<part>`, not through the pipe."""
    chunk_blocks: int = 0
    """Generate this many blocks at a time and report after each chunk (0: the whole window at once)."""
    progress_path: str | None = None
    """When set (a local pool), the window's block-steps go into slot `index` of this file."""

    @property
    def n_blocks(self) -> int:
        return self.inputs.stop_block - self.inputs.first_block


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One encoded row group per row-group unit, plus counts for the report."""

    index: int
    parts: tuple[EncodedRowGroup, ...]
    trade_rows: int
    book_rows: int
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None
    spilled: tuple[str, ...] = ()
    """The files holding the parts' bodies, one per part (whose `body` is then empty), if the task said so."""


@functools.lru_cache(maxsize=8)
def cached_params(manifest: SimulationManifest) -> ModelParams:
    """`derive_params`, once per manifest per process."""
    return derive_params(manifest)


class _FileProgress:
    """Writes a window's block-steps into its slot of the job's progress file (8-byte writes, never torn)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY)

    def __call__(self, index: int, steps: float) -> None:
        os.pwrite(self._fd, struct.pack("<d", steps), 8 * index)

    def close(self) -> None:
        os.close(self._fd)


def _generate(task: WindowTask, params: ModelParams, report: WindowProgress | None) -> WindowEvents:
    first, stop = task.inputs.first_block, task.inputs.stop_block
    chunk = task.chunk_blocks if task.chunk_blocks > 0 else stop - first
    if report is None or chunk >= stop - first:
        events = generate_events(params, task.inputs)
        if report is not None:
            report(task.index, float(stop - first))
        return events
    # blocks are independent given their keyed streams, so chunks joined are the window made at once; the
    # books (most of the bytes) are written in place, so joining them copies nothing
    n_snap = params.snapshots_per_block
    books = BookSnapshots.allocate((stop - first) * n_snap, params.num_levels)
    parts = []
    for start in range(first, stop, chunk):
        end = min(start + chunk, stop)
        rows = books.rows((start - first) * n_snap, (end - first) * n_snap)
        parts.append(generate_events(params, task.inputs.part(start, end), books_out=rows))
        report(task.index, float(end - first))
    kept = sum(part.books.n_rows for part in parts)  # the last chunk may end early, at the run's end
    return WindowEvents(books=books.rows(0, kept),
                        trades=TradeRows.concat([p.trades for p in parts], [p.books.n_rows for p in parts]))


def run_window(task: WindowTask, report: WindowProgress | None = None) -> WindowResult:
    """Generate and encode one window, reporting its block-steps to `report` or to the task's progress file."""
    file_progress = _FileProgress(task.progress_path) if report is None and task.progress_path else None
    try:
        return _run_window(task, report or file_progress)
    finally:
        if file_progress is not None:
            file_progress.close()


def _unit_steps(report: WindowProgress | None, index: int, before: float,
                blocks: float) -> Callable[[float], None] | None:
    """The encoder's progress within a row group, as the window's block-steps."""
    if report is None:
        return None
    window_report = report

    def heard(share: float) -> None:
        window_report(index, before + share * blocks)

    return heard


def _run_window(task: WindowTask, report: WindowProgress | None) -> WindowResult:
    if task.faults is not None:
        task.faults.inject(task.index)
    params = cached_params(task.manifest)
    events = _generate(task, params, report)
    bounds = [block * BLOCK_MS for block in (*task.unit_starts, task.inputs.stop_block)]
    parts = []
    done = float(task.n_blocks)
    for start_ms, stop_ms in zip(bounds, bounds[1:], strict=False):
        unit = events.between(start_ms, stop_ms)
        unit_blocks = (stop_ms - start_ms) / BLOCK_MS
        if unit.n_rows:
            parts.append(encode_events(params, unit.books, unit.trades, _unit_steps(report, task.index, done,
                                                                                    unit_blocks)))
        done += unit_blocks
        if report is not None:
            report(task.index, done)
    spilled = []
    if task.spill_prefix is not None:
        # a file in tmpfs is written and read once; the pipe would copy and pickle the bytes several times
        for k, part in enumerate(parts):
            path = f"{task.spill_prefix}{task.index}-{k}"
            with open(path, "wb") as handle:
                handle.writelines(part.body)
            spilled.append(path)
            parts[k] = replace(part, body=())
    books, trades = events.books.offset_ms, events.trades.offset_ms
    first = min([int(a[0]) for a in (books, trades) if a.size], default=None)
    last = max([int(a[-1]) for a in (books, trades) if a.size], default=None)
    return WindowResult(
        index=task.index, parts=tuple(parts), trade_rows=events.trades.n_rows, book_rows=events.books.n_rows,
        first_timestamp_ms=None if first is None else first + params.start_time_ms,
        last_timestamp_ms=None if last is None else last + params.start_time_ms, spilled=tuple(spilled))
