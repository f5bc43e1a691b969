"""What every HTTP route needs from the application, in one object kept on `app.state.quantdesk`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from quantdesk.server.auth import Authenticator
from quantdesk.server.context import Services
from quantdesk.server.errors import QuantdeskError, RateLimited, Unauthorized
from quantdesk.server.metrics import Metrics
from quantdesk.server.registry import ToolRegistry
from quantdesk.server.settings import Settings

STATUS_BY_KIND: dict[str, int] = {
    "invalid_argument": 422,
    "not_found": 404,
    "conflict": 409,
    "unauthorized": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "payload_too_large": 413,
    "unavailable": 503,
    "internal": 500,
}


@dataclass(frozen=True, slots=True)
class HttpState:
    settings: Settings
    registry: ToolRegistry
    services: Services
    authenticator: Authenticator
    metrics: Metrics


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_headers(exc: QuantdeskError) -> dict[str, str]:
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="quantdesk"'}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(max(1, round(exc.retry_after_seconds)))}
    return {}
