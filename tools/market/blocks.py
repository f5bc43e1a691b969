"""The determinism plan: fixed one-minute blocks, keyed random streams, row-group units and windows.

Output bytes depend only on the manifest. Time is cut into blocks of `BLOCK_SECONDS` (a model
constant, part of `MODEL_VERSION`); every random draw comes from a stream keyed by
`(seed, stream, index)`, so a block's events are the same whichever worker makes it, in whatever
order, however often. A row group holds a fixed number of blocks chosen from the manifest's
expected event rate; a window (one task) is a run of whole row groups, so the driver's
`window_seconds` changes scheduling, never bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from quantdesk.schemas.manifest import SimulationManifest

BLOCK_SECONDS = 60
"""Length of a block: the unit of randomness, of the pre-pass state and of the Student-t mixing."""
BLOCK_MS = BLOCK_SECONDS * 1000
SEGMENT_BLOCKS = 60
"""The pre-pass draws its coarse path one hour (60 blocks) at a time, whatever the windows are."""
ROW_GROUP_TARGET_ROWS = 262_144
"""Expected rows per Parquet row group; big enough to compress well, small enough to bound memory."""
MAX_BLOCKS_PER_UNIT = 60
"""A row group spans at most an hour, so a window's memory is the same for a 1 h job and a 7-day job."""


class Stream(IntEnum):
    """Independent random streams; each is keyed further by a segment or block index."""

    INIT = 1
    COARSE = 2
    HAWKES = 3
    PATH = 4
    TRADES = 5


def stream_rng(seed: int, stream: Stream, index: int) -> np.random.Generator:
    """The generator of one stream and one segment/block; negative blocks (warm-up) map to distinct keys."""
    sequence = np.random.SeedSequence(seed, spawn_key=(int(stream), index % 2**64))
    return np.random.Generator(np.random.PCG64(sequence))


def expected_rows_per_block(manifest: SimulationManifest) -> tuple[float, int]:
    """Expected trades and exact book snapshots in one block."""
    return manifest.trade_rate_per_second * BLOCK_SECONDS, snapshots_per_block(manifest.book_interval_ms)


def snapshots_per_block(book_interval_ms: int) -> int:
    """Snapshots restart at every block start, so a block holds ceil(60 s / interval) of them."""
    return -(-BLOCK_MS // book_interval_ms)


@dataclass(frozen=True, slots=True)
class Window:
    """One task: blocks `[first_block, stop_block)`, a run of whole row-group units."""

    index: int
    first_block: int
    stop_block: int

    @property
    def n_blocks(self) -> int:
        return self.stop_block - self.first_block


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """How a run is cut: blocks, row-group units of `blocks_per_unit` blocks, and windows of units."""

    duration_ms: int
    n_blocks: int
    blocks_per_unit: int

    @classmethod
    def for_manifest(cls, manifest: SimulationManifest) -> BlockPlan:
        trades, books = expected_rows_per_block(manifest)
        per_unit = round(ROW_GROUP_TARGET_ROWS / max(trades + books, 1.0))
        duration_ms = manifest.duration_seconds * 1000
        return cls(duration_ms=duration_ms, n_blocks=-(-duration_ms // BLOCK_MS),
                   blocks_per_unit=min(max(per_unit, 1), MAX_BLOCKS_PER_UNIT))

    @property
    def n_units(self) -> int:
        return -(-self.n_blocks // self.blocks_per_unit)

    def unit_bounds(self, unit: int) -> tuple[int, int]:
        """Blocks `[first, stop)` of row-group unit `unit`."""
        first = unit * self.blocks_per_unit
        return first, min(first + self.blocks_per_unit, self.n_blocks)

    def windows(self, window_seconds: float) -> list[Window]:
        """Windows of whole units, about `window_seconds` long (never less than one unit)."""
        units_per_window = max(1, round(window_seconds / (self.blocks_per_unit * BLOCK_SECONDS)))
        out = []
        for index, unit in enumerate(range(0, self.n_units, units_per_window)):
            first, _ = self.unit_bounds(unit)
            _, stop = self.unit_bounds(min(unit + units_per_window, self.n_units) - 1)
            out.append(Window(index=index, first_block=first, stop_block=stop))
        return out


def decimal_scale(step: float) -> tuple[int, int]:
    """`(units, scale)` with `step == units / scale` and scale a power of ten, or `(0, 0)` if none fits.

    Prices and sizes are stored as `count * units / scale`: one correctly rounded division, so the
    float equals the decimal string a venue would send (`500001 * 1 / 10 == 50000.1`).
    """
    for digits in range(13):
        scale = 10**digits
        units = round(step * scale)
        if units > 0 and math.isclose(units / scale, step, rel_tol=1e-12, abs_tol=0.0):
            return units, scale
    return 0, 0
