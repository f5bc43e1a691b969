"""How a desk is set up: clock, market feed, seed, starting balances, equity sampling.

Read from QUANTDESK_DESK_* environment variables when a data directory has no desk yet, then stored
with the desk: later starts keep the stored set-up, so the market path, the clock and the balances
continue where they were.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from quantdesk.tools.desk.clock import ClockMode

FeedKind = Literal["synthetic", "replay"]
DEFAULT_SIMULATED_START_MS = 1_735_689_600_000
"""2025-01-01T00:00:00Z, the generator's default start."""
DEFAULT_SEED = 42
DEFAULT_BALANCE_USDT = 100_000.0


@dataclass(frozen=True, slots=True)
class DeskConfig:
    clock: ClockMode = "real"
    start_time_ms: int | None = None
    """Simulated clock: the first instant (default 2025-01-01). Real clock: set to the first start."""
    feed: FeedKind = "synthetic"
    seed: int = DEFAULT_SEED
    replay_path: str | None = None
    initial_balances: dict[str, float] = field(default_factory=lambda: {"USDT": DEFAULT_BALANCE_USDT})
    equity_sample_seconds: int = 60
    runner_interval_seconds: float = 0.25
    """Real clock: how often the background runner processes the market up to now."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DeskConfig:
        env = dict(os.environ if environ is None else environ)
        problems = []
        clock = env.get("QUANTDESK_DESK_CLOCK", "real")
        if clock not in ("real", "simulated"):
            problems.append(f"QUANTDESK_DESK_CLOCK must be real or simulated, not {clock!r}")
        feed_text = env.get("QUANTDESK_DESK_FEED", "synthetic")
        feed: FeedKind = "synthetic"
        replay_path = None
        if feed_text.startswith("replay:"):
            feed, replay_path = "replay", feed_text.removeprefix("replay:")
        elif feed_text != "synthetic":
            problems.append(f"QUANTDESK_DESK_FEED must be synthetic or replay:<parquet path>, not {feed_text!r}")
        numbers: dict[str, float] = {}
        for name, default in (("QUANTDESK_DESK_SEED", DEFAULT_SEED), ("QUANTDESK_DESK_START_MS", -1),
                              ("QUANTDESK_DESK_BALANCE_USDT", DEFAULT_BALANCE_USDT),
                              ("QUANTDESK_DESK_EQUITY_SAMPLE_SECONDS", 60)):
            try:
                numbers[name] = float(env.get(name, default))
            except ValueError:
                problems.append(f"{name} must be a number")
        if problems:
            raise ValueError("; ".join(problems))
        seed = int(numbers["QUANTDESK_DESK_SEED"])
        start = int(numbers["QUANTDESK_DESK_START_MS"])
        sample = int(numbers["QUANTDESK_DESK_EQUITY_SAMPLE_SECONDS"])
        balance = numbers["QUANTDESK_DESK_BALANCE_USDT"]
        if not 0 <= seed < 2**53 or not 1 <= sample <= 86_400 or not 0 < balance <= 1e12:
            raise ValueError("QUANTDESK_DESK_SEED, _EQUITY_SAMPLE_SECONDS (1..86400) or _BALANCE_USDT out of range")
        if 86_400 % sample:
            raise ValueError("QUANTDESK_DESK_EQUITY_SAMPLE_SECONDS must divide a day")
        return cls(clock=clock, start_time_ms=start if start >= 0 else None,  # type: ignore[arg-type]
                   feed=feed, seed=seed, replay_path=replay_path, initial_balances={"USDT": balance},
                   equity_sample_seconds=sample)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DeskConfig:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)
