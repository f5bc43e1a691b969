"""Normalize sessions: a feed streamed across `normalize_events` calls keeps its books between them.

Sessions live in this server process only (a restart ends them): each holds one `Normalizer`, its
maintained books and the diffs it still holds. An id is 96 random bits, bound to the caller that
opened it; one left idle for `idle_seconds` (15 minutes) expires, and at most `max_sessions` (64)
exist at once, so a forgetful client cannot pin memory. An unknown, ended or expired id (or another
caller's) is the same `NotFound`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quantdesk.server.errors import Conflict, NotFound, RateLimited

if TYPE_CHECKING:
    from quantdesk.tools.normalize.normalizer import Normalizer

IDLE_SECONDS = 900.0
MAX_SESSIONS = 64
SESSION_PATTERN = r"^ns_[0-9a-f]{24}$"


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What a session was opened with; later calls may repeat these but not change them."""

    source: str
    symbol: str | None
    market: str | None
    contract_sizes: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Session:
    id: str
    owner: str | None
    options: SessionOptions
    normalizer: Normalizer
    last_used: float
    busy: bool = False


class NormalizeSessions:
    """The open sessions of this process, with idle expiry and a cap on their number."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, idle_seconds: float = IDLE_SECONDS,
                 max_sessions: int = MAX_SESSIONS) -> None:
        self._clock = clock
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, owner: str | None, options: SessionOptions, normalizer: Normalizer) -> Session:
        """A new session; `RateLimited` when `max_sessions` are open and none has expired."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._sessions) >= self.max_sessions:
                oldest = min(s.last_used for s in self._sessions.values())
                raise RateLimited(
                    f"{self.max_sessions} normalize sessions are open: end one (end_session: true) or retry when "
                    f"one has been idle {self.idle_seconds:.0f} s", retry_after_seconds=max(
                        1.0, oldest + self.idle_seconds - now))
            session = Session(f"ns_{secrets.token_hex(12)}", owner, options, normalizer, now)
            self._sessions[session.id] = session
            return session

    @contextmanager
    def use(self, session_id: str, owner: str | None) -> Iterator[Session]:
        """The session for one call: `NotFound` if unknown, expired or another caller's; `Conflict` if in use."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            session = self._sessions.get(session_id)
            if session is None or session.owner != owner:
                raise NotFound(f"no normalize session {session_id}: it is unknown, was ended, or expired after "
                               f"{self.idle_seconds:.0f} s idle (sessions live in one server process); "
                               "open a new one with session: 'new'")
            if session.busy:
                raise Conflict(f"normalize session {session_id} is in use by another call; calls on one session "
                               "must come one after the other")
            session.busy = True
        try:
            yield session
        finally:
            with self._lock:
                session.busy = False
                session.last_used = self._clock()

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def count(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        stale = [k for k, s in self._sessions.items() if not s.busy and now - s.last_used >= self.idle_seconds]
        for key in stale:
            del self._sessions[key]
