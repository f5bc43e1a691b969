"""MCP over Streamable HTTP at exactly `/mcp`: authentication, then one of two SDK session managers.

Two managers serve one SDK `Server`, chosen per request:
- a client that accepts `text/event-stream` (every MCP SDK client, the conformance suite, the
  Inspector) gets the stateful SSE manager: sessions, progress notifications, server-to-client
  requests, cancellation by closing the stream;
- a client that does not (curl with `Content-Type: application/json`, as in the Aleatoric
  document) gets the stateless JSON manager: one JSON-RPC object per POST, no initialize needed.
The 2026-07-28 per-request era is stateless in both, and the SDK serves it unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp.server import Server
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from quantdesk.server.auth import Authenticator, credential_from_headers
from quantdesk.server.errors import Forbidden, Unauthorized
from quantdesk.server.http_front import send_json
from quantdesk.server.mcp_binding import PRINCIPAL_STATE_KEY
from quantdesk.server.settings import Settings, is_loopback_host

MCP_DOOR_SCOPE = "mcp"


class McpHttpDoor:
    """The ASGI app mounted at `/mcp`."""

    required_scope = MCP_DOOR_SCOPE

    def __init__(self, server: Server[Any], authenticator: Authenticator, settings: Settings) -> None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=settings.host_allowlist(),
            allowed_origins=settings.origin_allowlist(),
        )
        self.authenticator = authenticator
        self.json_manager = StreamableHTTPSessionManager(
            app=server, stateless=True, json_response=True, security_settings=security,
            max_request_body_size=settings.max_body_bytes,
        )
        self.sse_manager = StreamableHTTPSessionManager(
            app=server, stateless=False, json_response=False, security_settings=security,
            max_request_body_size=settings.max_body_bytes,
        )

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self.json_manager.run(), self.sse_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        client = scope.get("client")
        loopback = client is not None and is_loopback_host(client[0])
        try:
            principal = self.authenticator.authenticate(credential_from_headers(dict(headers)), loopback)
            if not principal.allows(MCP_DOOR_SCOPE):
                raise Forbidden(f"the credential lacks the '{MCP_DOOR_SCOPE}' scope that the MCP endpoint needs",
                                missing_scope=MCP_DOOR_SCOPE)
        except (Unauthorized, Forbidden) as exc:
            status = 401 if isinstance(exc, Unauthorized) else 403
            extra = [(b"www-authenticate", b'Bearer realm="quantdesk"')] if status == 401 else []
            await send_json(send, status, {"jsonrpc": "2.0", "id": None,
                                           "error": {"code": -32001, "message": exc.message}}, extra)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        # The SDK binds a stateful session to the credential that opened it: another key gets 404.
        identity = principal.key_id or "local"
        token = AccessToken(token=identity, client_id=identity, scopes=sorted(principal.scopes))
        scope["user"] = AuthenticatedUser(token)
        if "mcp-session-id" in headers or "text/event-stream" in headers.get("accept", ""):
            await self.sse_manager.handle_request(scope, receive, send)
        else:
            await self.json_manager.handle_request(scope, receive, send)
