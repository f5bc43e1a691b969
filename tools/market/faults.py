"""Fault injection for windows, configured from the environment of the process that runs the job.

`QUANTDESK_MARKET_FAULTS` is a comma list of `action:window` with action `raise` (the window raises),
`exit` (the worker process dies) or `hang` (the window sleeps for an hour). With
`QUANTDESK_MARKET_FAULTS_DIR` set, each fault fires once: a marker file in that directory records
that it did. The job reads the variables when it starts and ships them inside each task, so they
reach pool and Dask workers whatever environment those were started with. Meant for tests and
drills of the retry, crash and cancellation paths; unset, it costs one lookup per job.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

FAULTS_VARIABLE = "QUANTDESK_MARKET_FAULTS"
FAULTS_DIR_VARIABLE = "QUANTDESK_MARKET_FAULTS_DIR"
ACTIONS = ("raise", "exit", "hang")


class InjectedFault(RuntimeError):
    """A failure asked for by QUANTDESK_MARKET_FAULTS."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which windows fail and how; `once_dir` makes each fault fire only once."""

    actions: tuple[tuple[str, int], ...]
    once_dir: str | None = None

    @classmethod
    def from_environment(cls) -> FaultPlan | None:
        spec = os.environ.get(FAULTS_VARIABLE, "").strip()
        if not spec:
            return None
        actions = []
        for item in spec.split(","):
            action, _, window = item.strip().partition(":")
            if action not in ACTIONS or not window.strip().isdigit():
                raise ValueError(f"{FAULTS_VARIABLE}: cannot read {item!r} (want action:window, action in {ACTIONS})")
            actions.append((action, int(window)))
        return cls(actions=tuple(actions), once_dir=os.environ.get(FAULTS_DIR_VARIABLE) or None)

    def _fires(self, action: str, window: int) -> bool:
        if self.once_dir is None:
            return True
        try:
            (Path(self.once_dir) / f"{action}-{window}").open("x").close()
        except FileExistsError:
            return False
        return True

    def inject(self, window: int) -> None:
        """Act out the faults planned for `window`."""
        for action, target in self.actions:
            if target != window or not self._fires(action, window):
                continue
            if action == "raise":
                raise InjectedFault(f"injected failure of window {window}")
            if action == "exit":
                os._exit(70)
            if action == "hang":
                time.sleep(3600)
