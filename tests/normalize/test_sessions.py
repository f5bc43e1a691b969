"""Normalize sessions: books kept across calls, idle expiry, a cap on how many, one call at a time."""

from __future__ import annotations

import pytest

from quantdesk.server.errors import Conflict, NotFound, RateLimited
from quantdesk.tools.normalize import Emitted, Normalizer, Rejection, Summary
from quantdesk.tools.normalize.sessions import NormalizeSessions, SessionOptions

SNAPSHOT = {"lastUpdateId": 100, "bids": [["99", "1"], ["98", "1"]], "asks": [["101", "1"]]}
DIFF = {"e": "depthUpdate", "E": 1_700_000_000_000, "s": "BTCUSDT", "U": 101, "u": 102, "b": [["99", "0"]], "a": []}
OPTIONS = SessionOptions("binance", "BTCUSDT", "spot")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_kept_normalizer_continues_indices_counts_and_held_diffs() -> None:
    normalizer = Normalizer("binance", "BTCUSDT", market="spot")
    first = list(normalizer.iter_normalize([DIFF], keep=True))
    assert isinstance(first[-1], Summary) and first[-1].counts.pending == 1
    assert not [i for i in first if isinstance(i, Rejection)], "the diff waits; it is not rejected"
    second = list(normalizer.iter_normalize([SNAPSHOT], keep=True))
    assert [i.index for i in second if isinstance(i, Emitted)] == [1, 0]
    summary = second[-1]
    assert isinstance(summary, Summary)
    assert (summary.counts.inputs, summary.counts.accepted, summary.counts.pending) == (2, 2, 0)
    assert normalizer.next_index == 2


def test_ending_a_kept_normalizer_rejects_what_it_still_holds() -> None:
    normalizer = Normalizer("binance", "BTCUSDT", market="spot")
    list(normalizer.iter_normalize([DIFF], keep=True))
    ended = list(normalizer.end())
    assert [(r.index, r.kind) for r in ended if isinstance(r, Rejection)] == [(0, "awaiting_snapshot")]


def test_an_idle_session_expires_and_is_then_not_found() -> None:
    clock = Clock()
    sessions = NormalizeSessions(clock=clock, idle_seconds=900)
    session = sessions.open("key1", OPTIONS, Normalizer("binance"))
    clock.now += 899
    with sessions.use(session.id, "key1"):
        pass
    clock.now += 899
    with sessions.use(session.id, "key1"):  # each use restarts the idle time
        pass
    clock.now += 900
    with pytest.raises(NotFound, match="expired"), sessions.use(session.id, "key1"):
        pass
    assert sessions.count() == 0


def test_the_number_of_sessions_is_capped_until_one_expires() -> None:
    clock = Clock()
    sessions = NormalizeSessions(clock=clock, idle_seconds=60, max_sessions=2)
    sessions.open(None, OPTIONS, Normalizer("binance"))
    clock.now += 10
    sessions.open(None, OPTIONS, Normalizer("binance"))
    with pytest.raises(RateLimited) as refused:
        sessions.open(None, OPTIONS, Normalizer("binance"))
    assert refused.value.retry_after_seconds == pytest.approx(50)
    clock.now += 50
    sessions.open(None, OPTIONS, Normalizer("binance"))
    assert sessions.count() == 2


def test_a_session_serves_one_call_at_a_time_and_only_its_owner() -> None:
    sessions = NormalizeSessions(clock=Clock())
    session = sessions.open("key1", OPTIONS, Normalizer("binance"))
    with sessions.use(session.id, "key1"):
        with pytest.raises(Conflict), sessions.use(session.id, "key1"):
            pass
    with pytest.raises(NotFound), sessions.use(session.id, "key2"):
        pass
    sessions.end(session.id)
    with pytest.raises(NotFound), sessions.use(session.id, "key1"):
        pass
