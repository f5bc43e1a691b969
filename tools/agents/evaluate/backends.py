"""Where development evaluations run: a sandboxed child process of this server (the default), or a Dask cluster.

The backends of generation, for evaluations: `process` runs the strategy in this machine's sandbox; `dask`
(QUANTDESK_AGENTS_BACKEND=dask) submits the whole development evaluation to a Dask cluster
(QUANTDESK_DASK_ADDRESS, or a LocalCluster started on first use), where a worker runs it in its own sandbox,
in a temporary folder, and sends back the scored result, so a fleet of agents spreads over the cluster. Workers
need quantdesk installed. The once-per-agent holdout stays in the server's sandbox: it is audited against the
development run's digest, and the holdout rows never leave the server.

A stop asked during a Dask evaluation cancels the task; a strategy already running on a worker is ended by
its sandbox's wall-clock limit there, and its result is dropped.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Protocol

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.data.market import MarketData
from quantdesk.tools.agents.evaluate.evaluator import Evaluation, Evaluator
from quantdesk.tools.agents.evaluate.scoring import Split
from quantdesk.tools.agents.sandbox.sandbox import Limits, Sandbox

BACKENDS = ("process", "dask")
POLL_SECONDS = 0.5
TASK_PREFIX = "agent-evaluation"


class Cancelled(Protocol):
    def __call__(self) -> bool: ...


class EvaluationBackend(Protocol):
    name: str

    def development(self, challenge: Challenge, data: MarketData, split: Split, code: str, workdir: Path, *,
                    descriptions: dict[str, dict[str, str]] | None, seed: int, wall_seconds: float | None,
                    owner: str, cancelled: Cancelled) -> Evaluation: ...

    def close(self) -> None: ...


class ProcessBackend:
    """The server's own sandbox (a stop kills the child through Sandbox.kill_owner)."""

    name = "process"

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def development(self, challenge: Challenge, data: MarketData, split: Split, code: str, workdir: Path, *,
                    descriptions: dict[str, dict[str, str]] | None, seed: int, wall_seconds: float | None,
                    owner: str, cancelled: Cancelled) -> Evaluation:
        return self.evaluator.development(challenge, data, split, code, workdir, descriptions=descriptions,
                                          seed=seed, wall_seconds=wall_seconds, owner=owner)

    def close(self) -> None:
        return None


def evaluate_on_worker(challenge: Challenge, data: MarketData, split: Split, code: str,
                       descriptions: dict[str, dict[str, str]] | None, seed: int, wall_seconds: float | None,
                       limits: Limits, hidden: tuple[str, ...]) -> Evaluation:
    """Runs on a Dask worker: the development evaluation in that machine's sandbox, in a folder of its own."""
    sandbox = Sandbox(hidden=tuple(Path(p) for p in hidden), limits=limits)
    try:
        with tempfile.TemporaryDirectory(prefix="quantdesk-evaluation-") as folder:
            return Evaluator(sandbox).development(challenge, data, split, code, Path(folder),
                                                  descriptions=descriptions, seed=seed, wall_seconds=wall_seconds)
    finally:
        sandbox.kill_all()


class DaskBackend:
    name = "dask"

    def __init__(self, address: str | None, limits: Limits, hidden: tuple[Path, ...]) -> None:
        self.address = address
        self.limits = limits
        self.hidden = tuple(str(p) for p in hidden)
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                # distributed ships no type hints; it is imported only when this backend is chosen
                distributed: Any = importlib.import_module("distributed")
                if self.address:
                    self._client = distributed.Client(self.address, timeout=30, set_as_default=False)
                else:
                    self._cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                                             dashboard_address=":0", silence_logs=logging.WARNING)
                    self._client = distributed.Client(self._cluster, set_as_default=False)
            return self._client

    def development(self, challenge: Challenge, data: MarketData, split: Split, code: str, workdir: Path, *,
                    descriptions: dict[str, dict[str, str]] | None, seed: int, wall_seconds: float | None,
                    owner: str, cancelled: Cancelled) -> Evaluation:
        client = self._connect()
        future = client.submit(evaluate_on_worker, challenge, data.head(split.dev_end), split, code, descriptions,
                               seed, wall_seconds, self.limits, self.hidden, pure=False,
                               key=f"{TASK_PREFIX}-{owner or 'agent'}-{uuid.uuid4().hex[:12]}")
        try:
            while True:
                try:
                    result: Evaluation = future.result(timeout=POLL_SECONDS)
                    return result
                except (TimeoutError, FutureTimeout):
                    if cancelled():
                        return Evaluation(ok=False, error="stopped while the evaluation ran on the cluster")
                except Exception as exc:  # noqa: BLE001 - a lost worker or an unpicklable result fails the iteration
                    return Evaluation(ok=False, error=f"the Dask cluster could not evaluate: {type(exc).__name__}: "
                                                      f"{str(exc)[:300]}")
        finally:
            if not future.done():
                future.cancel()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None


def make_backend(name: str, evaluator: Evaluator, address: str | None, limits: Limits,
                 hidden: tuple[Path, ...]) -> EvaluationBackend:
    if name == "dask":
        return DaskBackend(address, limits, hidden)
    return ProcessBackend(evaluator)
