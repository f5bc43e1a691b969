"""The base of venue parsers: options, book registry, timestamps, notional and the book-event rules.

A parser's `handle` reads one decoded message and writes to the `Emitter`; it raises
`MessageError` to reject the message. It parses everything it needs before it changes any
state, so a rejected message never leaves a book half-updated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from quantdesk.tools.normalize.book import BookState
from quantdesk.tools.normalize.canonical import book_event
from quantdesk.tools.normalize.contracts import USD_QUOTES, quote_of
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import BookStatus, GapReport
from quantdesk.tools.normalize.values import Level


@dataclass(frozen=True, slots=True)
class Options:
    """What a caller can tell a parser beyond the messages themselves."""

    symbol: str | None = None  # default symbol (venue or canonical) for messages that carry none
    market: str | None = None  # binance: spot | usdm; bybit: spot | linear | inverse
    contract_sizes: Mapping[str, float] = field(default_factory=dict)  # venue symbol -> contract value
    quote_usd: Mapping[str, float] = field(default_factory=dict)  # quote currency -> USD, for notional_usd
    max_pending: int = 2000  # binance diffs held per book while waiting for a snapshot


def stamp(exchange_ms: int, capture_ms: int | None) -> tuple[int, int]:
    """(timestamp_ms, capture_time_ms) of a message with an exchange time; the capture time defaults to it."""
    return exchange_ms, capture_ms if capture_ms is not None else exchange_ms


def stamp_optional(exchange_ms: int | None, capture_ms: int | None, out: Emitter) -> tuple[int | None, int | None]:
    """The exchange time if the message has one, else the capture time, else null: never the wall clock.

    The emitter counts the inputs that had to fall back, and the summary warns about them.
    """
    if exchange_ms is not None:
        return stamp(exchange_ms, capture_ms)
    out.untimed(from_capture=capture_ms is not None)
    return capture_ms, capture_ms


class VenueParser:
    """Shared machinery; subclasses implement `handle` (and `finish` when they hold messages)."""

    source: ClassVar[str]
    markets: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Options) -> None:
        if options.market is not None and options.market not in self.markets:
            allowed = ", ".join(self.markets) or "none"
            raise ValueError(f"market {options.market!r} is not valid for source {self.source!r} (allowed: {allowed})")
        self.options = options
        self._books: dict[tuple[str, str, str, str], BookState] = {}
        self._usd: dict[str, float] = {**USD_QUOTES, **options.quote_usd}

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        raise NotImplementedError

    def prime(self, payloads: Sequence[object]) -> None:
        """Look over a batch before it is handled (bybit learns each symbol's category from its trades)."""

    def finish(self, out: Emitter) -> None:
        """Resolve anything still held at the end of the input."""

    # -- books ---------------------------------------------------------------------------------

    def book(self, exchange: str, symbol: str, raw_symbol: str, channel: str) -> BookState:
        key = (exchange, symbol, raw_symbol, channel)
        state = self._books.get(key)
        if state is None:
            state = self._books[key] = BookState(exchange, symbol, raw_symbol, channel)
        return state

    def book_statuses(self) -> list[BookStatus]:
        return [state.status() for _, state in sorted(self._books.items())]

    def replace(self, state: BookState, bids: list[Level], asks: list[Level], seq: int | None) -> None:
        """Apply a snapshot: the book becomes exactly these levels."""
        state.book.clear()
        state.book.apply(bids, asks)
        state.resync(seq)

    def publish(self, index: int, state: BookState, out: Emitter, *, timestamp_ms: int | None,
                capture_ms: int | None, bids: list[Level] | None = None, asks: list[Level] | None = None,
                is_snapshot: bool,
                seq_first: int | None = None, seq_last: int | None = None, seq_prev: int | None = None,
                checksum: int | None = None) -> bool:
        """Emit the event of a message already applied to the book, or reject it if the book is now crossed.

        A snapshot event carries the whole maintained book; a delta carries `bids`/`asks` as sent.
        """
        book = state.book
        bb, ba = book.best_bid(), book.best_ask()
        if bb is not None and ba is not None and bb > ba:
            problem = f"crossed book after input {index}: best bid {bb} > best ask {ba}"
            state.desync(problem)
            out.reject(index, "crossed_book", problem)
            return False
        if is_snapshot:
            bids, asks = book.top_bids(), book.top_asks()
        out.emit(index, book_event(
            state.exchange, state.symbol, state.raw_symbol, timestamp_ms, capture_ms, bids or [], asks or [],
            is_snapshot=is_snapshot, best_bid=bb, best_ask=ba, seq_first=seq_first, seq_last=seq_last,
            seq_prev=seq_prev, checksum=checksum))
        return True

    def publish_gap(self, index: int, state: BookState, out: Emitter, *, timestamp_ms: int | None,
                    capture_ms: int | None, bids: list[Level], asks: list[Level], expected: str, received: str,
                    seq_first: int | None = None, seq_last: int | None = None, seq_prev: int | None = None,
                    checksum: int | None = None, cause: Literal["sequence", "checksum"] = "sequence") -> None:
        """Mark a continuity break: the message becomes a `gap=true` event and the book waits for a snapshot."""
        state.gaps += 1
        state.desync(f"{cause} gap at input {index}: expected {expected}, received {received}")
        out.gap(GapReport(index, state.exchange, state.symbol, state.raw_symbol, state.channel, expected, received,
                          cause))
        out.emit(index, book_event(
            state.exchange, state.symbol, state.raw_symbol, timestamp_ms, capture_ms, bids, asks,
            is_snapshot=False, best_bid=None, best_ask=None, seq_first=seq_first, seq_last=seq_last,
            seq_prev=seq_prev, checksum=checksum, gap=True))

    # -- values --------------------------------------------------------------------------------

    def usd_rate(self, symbol: str) -> float:
        """USD per unit of the symbol's quote currency; NaN when unknown (pass `quote_usd`)."""
        return self._usd.get(quote_of(symbol), math.nan)

    def notional(self, symbol: str, price: float, size: float) -> float | None:
        """price x size in USD; None when the quote currency has no known USD rate (not a guess)."""
        rate = self.usd_rate(symbol)
        return None if math.isnan(rate) else price * size * rate
