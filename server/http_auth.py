"""Authentication of REST requests, shared by every derived route and system route."""

from __future__ import annotations

from starlette.requests import Request

from quantdesk.server.auth import Authenticator, credential_from_headers
from quantdesk.server.context import Principal
from quantdesk.server.errors import Forbidden
from quantdesk.server.http_front import scope_headers
from quantdesk.server.settings import is_loopback_host


def authenticate_request(request: Request, authenticator: Authenticator, scopes: tuple[str, ...] = ()) -> Principal:
    """The caller of this request, who must hold every scope in `scopes` (raises Unauthorized / Forbidden)."""
    loopback = request.client is not None and is_loopback_host(request.client.host)
    principal = authenticator.authenticate(credential_from_headers(scope_headers(request.scope)), loopback)
    for scope in scopes:
        if not principal.allows(scope):
            raise Forbidden(f"the credential lacks the '{scope}' scope this route needs", missing_scope=scope)
    return principal
