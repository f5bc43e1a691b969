"""The vocabulary of route tables: a `Row` maps one HTTP route onto one tool; a `Profile` is one legacy API.

The tables themselves live in `compat_http/` and import this module; the server finds them by
discovery, the way it finds tools, so no module of `server/` imports `compat_http`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from quantdesk.server.errors import InvalidArgument, Problem, QuantdeskError
from quantdesk.server.registry import CallOutcome, ToolRegistry

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ResponseMapper = Callable[[CallOutcome], Any]
"""Reshapes a tool's outcome into the legacy body; may return a Starlette Response (files, images)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One route: `method path -> tool`, and how the request becomes the tool's arguments.

    Path parameters become arguments of the same name. Query parameters become arguments
    (coerced by the tool's schema). A JSON body becomes the arguments, or, with `body_arg`, the
    value of that one argument. `fixed` adds constant arguments; `request` may reshape the
    gathered arguments of a legacy body, `response` the result. A `file` row answers with the file
    the tool's result points at (streamed, with HTTP Range support). A non-streaming tool answers
    with SSE (its progress messages as `data:` lines, then an `event: result`) when the client
    accepts `text/event-stream` or when the argument named by `sse_when` is true. The tool's own scope always
    applies; `scopes` adds the scopes the legacy API required for the route. `public` rows need
    no credential (discovery and health only).
    """

    method: Method
    path: str
    tool: str
    body_arg: str | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    scopes: tuple[str, ...] = ()
    public: bool = False
    request: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    response: ResponseMapper | None = None
    response_schema: dict[str, Any] | None = None
    extra_properties: Mapping[str, Any] = field(default_factory=dict)
    """Fields `response` adds to the tool's output, documented beside the output schema's own."""
    status_code: int = 200
    stream: bool = False
    sse_when: str | None = None
    file: bool = False
    summary: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Arguments the legacy API let clients leave out, with the value used then (documented as optional)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers passed as arguments: `{"If-None-Match": "if_none_match"}`."""
    etag: str | None = None
    """The result field holding the entity tag: sent as `ETag`; a result whose `not_modified` is true answers 304."""
    text: str | None = None
    """The result field answered alone as `text/plain` (source code, logs), instead of the JSON result."""
    params: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    """The legacy API's own parameters that `request` turns into arguments, documented with these schemas (they
    replace the tool's property of the same name); `None` leaves a tool argument out of the documentation."""
    params_required: tuple[str, ...] = ()
    """Which of `params` the legacy API required."""


def result_field(name: str) -> ResponseMapper:
    """A response mapper that answers one field of the tool's result (legacy APIs that return a bare list)."""

    def pick(outcome: CallOutcome) -> Any:
        return outcome.structured[name]

    return pick


def iso_utc(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC with a `Z`, as legacy APIs print times."""
    if ms is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def iso_to_ms(value: Any, field: str) -> int:
    """A legacy API's ISO 8601 time parameter as milliseconds (UTC when it has no offset); refused by name."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidArgument.from_problems([Problem(f"$.{field}", f"{str(value)[:40]!r} is not an ISO 8601 time, "
                                                                   "e.g. 2025-04-22T09:00:00Z")]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def fastapi_error_body(status: int, exc: QuantdeskError, request_id: str) -> dict[str, Any]:
    """FastAPI's shape: `{"detail": ...}`; validation problems as a list of `{loc, msg, type}`."""
    from quantdesk.server.errors import InvalidArgument

    if isinstance(exc, InvalidArgument) and exc.problems:
        detail: Any = [{"loc": problem.parts(), "msg": problem.message, "type": exc.kind}
                       for problem in exc.problems]
    else:
        detail = exc.message
    return {"detail": detail, "request_id": request_id}


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where a profile's clients may put their key, besides `X-API-Key` and `Authorization: Bearer`."""

    cookie: str | None = None
    query: str | None = None
    remember_query_in_cookie: bool = False
    """A key first given as `?query=` is set as the cookie (HttpOnly, SameSite=Strict), as browsers expect."""


@dataclass(frozen=True, slots=True)
class WsRow:
    """A WebSocket route: the events of a streaming tool, each reshaped into the legacy message (or skipped).

    `auth`: `first_frame` waits for `{"type": "auth", "token": ...}` as the first message;
    `query` reads the key from the profile's query parameter (`/ws?token=`) or the headers. `message` must
    depend on the event alone: its rendering is shared by every subscriber of the route.
    """

    path: str
    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    message: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    auth: Literal["first_frame", "query"] = "query"
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    """One REST surface: its route table and the error body its clients expect."""

    name: str
    title: str
    rows: tuple[Row, ...] | Callable[[ToolRegistry], tuple[Row, ...]]
    error_body: Callable[[int, QuantdeskError, str], dict[str, Any]] = fastapi_error_body
    metrics_path: str | None = None
    """Where the profile's own listener serves the Prometheus exposition (public, as the legacy API had it)."""
    credentials: Credentials = field(default_factory=Credentials)
    status_by_kind: Mapping[str, int] = field(default_factory=dict)
    """Overrides of the HTTP status per error kind (MANTIS answers a bad argument with 400, not 422)."""
    rate_limit_per_minute: int = 0
    """Requests a client address may make per minute on this profile's routes (0: no limit)."""
    rate_limit_env: str | None = None
    """The environment variable that overrides `rate_limit_per_minute` (0 disables)."""
    token_path: str | None = None
    """Where the OAuth2 password flow issues JWT bearer tokens (`POST`, form-encoded), if the API had one."""
    websockets: tuple[WsRow, ...] = ()

    def rows_for(self, registry: ToolRegistry) -> tuple[Row, ...]:
        return self.rows(registry) if callable(self.rows) else self.rows


def discover_profiles(package: str = "quantdesk.compat_http") -> list[Profile]:
    """Every `PROFILE` defined by a module of the package, in module-name order."""
    root = importlib.import_module(package)
    profiles = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        profile = getattr(importlib.import_module(f"{package}.{info.name}"), "PROFILE", None)
        if isinstance(profile, Profile):
            profiles.append(profile)
    return profiles
