"""Normalize a recorded feed (JSONL, or JSONL.gz by its magic bytes) of any size into one Parquet file.

The input is read in blocks and normalized chunk by chunk; each chunk's events are written as a
row group (zstd, EVENT_SCHEMA) at once, so memory stays bounded by the block size. The output is
written to a temporary file beside the target and renamed over it only when everything succeeded:
a failure leaves no partial output.
"""

from __future__ import annotations

import gzip
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import pyarrow.parquet as pq

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.tools.normalize.normalizer import ArrowChunk, Normalizer
from quantdesk.tools.normalize.outcomes import Rejection, Summary

ProgressCallback = Callable[[int, int, int], None]
BLOCK_BYTES = 8 << 20
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class FileSummary:
    """What `normalize_file` did: lines read, rows written, counts, and the first rejections by line."""

    source: str
    input_path: str
    output_path: str
    lines: int
    blank_lines: int
    bytes_read: int
    rows_written: int
    elapsed_seconds: float
    summary: Summary
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "input_path": self.input_path, "output_path": self.output_path,
                "lines": self.lines, "blank_lines": self.blank_lines, "bytes_read": self.bytes_read,
                "rows_written": self.rows_written, "elapsed_seconds": self.elapsed_seconds,
                "rejections": self.rejections, **self.summary.as_dict()}


def normalize_file(source: str, in_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                   symbol: str | None = None, market: str | None = None,
                   on_progress: ProgressCallback | None = None, max_reported: int = 100,
                   contract_sizes: Mapping[str, float] | None = None, quote_usd: Mapping[str, float] | None = None,
                   block_bytes: int = BLOCK_BYTES, overwrite: bool = True) -> FileSummary:
    """Normalize `in_path` into the Parquet file `out_path`; `on_progress(lines_done, bytes_done, total_bytes)`.

    Rejections are counted in the summary and the first `max_reported` are listed with their
    1-based line numbers. Raises OSError (and gzip's EOFError, zlib.error) when the input cannot be
    read; the output then does not exist. Without `overwrite`, an existing `out_path` is never
    replaced, even one created while this ran: FileExistsError.
    """
    started = time.perf_counter()
    src, dst = Path(in_path), Path(out_path)
    normalizer = Normalizer(source, symbol, market=market, contract_sizes=contract_sizes, quote_usd=quote_usd)
    session = normalizer.arrow_session()
    total_bytes = src.stat().st_size
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    reported: list[dict[str, Any]] = []
    lines_done = rows = 0
    with src.open("rb") as raw:
        try:
            with pq.ParquetWriter(tmp, EVENT_SCHEMA, compression="zstd") as writer:
                def write(chunk: ArrowChunk) -> None:
                    nonlocal rows
                    if chunk.table.num_rows:
                        writer.write_table(chunk.table)
                        rows += chunk.table.num_rows
                    _report(chunk.rejections, reported, max_reported)

                for block in _blocks(raw, block_bytes):
                    chunk, count = session.feed_block(block, lines_done)
                    write(chunk)
                    lines_done += count
                    if on_progress is not None:
                        on_progress(lines_done, raw.tell(), total_bytes)
                write(session.close())
            with tmp.open("rb") as written:
                os.fsync(written.fileno())
            if overwrite:
                os.replace(tmp, dst)
            else:
                _place_new(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return FileSummary(source, str(src), str(dst), lines_done, session.blank_lines, total_bytes, rows,
                       time.perf_counter() - started, session.summary(), reported)


def _place_new(tmp: Path, dst: Path) -> None:
    """Give the finished file its name only if that name is free: a hard link fails rather than replace."""
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: check, then rename (a narrow race remains)
        if dst.exists():
            raise FileExistsError(str(dst)) from None
        os.replace(tmp, dst)
        return
    tmp.unlink()


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _report(rejections: list[Rejection], reported: list[dict[str, Any]], limit: int) -> None:
    for r in rejections[: max(0, limit - len(reported))]:
        reported.append({"line": r.index + 1, "kind": r.kind, "reason": r.reason})


def _blocks(raw: IO[bytes], block_bytes: int) -> Iterator[bytes]:
    """Complete lines (without the final newline), about `block_bytes` at a time, from a plain or gzip stream."""
    head = raw.read(2)
    raw.seek(0)
    stream: _Readable = gzip.GzipFile(fileobj=raw, mode="rb") if head == _GZIP_MAGIC else raw
    carry = b""
    while True:
        block = stream.read(block_bytes)
        if not block:
            break
        data = carry + block
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1:]
        yield data[:cut]
    if carry:
        yield carry
