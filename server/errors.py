"""The typed errors that domain code raises and every door maps once.

    QuantdeskError
    ├── InvalidArgument   (ValueError)      a caller's input is wrong; carries every problem with its JSON path
    ├── NotFound          (LookupError)     a named thing does not exist (a tool, a cache key, an artifact)
    ├── Conflict          (RuntimeError)    the request clashes with current state
    ├── Unauthorized      (PermissionError) no credential, or one that is not known
    ├── Forbidden         (PermissionError) a known credential without the scope it needs
    ├── RateLimited       (RuntimeError)    too many requests; retry after `retry_after_seconds`
    ├── PayloadTooLarge   (ValueError)      a request body over the documented limit
    ├── Unavailable       (RuntimeError)    a dependency or resource is not available now
    └── InternalError     (RuntimeError)    an unexpected fault, logged with its request id

Messages are written for the caller: they never carry secrets or stack traces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a JSON path such as `$.config.tick_size`) and why."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def parts(self) -> list[str | int]:
        """`$.config.levels[2]` -> `["config", "levels", 2]`."""
        return [int(index) if index else name for name, index in _PATH_PART.findall(self.path)]


class QuantdeskError(Exception):
    """Root of every error a door knows how to answer."""

    kind: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(QuantdeskError, ValueError):
    kind = "invalid_argument"

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems: list[Problem] = problems or []

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> InvalidArgument:
        text = "; ".join(f"{p.path}: {p.message}" for p in problems)
        return cls(f"invalid arguments: {text}", problems)


class NotFound(QuantdeskError, LookupError):
    kind = "not_found"


class Conflict(QuantdeskError, RuntimeError):
    kind = "conflict"


class Unauthorized(QuantdeskError, PermissionError):
    kind = "unauthorized"


class Forbidden(QuantdeskError, PermissionError):
    kind = "forbidden"

    def __init__(self, message: str, missing_scope: str | None = None) -> None:
        super().__init__(message)
        self.missing_scope = missing_scope


class RateLimited(QuantdeskError, RuntimeError):
    kind = "rate_limited"

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PayloadTooLarge(QuantdeskError, ValueError):
    kind = "payload_too_large"


class Unavailable(QuantdeskError, RuntimeError):
    kind = "unavailable"


class InternalError(QuantdeskError, RuntimeError):
    """An unexpected fault, already logged with its request id; the message never carries the cause."""

    kind = "internal"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"internal error (request id {request_id})")
        self.request_id = request_id
