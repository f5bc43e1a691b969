"""What normalizing one input can come to, and the summary of a run.

Every input ends in exactly one of three outcomes: accepted (it produced at least one canonical
event), rejected (a `Rejection` with its index, kind and reason) or a non-event (a valid message
that is not a trade or a book event, such as `markPriceUpdate`, counted by kind). Binance diffs
that arrive before a snapshot are held and resolved later; `Counts.pending` counts them until then.

One word for old news on every venue: a message whose sequence number, update id or trade id is at
or before what was already applied (the same one again included) is `stale`; the reason says which.
A continuity break is not a rejection but a gap (`GapReport`): a sequence jump, or an OKX checksum
that no longer matches the maintained book.

Reasons never quote the text of a field: a file that is not the expected format must not leak
through its error messages. They name the field and what is wrong with it; numbers that locate a
continuity problem (update ids, sequence numbers) are given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RejectKind = Literal[
    "malformed_json",  # the line or string is not JSON
    "malformed",  # a required field is missing or the message has the wrong shape
    "wrong_type",  # a field has the wrong JSON type
    "invalid_value",  # a field has the right type but an impossible value (price <= 0, NaN, ...)
    "unsupported_message",  # a channel or event type this source does not normalize
    "unknown_symbol",  # the venue symbol cannot be mapped to a canonical symbol
    "unknown_instrument",  # no contract size is known for a derivative
    "ambiguous_market",  # binance spot and USD-M cannot be told apart; pass `market`
    "stale",  # a sequence number, update id or trade id at or before the last one applied (repeats included)
    "awaiting_snapshot",  # a delta for a book that has no valid snapshot
    "crossed_book",  # applying the message leaves best bid above best ask
    "invalid_book_operation",  # a CME level operation that the maintained book cannot take
]

NonEventKind = Literal[
    "control",  # subscription acks, pongs, venue error notices
    "mark_price",  # binance markPriceUpdate: parsed into `detail`, not a canonical event
    "off_book_trade",  # binance USD-M insurance-fund / ADL trades (X != MARKET)
    "empty",  # a well-formed message that carries nothing (no trades, empty bbo)
    "trade_correction",  # CME trade summary corrections and busts
]

Outcome = Literal["accepted", "rejected", "non_event", "pending"]


class MessageError(Exception):
    """Raised inside a venue parser to reject the message being handled."""

    def __init__(self, kind: RejectKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: RejectKind = kind
        self.reason = reason


@dataclass(slots=True)
class Emitted:
    """One canonical event (a dict that validates as TradeEvent or BookEvent) and the input it came from.

    Not frozen: one is made per event and a frozen dataclass costs twice as much to build. Treat as read-only.
    """

    index: int
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    kind: RejectKind
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class NonEvent:
    index: int
    kind: NonEventKind
    detail: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class GapReport:
    """A continuity break: which stream, at which input, what was expected and what came.

    `cause` is `sequence` (a jump in update ids or sequence numbers) or `checksum` (the venue's
    checksum no longer matches the maintained book, so some update was lost or misapplied).
    """

    index: int
    exchange: str
    symbol: str
    raw_symbol: str
    channel: str
    expected: str
    received: str
    cause: Literal["sequence", "checksum"] = "sequence"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BookStatus:
    """The state of one maintained book, keyed by (exchange, symbol, raw_symbol, channel)."""

    exchange: str
    symbol: str
    raw_symbol: str
    channel: str
    state: Literal["synced", "awaiting_snapshot"]
    last_seq: int | None
    bid_levels: int
    ask_levels: int
    best_bid: float | None
    best_ask: float | None
    snapshots: int
    gaps: int
    pending: int
    last_problem: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Counts:
    """Counts by outcome. accepted + rejected + non_event + pending == inputs."""

    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    non_event: int = 0
    pending: int = 0
    events: int = 0
    trade_events: int = 0
    book_events: int = 0
    gap_events: int = 0
    gaps: int = 0
    checksums_verified: int = 0
    checksums_skipped: int = 0
    timestamps_from_capture: int = 0  # inputs without an exchange time, stamped with their capture time
    timestamps_missing: int = 0  # inputs without an exchange or a capture time: their times are null
    rejected_by_kind: dict[str, int] = field(default_factory=dict)
    non_event_by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Summary:
    """The end of a run: counts, every maintained book, the gaps found (first `max_gap_reports`), and warnings.

    Warnings say what the output cannot show by itself: times taken from the capture clock or left
    null, a market that had to be assumed.
    """

    source: str
    counts: Counts
    books: list[BookStatus]
    gaps: list[GapReport]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "counts": self.counts.as_dict(),
            "books": [b.as_dict() for b in self.books],
            "gaps": [g.as_dict() for g in self.gaps],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class NormalizeResult:
    """The result of `Normalizer.normalize`: events in production order and what happened to every input."""

    events: list[dict[str, Any]]
    event_index: list[int]
    rejections: list[Rejection]
    non_events: list[NonEvent]
    summary: Summary

    @property
    def counts(self) -> Counts:
        return self.summary.counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "event_index": self.event_index,
            "rejections": [r.as_dict() for r in self.rejections],
            "non_events": [n.as_dict() for n in self.non_events],
            **self.summary.as_dict(),
        }
