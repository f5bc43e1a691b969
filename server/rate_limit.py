"""Per-client request limits for the legacy APIs that had them (MANTIS: 120 requests a minute per address)."""

from __future__ import annotations

import time
from typing import Any

from quantdesk.server.errors import RateLimited


class ClientRateLimit:
    """A moving one-minute window per client address, from the `limits` library."""

    def __init__(self, per_minute: int) -> None:
        from limits import RateLimitItemPerMinute
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter: Any = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client: str) -> None:
        if not self._limiter.hit(self._item, client):
            reset_at, _ = self._limiter.get_window_stats(self._item, client)
            raise RateLimited(f"rate limited: at most {self.per_minute} requests a minute per client",
                              retry_after_seconds=max(1.0, reset_at - time.time()))
