"""Normalization of raw venue feeds into canonical events (the engine behind `normalize_events`).

Public surface:

- `Normalizer(source, symbol=None, *, market=None, clock=None, contract_sizes=None, quote_usd=None)`
  with `normalize(payloads) -> NormalizeResult`, `iter_normalize(payloads)` (events, rejections and
  non-events as produced, then a `Summary`) and `arrow_session()` (`feed(lines)`, `feed_block(block)`,
  `close()`, `summary()`) for recorded JSON lines straight to Arrow tables in EVENT_SCHEMA;
- `normalize_file(source, in_path, out_path, ...) -> FileSummary` for JSONL / JSONL.gz to Parquet;
- `events_to_table(events)` for canonical event dicts to an Arrow table in EVENT_SCHEMA;
- `SOURCES`, `accepted_messages(source)`, `UnknownSourceError`;
- `iter_normalize(payloads, keep=True)` and `end()` for a feed fed over several calls (`sessions.py` holds
  such sessions for the `normalize_events` tool); `recorded.py` for the recorder line formats that
  carry receive times.

Per-venue rules are in each venue module's docstring; outcomes and counts in `outcomes.py`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quantdesk.tools.normalize.arrow import events_to_table
    from quantdesk.tools.normalize.files import FileSummary, ProgressCallback, normalize_file
    from quantdesk.tools.normalize.normalizer import ArrowChunk, ArrowSession, Normalizer, Streamed
    from quantdesk.tools.normalize.outcomes import (
        BookStatus,
        Counts,
        Emitted,
        GapReport,
        NonEvent,
        NonEventKind,
        NormalizeResult,
        Rejection,
        RejectKind,
        Summary,
    )
    from quantdesk.tools.normalize.registry import SOURCES, SourceSpec, UnknownSourceError, accepted_messages

# The engine (numpy, pyarrow, msgspec) loads on first use of a name, not when the server imports the tools.
_HOMES = {
    "events_to_table": "arrow", "FileSummary": "files", "ProgressCallback": "files", "normalize_file": "files",
    "ArrowChunk": "normalizer", "ArrowSession": "normalizer", "Normalizer": "normalizer", "Streamed": "normalizer",
    **dict.fromkeys(("BookStatus", "Counts", "Emitted", "GapReport", "NonEvent", "NonEventKind", "NormalizeResult",
                     "Rejection", "RejectKind", "Summary"), "outcomes"),
    **dict.fromkeys(("SOURCES", "SourceSpec", "UnknownSourceError", "accepted_messages"), "registry"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ArrowChunk",
    "ArrowSession",
    "BookStatus",
    "Counts",
    "Emitted",
    "FileSummary",
    "GapReport",
    "NonEvent",
    "NonEventKind",
    "NormalizeResult",
    "Normalizer",
    "ProgressCallback",
    "RejectKind",
    "Rejection",
    "SOURCES",
    "SourceSpec",
    "Streamed",
    "Summary",
    "UnknownSourceError",
    "accepted_messages",
    "events_to_table",
    "normalize_file",
]
