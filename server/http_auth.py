"""Authentication of REST requests, shared by every derived route and system route."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from quantdesk.server.auth import Authenticator, credential_from_headers
from quantdesk.server.context import Principal
from quantdesk.server.errors import Forbidden
from quantdesk.server.http_front import scope_headers
from quantdesk.server.settings import is_loopback_host


def request_credential(request: HTTPConnection, cookie: str | None = None, query: str | None = None) -> str | None:
    """The key a request carries: headers first, then the profile's cookie, then its query parameter."""
    found = credential_from_headers(scope_headers(request.scope))
    if found is None and cookie is not None:
        found = request.cookies.get(cookie) or None
    if found is None and query is not None:
        found = request.query_params.get(query) or None
    return found


def authenticate_request(request: HTTPConnection, authenticator: Authenticator, scopes: tuple[str, ...] = (),
                         credential: str | None = None) -> Principal:
    """The caller of this request, who must hold every scope in `scopes` (raises Unauthorized / Forbidden)."""
    loopback = request.client is not None and is_loopback_host(request.client.host)
    found = credential if credential is not None else credential_from_headers(scope_headers(request.scope))
    principal = authenticator.authenticate(found, loopback)
    for scope in scopes:
        if not principal.allows(scope):
            raise Forbidden(f"the credential lacks the '{scope}' scope this route needs", missing_scope=scope)
    return principal
