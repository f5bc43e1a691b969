"""Browser sessions of the dashboard: an opaque id in an HTTP-only cookie, the key it logged in with, a CSRF token.

The session keeps the key, not a principal, so every request authenticates again: a key revoked while a
browser is open stops working at its next click. Sessions live in memory (a restart asks for the key again);
the table is bounded so anonymous page views cannot grow it without limit.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

COOKIE = "qd_ui"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "_csrf"


@dataclass(slots=True)
class Session:
    id: str
    credential: str | None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    last_seen: float = field(default_factory=time.monotonic)

    def csrf_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    """At most `capacity` sessions, the least recently used dropped first; idle ones expire."""

    def __init__(self, capacity: int = 4096, idle_seconds: float = 12 * 3600) -> None:
        self.capacity = capacity
        self.idle_seconds = idle_seconds
        self._table: OrderedDict[str, Session] = OrderedDict()

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._table.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle_seconds:
            del self._table[session_id]
            return None
        session.last_seen = now
        self._table.move_to_end(session_id)
        return session

    def create(self, credential: str | None = None) -> Session:
        session = Session(secrets.token_urlsafe(32), credential)
        self._table[session.id] = session
        while len(self._table) > self.capacity:
            self._table.popitem(last=False)
        return session

    def drop(self, session_id: str) -> None:
        self._table.pop(session_id, None)
