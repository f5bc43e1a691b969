"""The sink venue parsers write to: outcomes in production order, and the per-input tally."""

from __future__ import annotations

from typing import Any

from quantdesk.tools.normalize.outcomes import (
    Counts,
    Emitted,
    GapReport,
    NonEvent,
    NonEventKind,
    Outcome,
    Rejection,
    RejectKind,
)

Produced = Emitted | Rejection | NonEvent


class Emitter:
    """Collects what parsers produce and classifies every input exactly once.

    The driver calls `begin(index)` before handing an input to a parser and `end()` after it.
    An input that emitted at least one event is accepted; one that was rejected is rejected;
    one that was held (a binance diff waiting for its snapshot) stays pending until a later
    `emit` or `reject` for its index resolves it.
    """

    __slots__ = ("outcomes", "gap_reports", "_max_gap_reports", "_current", "_current_outcome", "_held", "inputs",
                 "accepted", "rejected", "non_events", "pending", "events", "trade_events", "book_events",
                 "gap_events", "gaps", "checksums_verified", "checksums_skipped", "_rejected_by_kind",
                 "_non_event_by_kind", "timestamps_from_capture", "timestamps_missing", "warnings")

    def __init__(self, max_gap_reports: int = 1000) -> None:
        self.outcomes: list[Produced] = []
        self.gap_reports: list[GapReport] = []
        self._max_gap_reports = max_gap_reports
        self._current = -1
        self._current_outcome: Outcome | None = None
        self._held: set[int] = set()
        self.inputs = self.accepted = self.rejected = self.non_events = self.pending = 0
        self.events = self.trade_events = self.book_events = self.gap_events = self.gaps = 0
        self.checksums_verified = self.checksums_skipped = 0
        self.timestamps_from_capture = self.timestamps_missing = 0
        self.warnings: dict[str, str] = {}  # by topic, so that a repeated condition is said once
        self._rejected_by_kind: dict[str, int] = {}
        self._non_event_by_kind: dict[str, int] = {}

    # -- driver side ---------------------------------------------------------------------------

    def begin(self, index: int) -> None:
        self._current = index
        self._current_outcome = None
        self.inputs += 1

    def end(self) -> None:
        outcome = self._current_outcome
        if outcome == "accepted":
            self.accepted += 1
        elif outcome == "rejected":
            self.rejected += 1
        elif outcome == "non_event":
            self.non_events += 1
        elif outcome == "pending":
            self.pending += 1
            self._held.add(self._current)
        else:
            # A parser that produced nothing for its input is a bug; report it rather than lose the input.
            self._record_rejection(Rejection(self._current, "malformed", "the message produced no outcome"))
            self.rejected += 1
        self._current = -1

    def drain(self) -> list[Produced]:
        """Return the outcomes produced since the last drain."""
        out = self.outcomes
        self.outcomes = []
        return out

    def counts(self) -> Counts:
        return Counts(
            inputs=self.inputs, accepted=self.accepted, rejected=self.rejected, non_event=self.non_events,
            pending=self.pending, events=self.events, trade_events=self.trade_events, book_events=self.book_events,
            gap_events=self.gap_events, gaps=self.gaps, checksums_verified=self.checksums_verified,
            checksums_skipped=self.checksums_skipped, timestamps_from_capture=self.timestamps_from_capture,
            timestamps_missing=self.timestamps_missing, rejected_by_kind=dict(self._rejected_by_kind),
            non_event_by_kind=dict(self._non_event_by_kind))

    def add_bulk(self, *, accepted: int, trade_events: int, non_events: dict[str, int]) -> None:
        """Tally inputs decided outside `begin`/`end` (the columnar lane)."""
        n_non = sum(non_events.values())
        self.inputs += accepted + n_non
        self.accepted += accepted
        self.events += trade_events
        self.trade_events += trade_events
        self.non_events += n_non
        for kind, n in non_events.items():
            self._non_event_by_kind[kind] = self._non_event_by_kind.get(kind, 0) + n

    def add_bulk_rejections(self, rejections: list[Rejection]) -> None:
        """Tally inputs the columnar lane rejected (the caller reports them)."""
        self.inputs += len(rejections)
        self.rejected += len(rejections)
        for r in rejections:
            self._rejected_by_kind[r.kind] = self._rejected_by_kind.get(r.kind, 0) + 1

    # -- parser side ---------------------------------------------------------------------------

    def emit(self, index: int, event: dict[str, Any]) -> None:
        self.outcomes.append(Emitted(index, event))
        self.events += 1
        if event["event_type"] == "trade":
            self.trade_events += 1
        else:
            self.book_events += 1
            if event["gap"]:
                self.gap_events += 1
        if index == self._current:
            if self._current_outcome is None or self._current_outcome == "non_event":
                self._current_outcome = "accepted"
        else:
            self._resolve(index, "accepted")

    def reject(self, index: int, kind: RejectKind, reason: str) -> None:
        self._record_rejection(Rejection(index, kind, reason))
        if index == self._current:
            if self._current_outcome is None:
                self._current_outcome = "rejected"
        else:
            self._resolve(index, "rejected")

    def non_event(self, index: int, kind: NonEventKind, detail: dict[str, Any] | None = None) -> None:
        self.outcomes.append(NonEvent(index, kind, detail))
        self._non_event_by_kind[kind] = self._non_event_by_kind.get(kind, 0) + 1
        if index == self._current:
            if self._current_outcome is None:
                self._current_outcome = "non_event"
        else:
            self._resolve(index, "non_event")

    def hold(self, index: int) -> None:
        """Keep the current input pending; a later `emit` or `reject` with its index resolves it."""
        if index == self._current and self._current_outcome is None:
            self._current_outcome = "pending"

    def gap(self, report: GapReport) -> None:
        self.gaps += 1
        if len(self.gap_reports) < self._max_gap_reports:
            self.gap_reports.append(report)

    def untimed(self, *, from_capture: bool) -> None:
        """The current input carries no exchange time: it was stamped with its capture time, or left null."""
        if from_capture:
            self.timestamps_from_capture += 1
        else:
            self.timestamps_missing += 1

    def warn(self, topic: str, text: str) -> None:
        """Say something about the run once per topic (the latest text wins)."""
        if topic in self.warnings or len(self.warnings) < 100:
            self.warnings[topic] = text

    def checksum(self, verified: bool) -> None:
        if verified:
            self.checksums_verified += 1
        else:
            self.checksums_skipped += 1

    # -- internals -----------------------------------------------------------------------------

    def _record_rejection(self, rejection: Rejection) -> None:
        self.outcomes.append(rejection)
        self._rejected_by_kind[rejection.kind] = self._rejected_by_kind.get(rejection.kind, 0) + 1

    def _resolve(self, index: int, outcome: Outcome) -> None:
        """A held input got its outcome (only the first one counts)."""
        if index in self._held:
            self._held.discard(index)
            self.pending -= 1
            if outcome == "accepted":
                self.accepted += 1
            elif outcome == "rejected":
                self.rejected += 1
            else:
                self.non_events += 1
