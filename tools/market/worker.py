"""The unit of work sent to workers: one window in, its row-group units as encoded Parquet parts out.

Generation and Parquet encoding both run here, in the worker, so workers scale; the parent only
copies bytes (see parquet_stitch). Everything a task carries is plain data, picklable for a
process pool or Dask.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.blocks import BLOCK_MS
from quantdesk.tools.market.encode import encode_part
from quantdesk.tools.market.faults import FaultPlan
from quantdesk.tools.market.params import ModelParams, derive_params
from quantdesk.tools.market.parquet_stitch import ParquetPart
from quantdesk.tools.market.window import WindowInputs, generate_window


@dataclass(frozen=True, slots=True)
class WindowTask:
    """Window `index`: its pre-pass inputs and where its row-group units start (block indices)."""

    manifest: SimulationManifest
    index: int
    inputs: WindowInputs
    unit_starts: tuple[int, ...]
    faults: FaultPlan | None = None


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One encoded Parquet part per row-group unit, plus counts for the report."""

    index: int
    parts: tuple[ParquetPart, ...]
    trade_rows: int
    book_rows: int
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None


@functools.lru_cache(maxsize=8)
def cached_params(manifest: SimulationManifest) -> ModelParams:
    """`derive_params`, once per manifest per process."""
    return derive_params(manifest)


def run_window(task: WindowTask) -> WindowResult:
    """Generate and encode one window."""
    if task.faults is not None:
        task.faults.inject(task.index)
    params = cached_params(task.manifest)
    table = generate_window(params, task.inputs)
    timestamps = table.column("timestamp_ms").to_numpy()
    bounds = [params.start_time_ms + block * BLOCK_MS for block in task.unit_starts[1:]]
    cuts = [0, *np.searchsorted(timestamps, bounds, side="left").tolist(), table.num_rows]
    # parsed here, in the worker, so the parent only shifts offsets and copies bytes
    parts = tuple(ParquetPart.parse(encode_part(table.slice(a, b - a)))
                  for a, b in zip(cuts, cuts[1:], strict=False) if b > a)
    books = int(table.column("event_type").combine_chunks().indices.to_numpy().sum())
    return WindowResult(
        index=task.index, parts=parts, trade_rows=table.num_rows - books, book_rows=books,
        first_timestamp_ms=int(timestamps[0]) if timestamps.size else None,
        last_timestamp_ms=int(timestamps[-1]) if timestamps.size else None)
