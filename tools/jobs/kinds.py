"""Job kinds: how a domain's long work runs, and how it resumes after a restart.

A domain declares a kind next to its tools, at import time, as it declares its tools:

```
register_kind(JobKind("generate_dataset", run=run_generation, resume=run_generation, id_prefix="qd_gen"))
```

`run(job)` does the work from the start and returns the job's result (JSON-ready); `resume(job)`
continues a job that a stopped server left running, from `job.checkpoint` (what the kind saved with
`job.save_checkpoint`), or raises `CannotResume` with the reason, which the job's record keeps. A
kind without `resume` is marked failed after a restart. Both run as tasks of the job service's own
event loop, never of a request: cancellation arrives as the usual cancellation of that task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class ServiceLookup(Protocol):
    """The server's services, as a job sees them (`services.get(CacheService)`)."""

    def get(self, kind: type[T]) -> T: ...


class CannotResume(Exception):
    """A job cannot continue after a restart; the message says why and becomes the job's error."""


class JobContext(Protocol):
    """What a kind's `run` and `resume` receive."""

    job_id: str
    kind: str
    arguments: dict[str, Any]
    checkpoint: dict[str, Any] | None
    """What the kind last saved, when the job is being resumed."""
    resumed: bool
    services: ServiceLookup

    @property
    def workdir(self) -> Path:
        """A folder of the job's own (created on first use) that survives a restart and goes when the job ends."""
        ...

    def report(self, done: float, total: float, message: str | None = None) -> None:
        """Progress; callable from any thread. `total` stays the same for the whole job."""
        ...

    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Where a resumed job should continue from; callable from any thread."""
        ...


JobFunction = Callable[[JobContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    run: JobFunction
    resume: JobFunction | None = None
    id_prefix: str = "qd_job"
    """Job ids are `<id_prefix>_<16 hex digits>`."""
    max_running: int = 2
    """Jobs of this kind running at once; the others wait, `queued`."""


_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> None:
    """Declare a job kind (once per name: a second declaration of a name is a mistake and fails)."""
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"job kind {kind.name!r} is declared twice")
    _KINDS[kind.name] = kind


def registered_kinds() -> dict[str, JobKind]:
    return dict(_KINDS)
