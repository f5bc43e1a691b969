"""The unit of work sent to workers: one window in, its row-group units as encoded row groups out.

Generation and Parquet encoding both run here, in the worker, so workers scale; the parent only
copies bytes and writes the footer (see parquet_stitch). Everything a task carries is plain data,
picklable for a process pool or Dask.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.connection
import os
import threading
from dataclasses import dataclass, replace

from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.blocks import BLOCK_MS
from quantdesk.tools.market.encode import encode_events
from quantdesk.tools.market.faults import FaultPlan
from quantdesk.tools.market.params import ModelParams, derive_params
from quantdesk.tools.market.parquet_encoding import EncodedRowGroup
from quantdesk.tools.market.window import WindowInputs, generate_events


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


def run_window(task: WindowTask) -> WindowResult:
    """Generate and encode one window."""
    if task.faults is not None:
        task.faults.inject(task.index)
    params = cached_params(task.manifest)
    events = generate_events(params, task.inputs)
    bounds = [block * BLOCK_MS for block in (*task.unit_starts, task.inputs.stop_block)]
    parts = []
    for start_ms, stop_ms in zip(bounds, bounds[1:], strict=False):
        unit = events.between(start_ms, stop_ms)
        if unit.n_rows:
            parts.append(encode_events(params, unit.books, unit.trades))
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
