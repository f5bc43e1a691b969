"""The desk's injected clock: real time when serving, or a simulated time that only `advance` moves."""

from __future__ import annotations

import threading
import time
from typing import Literal, Protocol

ClockMode = Literal["real", "simulated"]


class Clock(Protocol):
    mode: ClockMode

    def now_ms(self) -> int: ...


class RealClock:
    """Wall-clock time, ms since the epoch (UTC)."""

    mode: ClockMode = "real"

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SimulatedClock:
    """A time that stands still until the engine moves it; never goes backwards."""

    mode: ClockMode = "simulated"

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now

    def set(self, t_ms: int) -> None:
        with self._lock:
            if t_ms < self._now:
                raise ValueError(f"the simulated clock cannot go back from {self._now} to {t_ms}")
            self._now = t_ms
