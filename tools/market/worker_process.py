"""Preloaded by the forkserver that starts pool workers: the engine imported and warmed once, inherited by every worker.

Import it nowhere else: importing it imports the worker, builds the tables every window
uses (the file metadata shared by all parts, the trade-id digit tables) and tunes glibc's malloc so
that the arrays a window allocates and frees are reused, not handed back to the kernel and faulted
in again page by page (glibc maps and unmaps large blocks by default, and this machine's page faults
are dear: measured with bench/generation.py, two workers ran their windows about 30% slower
without it). Workers forked from the forkserver inherit all of it, memory pages included.
"""

from __future__ import annotations

import ctypes

from quantdesk.tools.market.encode import shared_metadata
from quantdesk.tools.market.pools import exit_with_parent
from quantdesk.tools.market.trades import warm_up_tables
from quantdesk.tools.market.worker import run_window

__all__ = ["exit_with_parent", "run_window"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KEEP_BYTES = 512 << 20
"""Blocks below this size come from the heap, and up to this much free heap is kept (a window needs far less)."""


def _tune_malloc() -> None:
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):  # not glibc: leave the allocator alone
        return
    for option, value in ((_M_MMAP_THRESHOLD, _KEEP_BYTES), (_M_TRIM_THRESHOLD, _KEEP_BYTES),
                          (_M_TOP_PAD, 64 << 20)):
        mallopt(ctypes.c_int(option), ctypes.c_int(value))


_tune_malloc()
shared_metadata()
warm_up_tables()
