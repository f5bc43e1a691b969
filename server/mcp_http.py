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

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope, Send

from quantdesk.server.auth import Authenticator, credential_from_headers
from quantdesk.server.context import Principal
from quantdesk.server.errors import Forbidden, Unauthorized
from quantdesk.server.http_front import scope_headers, send_json
from quantdesk.server.mcp_binding import PRINCIPAL_STATE_KEY, McpBinding
from quantdesk.server.settings import Settings, is_loopback_host

MCP_DOOR_SCOPE = "mcp"
WATCH_DISCONNECT_AFTER_SECONDS = 0.05
BATCH_VERSION = "2025-03-26"  # the only revision with JSON-RPC batches; the SDK itself rejects arrays


class McpHttpDoor:
    """The ASGI app mounted at `/mcp`."""

    required_scope = MCP_DOOR_SCOPE

    def __init__(self, binding: McpBinding, authenticator: Authenticator, settings: Settings) -> None:
        server = binding.build()
        self.binding = binding
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
        headers = scope_headers(scope)
        client = scope.get("client")
        loopback = client is not None and is_loopback_host(client[0])
        try:
            principal = self.authenticator.authenticate(credential_from_headers(headers), loopback)
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
            return
        if scope["method"] == "POST":
            body = await _read_body(receive)
            if body.lstrip().startswith(b"["):
                await self._batch(scope, body, headers, receive, send)
                return
            call = self._plain_call(body, headers)
            if call is not None:
                await self._answer_plain_call(call, principal, receive, send)
                return
            receive = _replay(body, receive)
        await self.json_manager.handle_request(scope, receive, send)

    def _plain_call(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        """The message, when it is a single handshake-era tools/call the binding can answer directly."""
        version = headers.get("mcp-protocol-version")
        accept = headers.get("accept", "")
        if (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS) or not (
                "application/json" in accept or "*/*" in accept) or not headers.get(
                "content-type", "").startswith("application/json"):
            return None
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or message.get("method") != "tools/call":
            return None
        request_id, params = message.get("id"), message.get("params")
        if isinstance(request_id, bool) or not isinstance(request_id, int | str) or not isinstance(params, dict):
            return None
        name, arguments = params.get("name"), params.get("arguments")
        if (not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict))
                or not set(params) <= {"name", "arguments", "_meta"} or not self.binding.serves_directly(name)):
            return None
        return message

    async def _answer_plain_call(self, message: dict[str, Any], principal: Principal, receive: Receive,
                                 send: Send) -> None:
        params = message["params"]
        answer: dict[str, Any] | None = None
        loop = asyncio.get_running_loop()
        watcher: asyncio.Task[None] | None = None
        with anyio.CancelScope() as scope:
            async def stop_on_disconnect() -> None:
                # A client that hangs up cancels the call, as closing the SDK's response would.
                while (await receive())["type"] != "http.disconnect":
                    pass
                scope.cancel()

            def watch() -> None:
                nonlocal watcher
                watcher = loop.create_task(stop_on_disconnect())

            # Most calls end within milliseconds; watching the connection only once a call is slow
            # keeps a quick call free of a watcher task (tens of microseconds, bench/mcp_overhead.py).
            timer = loop.call_later(WATCH_DISCONNECT_AFTER_SECONDS, watch)
            try:
                answer = await self.binding.call_plain(params["name"], params.get("arguments") or {}, principal)
            finally:
                timer.cancel()
                if watcher is not None:
                    watcher.cancel()
        if answer is not None:
            await send_json(send, 200, {"jsonrpc": "2.0", "id": message["id"], **answer})

    async def _batch(self, scope: Scope, body: bytes, headers: dict[str, str], receive: Receive,
                     send: Send) -> None:
        """2025-03-26 batches: each element runs as its own stateless request; answers come back as one array."""
        version = headers.get("mcp-protocol-version", BATCH_VERSION)
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            await send_json(send, 400, _rpc_error(None, -32700, f"Parse error: {exc}"))
            return
        if version != BATCH_VERSION:
            await send_json(send, 400, _rpc_error(None, -32600, f"JSON-RPC batches are not part of MCP {version}"))
            return
        if not items:
            await send_json(send, 400, _rpc_error(None, -32600, "an empty batch is not a valid request"))
            return
        answers = []
        for item in items:
            status, payload = await _capture(self.json_manager.handle_request, scope, orjson.dumps(item), receive)
            if payload:
                answers.append(orjson.loads(payload))
            elif status >= 400:
                answers.append(_rpc_error(item.get("id") if isinstance(item, dict) else None, -32600,
                                          f"request refused with HTTP {status}"))
        if not answers:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send_json(send, 200, answers)


def _rpc_error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The already-read body once, then the real channel (which reports the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _capture(app: Any, scope: Scope, body: bytes, receive: Receive) -> tuple[int, bytes]:
    status = 500
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await app({**scope, "headers": headers}, _replay(body, receive), send)
    return status, b"".join(chunks)
