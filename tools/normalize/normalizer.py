"""`Normalizer`: one source's raw messages in, canonical events and a full account of every input out.

A Normalizer keeps its books (and binance's held diffs and trade ids) across calls, so a feed can
arrive in batches. It is not thread-safe: use one per stream.

Payloads are decoded JSON values or raw JSON text (str / bytes). The local arrival time comes from
the input itself: quantdesk's envelope `{"payload": <message>, "capture_time_ms": <int>}` or a
recorder's line format (`recorded.py`: Tardis, tardis-machine, hftbacktest, cryptofeed); without one
the `clock` (if given) stamps it, else capture time equals the exchange time. Messages without an
exchange time (binance partial depth, spot bookTicker, REST snapshots) take the capture time; with
none, both times are null and the summary says so. The wall clock is never used: the same input
always gives the same output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from quantdesk.tools.normalize import binance_columnar
from quantdesk.tools.normalize.arrow import events_to_table, merge_in_order
from quantdesk.tools.normalize.binance import BinanceParser
from quantdesk.tools.normalize.emitter import Emitter, Produced
from quantdesk.tools.normalize.outcomes import (
    Counts,
    Emitted,
    MessageError,
    NonEvent,
    NormalizeResult,
    Rejection,
    Summary,
)
from quantdesk.tools.normalize.parser import Options
from quantdesk.tools.normalize.recorded import RECORDER_FORMATS, RecorderNote, read_text, unwrap
from quantdesk.tools.normalize.registry import get_source

logger = logging.getLogger(__name__)

_TEXT = (bytes, bytearray, memoryview, str)
Streamed = Emitted | Rejection | NonEvent | Summary


class Normalizer:
    """Normalizes one source's messages; see the module docstring for payloads and time stamps.

    `symbol` is the default symbol (venue or canonical form) for messages that carry none;
    `market` tells binance spot from USD-M (`spot` | `usdm`) and bybit categories
    (`spot` | `linear` | `inverse`) when the message shape cannot; `contract_sizes` adds or overrides
    contract values (OKX by instId, CME by product root or symbol, SGX by base); `quote_usd` gives
    USD rates for non-USD quotes; `max_pending` bounds the binance diffs held per book.
    """

    def __init__(self, source: str, symbol: str | None = None, *, market: str | None = None,
                 clock: Callable[[], int] | None = None, contract_sizes: Mapping[str, float] | None = None,
                 quote_usd: Mapping[str, float] | None = None, max_pending: int = 2000,
                 columnar: bool = True) -> None:
        spec = get_source(source)
        self.source = source
        self._parser = spec.parser(Options(symbol, market, dict(contract_sizes or {}), dict(quote_usd or {}),
                                           max_pending))
        self._clock = clock
        self._kept: Emitter | None = None  # the emitter of a session kept across calls
        self._next_index = 0
        # The columnar lane has no envelope or clock: it serves recorded binance lines.
        self._columnar = columnar and clock is None and isinstance(self._parser, BinanceParser)

    # -- batches of payloads ---------------------------------------------------------------------

    def normalize(self, payloads: Iterable[object]) -> NormalizeResult:
        """Normalize a batch; diffs still held at the end are rejected (`awaiting_snapshot`)."""
        out = Emitter()
        one = self._one
        if isinstance(payloads, Sequence):
            self._parser.prime(payloads)
        for index, payload in enumerate(payloads):
            one(index, payload, out)
        self._parser.finish(out)
        events: list[dict[str, Any]] = []
        event_index: list[int] = []
        rejections: list[Rejection] = []
        non_events: list[NonEvent] = []
        for item in out.drain():
            if type(item) is Emitted:
                events.append(item.event)
                event_index.append(item.index)
            elif type(item) is Rejection:
                rejections.append(item)
            else:
                assert type(item) is NonEvent
                non_events.append(item)
        return NormalizeResult(events, event_index, rejections, non_events, self.summary(out))

    def iter_normalize(self, payloads: Iterable[object], *, keep: bool = False) -> Generator[Streamed, None, None]:
        """Yield events, rejections and non-events as they are produced; the last item is the `Summary`.

        With `keep` (a session fed across calls) diffs still held at the end stay held for the next
        call, input indices continue from the previous call's, and the summary's counts run across
        calls; `end` closes such a session. Without it, closing the generator early (a client went
        away) drops what the call still held.
        """
        if keep:
            out = self._kept = self._kept if self._kept is not None else Emitter()
        else:
            out = Emitter()
        if isinstance(payloads, Sequence):
            self._parser.prime(payloads)
        finished = False
        try:
            for payload in payloads:
                index = self._next_index if keep else out.inputs
                if keep:
                    self._next_index += 1
                self._one(index, payload, out)
                yield from out.drain()
            if not keep:
                self._parser.finish(out)
            finished = True
            yield from out.drain()
            yield self.summary(out)
        finally:
            if not finished and not keep:  # the consumer stopped early: do not carry held diffs into the next call
                self._parser.finish(Emitter())

    @property
    def next_index(self) -> int:
        """The index the next input of a kept session gets."""
        return self._next_index

    def end(self) -> Generator[Streamed, None, None]:
        """Close a kept session: diffs still held are rejected as `awaiting_snapshot`; the last item is the summary."""
        out = self._kept if self._kept is not None else Emitter()
        self._kept = None
        self._parser.finish(out)
        yield from out.drain()
        yield self.summary(out)

    def summary(self, out: Emitter) -> Summary:
        counts = out.counts()
        return Summary(self.source, counts, self._parser.book_statuses(), list(out.gap_reports),
                       _time_warnings(counts) + list(out.warnings.values()))

    # -- lines to Arrow ----------------------------------------------------------------------------

    def arrow_session(self) -> ArrowSession:
        """A session that turns chunks of JSON lines into Arrow tables (used for files and benchmarks)."""
        return ArrowSession(self)

    # -- one input -----------------------------------------------------------------------------

    def _one(self, index: int, payload: object, out: Emitter) -> None:
        out.begin(index)
        try:
            msg, capture = self._unwrap(payload)
            if type(msg) is RecorderNote:
                out.non_event(index, "control", {"recorder": msg.recorder})
            else:
                self._parser.handle(index, msg, capture, out)
        except MessageError as err:
            out.reject(index, err.kind, err.reason)
        except Exception:  # no input may abort the batch; a parser bug is logged and the input reported
            logger.warning("unexpected error normalizing %s input %d", self.source, index, exc_info=True)
            out.reject(index, "malformed", "the message could not be read")
        out.end()

    def _unwrap(self, payload: object) -> tuple[object, int | None]:
        if isinstance(payload, _TEXT):
            payload = read_text(payload)
        payload, capture = unwrap(payload)
        if capture is None and self._clock is not None:
            capture = self._clock()
        return payload, capture


@dataclass(slots=True)
class ArrowChunk:
    """The Arrow events of a chunk of lines (EVENT_SCHEMA, production order) and its reports."""

    table: pa.Table
    rejections: list[Rejection] = field(default_factory=list)
    non_events: list[NonEvent] = field(default_factory=list)
    blank_lines: int = 0


class ArrowSession:
    """Feeds chunks of JSON lines through a Normalizer; counts and book state run across chunks.

    Binance trade lines go through the columnar lane; every other line through the per-message path.
    Call `close` after the last chunk: it resolves held diffs.
    """

    def __init__(self, normalizer: Normalizer) -> None:
        self._n = normalizer
        self._out = Emitter()
        self.blank_lines = 0

    def feed(self, lines: Sequence[bytes], first_index: int = 0) -> ArrowChunk:
        """Normalize `lines`; the input index of line i is `first_index + i` (blank lines are skipped)."""
        stripped = list(map(bytes.strip, lines))
        if b"" in stripped:
            positions = [i for i, line in enumerate(stripped) if line]
            texts = [stripped[i] for i in positions]
            indices = np.asarray(positions, np.int64) + first_index
        else:
            texts = stripped
            indices = np.arange(first_index, first_index + len(stripped), dtype=np.int64)
        return self._feed(texts, indices, len(stripped) - len(texts), None)

    def feed_block(self, block: bytes, first_index: int = 0) -> tuple[ArrowChunk, int]:
        """Normalize complete lines joined by newlines (a block of a file); returns the chunk and the line count.

        Saves `feed`'s split, strip and join when no line can be blank (JSON tolerates the `\r` of CRLF).
        """
        lines = block.split(b"\n")
        if _may_have_blank_lines(lines):
            return self.feed(lines, first_index), len(lines)
        indices = np.arange(first_index, first_index + len(lines), dtype=np.int64)
        return self._feed(lines, indices, 0, block), len(lines)

    def _feed(self, texts: list[bytes], indices: np.ndarray, blank: int, block: bytes | None) -> ArrowChunk:
        self.blank_lines += blank
        self._n._parser.prime(texts)
        parts: list[binance_columnar.Part] = [(None, 0, len(texts))]
        if self._n._columnar and texts:
            parts = binance_columnar.read_parts(texts, block)
        produced: list[tuple[int, Produced]] = []
        lanes: list[binance_columnar.LaneResult] = []
        for table, lo, hi in parts:
            if table is not None and (lane := self._lane(table, texts, indices, lo, hi, produced)) is not None:
                lanes.append(lane)
            else:
                self._messages(range(lo, hi), map(_try_decode, texts[lo:hi]), indices, produced)
        chunk = self._collect(produced, lanes)
        chunk.blank_lines = blank
        return chunk

    def _lane(self, table: pa.Table, texts: list[bytes], indices: np.ndarray, lo: int, hi: int,
              produced: list[tuple[int, Produced]]) -> binance_columnar.LaneResult | None:
        """Run the columnar lane on a part; None (nothing done) if the part must take the per-message path."""
        parser = self._n._parser
        assert isinstance(parser, BinanceParser)
        lane = binance_columnar.run_lane(parser, table, indices[lo:hi])
        if not lane.taken.any():
            return None
        rest = (lo + np.flatnonzero(~lane.taken)).tolist()
        decoded = [_try_decode(texts[i]) for i in rest]
        if any(_wraps_trade(msg) for msg in decoded):
            return None  # a wrapped trade among lane rows would check trade ids out of order
        parser.last_trade_ids.update(lane.trade_ids)
        accepted = lane.table.num_rows
        self._out.add_bulk(accepted=accepted, trade_events=accepted,
                           non_events={"off_book_trade": lane.off_book} if lane.off_book else {})
        self._out.add_bulk_rejections(lane.rejections)
        self._messages(rest, decoded, indices, produced)
        return lane

    def _messages(self, rows: Iterable[int], decoded: Iterable[object], indices: np.ndarray,
                  produced: list[tuple[int, Produced]]) -> None:
        out = self._out
        for i, msg in zip(rows, decoded, strict=True):
            index = int(indices[i])
            if isinstance(msg, MessageError):
                out.begin(index)
                out.reject(index, msg.kind, msg.reason)
                out.end()
            else:
                self._n._one(index, msg, out)
            produced.extend((index, item) for item in out.drain())

    def close(self) -> ArrowChunk:
        """Resolve what is still held (binance diffs without a snapshot) and return its reports."""
        self._n._parser.finish(self._out)
        return self._collect([(-1, item) for item in self._out.drain()], [])

    def summary(self) -> Summary:
        return self._n.summary(self._out)

    def _collect(self, produced: list[tuple[int, Produced]], lanes: list[binance_columnar.LaneResult]) -> ArrowChunk:
        events = [(key, item.event) for key, item in produced if type(item) is Emitted]
        rejections = [item for _, item in produced if type(item) is Rejection]
        non_events = [item for _, item in produced if type(item) is NonEvent]
        parts = [(events_to_table([e for _, e in events]), np.asarray([k for k, _ in events], np.int64))]
        for lane in lanes:
            parts.append((lane.table, lane.event_keys))
            rejections.extend(lane.rejections)
        if lanes:
            rejections.sort(key=lambda r: r.index)
        return ArrowChunk(merge_in_order(parts), rejections, non_events)


def _time_warnings(counts: Counts) -> list[str]:
    out = []
    if counts.timestamps_from_capture:
        out.append(f"{counts.timestamps_from_capture} inputs carry no exchange time (binance spot bookTicker, partial "
                   "depth, REST snapshots): their timestamp_ms is the capture time, not the exchange's clock")
    if counts.timestamps_missing:
        out.append(f"{counts.timestamps_missing} inputs carry neither an exchange time nor a capture time: their "
                   "timestamp_ms and capture_time_ms are null. Give each message its receive time: "
                   + "; ".join(RECORDER_FORMATS))
    return out


def _may_have_blank_lines(lines: list[bytes]) -> bool:
    """False only when no line is empty or starts with whitespace (the smallest line decides, in one C loop)."""
    return not lines or min(lines)[:1] <= b" "


def _try_decode(text: bytes) -> object:
    """The decoded line (a recorder's timestamp kept as the envelope), or the `MessageError` that rejects it."""
    try:
        return read_text(text)
    except MessageError as err:
        return err


def _wraps_trade(msg: object) -> bool:
    """Whether a line the lane did not take may hold a binance trade inside envelopes or combined-stream wrappers."""
    depth = 0
    while type(msg) is dict and "e" not in msg and depth < 3:
        inner = msg.get("data", msg.get("payload"))
        if type(inner) in (bytes, str):
            return True
        msg, depth = inner, depth + 1
    return depth > 0 and type(msg) is dict and msg.get("e") in ("trade", "aggTrade")
