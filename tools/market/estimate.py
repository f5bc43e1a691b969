"""A cheap estimate of what a manifest will produce, for refusing absurd requests before any work."""

from __future__ import annotations

from typing import Any

from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.blocks import BLOCK_MS, BlockPlan, snapshots_per_block
from quantdesk.tools.market.params import feasibility_problems

# measured with bench/generation.py (the encodings of encode.py): trade rows cost 13.4 B in a trade-heavy
# file and 18 B in a book-heavy one; a 2 x 10-level book row 66-86 B
TRADE_ROW_BYTES = 15.0
BOOK_ROW_BYTES_PER_LEVEL = 3.5
BOOK_ROW_BYTES_BASE = 6.0
IN_MEMORY_TRADE_ROW_BYTES = 110
IN_MEMORY_BOOK_ROW_BYTES_PER_LEVEL = 36


def estimate(manifest: SimulationManifest) -> dict[str, Any]:
    """Expected rows, file bytes and peak window memory; `problems` lists what the engine cannot honour."""
    plan = BlockPlan.for_manifest(manifest)
    seconds = manifest.duration_seconds
    trades = manifest.trade_rate_per_second * seconds
    full_blocks, rest_ms = divmod(seconds * 1000, BLOCK_MS)
    books = full_blocks * snapshots_per_block(manifest.book_interval_ms) + -(-rest_ms // manifest.book_interval_ms)
    levels = 2 * manifest.num_levels
    unit_seconds = plan.blocks_per_unit * BLOCK_MS / 1000
    unit_trades = manifest.trade_rate_per_second * unit_seconds
    unit_books = unit_seconds * 1000 / manifest.book_interval_ms
    return {
        "trade_rows": round(trades),
        "book_rows": int(books),
        "rows": round(trades) + int(books),
        "bytes": round(trades * TRADE_ROW_BYTES + books * (BOOK_ROW_BYTES_BASE + levels * BOOK_ROW_BYTES_PER_LEVEL)),
        "row_groups": plan.n_units,
        "row_group_seconds": unit_seconds,
        "row_group_memory_bytes": round(unit_trades * IN_MEMORY_TRADE_ROW_BYTES
                                        + unit_books * levels * IN_MEMORY_BOOK_ROW_BYTES_PER_LEVEL),
        "problems": feasibility_problems(manifest),
    }
