"""MCP over Streamable HTTP at exactly `/mcp`: authentication, then the SDK's session managers under one rule.

The rule (the same whatever the Accept header says):
- a session exists only when a client asks for one: an `initialize` whose Accept lists
  `text/event-stream` (every MCP SDK client, the conformance suite, the Inspector) opens a
  stateful session, with progress notifications, server-to-client requests and cancellation by
  closing the stream; a request carrying `Mcp-Session-Id` is served in that session (404 when
  it is unknown), answered as JSON when its Accept has no `text/event-stream`;
- everything else is stateless and never asked for a session id: curl with
  `Content-Type: application/json` (the Aleatoric document) gets one JSON-RPC object per POST,
  with no initialize needed; a client that accepts SSE gets its progress on the POST's stream;
- an error reply never carries a session id, and GET or DELETE without a session is 405.
2025-03-26 JSON-RPC batches are accepted in and outside a session. The 2026-07-28 per-request
era is stateless, and the SDK serves it unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import mcp.types as types
import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from quantdesk.server.auth import Authenticator, credential_from_headers
from quantdesk.server.context import Principal
from quantdesk.server.disconnect import cancel_on_disconnect
from quantdesk.server.errors import Forbidden, Unauthorized
from quantdesk.server.http_front import scope_headers, send_json
from quantdesk.server.mcp_binding import PRINCIPAL_STATE_KEY, McpBinding
from quantdesk.server.settings import Settings, is_loopback_host

MCP_DOOR_SCOPE = "mcp"
BATCH_VERSION = "2025-03-26"  # the only revision with JSON-RPC batches; the SDK itself rejects arrays
SUPPORTED_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
UNSUPPORTED_VERSION = -32022  # 2026-07-28's code; a handshake-era client reads the 400 and the message
MODERN_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
SSE_ACCEPT = (b"accept", b"application/json, text/event-stream")


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
        self.stream_manager = StreamableHTTPSessionManager(
            app=server, stateless=True, json_response=False, security_settings=security,
            max_request_body_size=settings.max_body_bytes,
        )
        self.session_manager = StreamableHTTPSessionManager(
            app=server, stateless=False, json_response=False, security_settings=security,
            max_request_body_size=settings.max_body_bytes,
        )

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self.json_manager.run(), self.stream_manager.run(), self.session_manager.run():
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
            await send_json(send, status, _rpc_error(None, -32001, exc.message), extra)
            return
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in SUPPORTED_VERSIONS and scope["method"] == "POST":
            body = await _read_body(receive)
            message = _parse(body)
            if not _is_modern(message):
                # A handshake-era client with a bad header: the SDK's answer would be about params._meta.
                request_id = message.get("id") if isinstance(message, dict) else None
                await send_json(send, 400, _rpc_error(
                    request_id, UNSUPPORTED_VERSION, f"Unsupported MCP-Protocol-Version {version[:40]!r}: this "
                    f"server supports {', '.join(SUPPORTED_VERSIONS)}",
                    {"supported": list(SUPPORTED_VERSIONS), "requested": version[:40]}))
                return
            receive = _replay(body, receive)
        scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        # The SDK binds a stateful session to the credential that opened it: another key gets 404.
        identity = principal.key_id or "local"
        token = AccessToken(token=identity, client_id=identity, scopes=sorted(principal.scopes))
        scope["user"] = AuthenticatedUser(token)
        streams = "text/event-stream" in headers.get("accept", "")
        if "mcp-session-id" in headers and version not in MODERN_PROTOCOL_VERSIONS:
            await self._in_session(scope, headers, streams, receive, send)
            return
        if scope["method"] != "POST":
            await send_json(send, 405, _rpc_error(None, -32600, "GET and DELETE need an Mcp-Session-Id: open a "
                                                  "session with initialize (Accept: text/event-stream) first"),
                            [(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        if body.lstrip().startswith(b"["):
            await self._batch(self.json_manager, scope, body, headers, receive, send)
            return
        if streams and version not in MODERN_PROTOCOL_VERSIONS and _opens_session(body):
            await self.session_manager.handle_request(scope, _replay(body, receive), _without_session_on_error(send))
            return
        if not streams:
            call = self._plain_call(body, headers)
            if call is not None:
                await self._answer_plain_call(call, principal, receive, send)
                return
        manager = self.stream_manager if streams else self.json_manager
        await manager.handle_request(scope, _replay(body, receive), send)

    async def _in_session(self, scope: Scope, headers: dict[str, str], streams: bool, receive: Receive,
                          send: Send) -> None:
        """A request in a session: the session's own transport serves it, as JSON when the client asks for JSON."""
        if scope["method"] != "POST":
            await self.session_manager.handle_request(scope, receive, send)
            return
        body = await _read_body(receive)
        if body.lstrip().startswith(b"["):
            await self._batch(self.session_manager, scope, body, headers, receive, send)
        elif streams:
            await self.session_manager.handle_request(scope, _replay(body, receive), send)
        else:
            status, payload = await _capture(self.session_manager.handle_request, scope, body, receive)
            await _send_captured(send, status, payload)

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
        # A client that hangs up cancels the call, as closing the SDK's response would.
        answer = await cancel_on_disconnect(
            receive, self.binding.call_plain(params["name"], params.get("arguments") or {}, principal))
        if answer is not None:
            await send_json(send, 200, {"jsonrpc": "2.0", "id": message["id"], **answer})

    async def _batch(self, manager: StreamableHTTPSessionManager, scope: Scope, body: bytes,
                     headers: dict[str, str], receive: Receive, send: Send) -> None:
        """2025-03-26 batches: each element is served on its own; the answers come back as one JSON array."""
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
            status, payload = await _capture(manager.handle_request, scope, orjson.dumps(item), receive)
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


def _rpc_error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _opens_session(body: bytes) -> bool:
    """A well-formed initialize: only that may create a session (a malformed one is answered statelessly)."""
    message = _parse(body)
    if not (isinstance(message, dict) and message.get("method") == "initialize" and "id" in message):
        return False
    try:
        types.InitializeRequestParams.model_validate(message.get("params"))
    except ValidationError:
        return False
    return True


def _is_modern(message: Any) -> bool:
    """A 2026-07-28 request names its version in `params._meta`; the SDK answers those itself."""
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and MODERN_VERSION_KEY in meta


def _without_session_on_error(send: Send) -> Send:
    """An opening request that fails creates no session, so its reply must not name one."""

    async def strip(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            message = {**message, "headers": [(k, v) for k, v in message.get("headers", [])
                                              if k.lower() != b"mcp-session-id"]}
        await send(message)

    return strip


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
    """Serve one message and return its HTTP status and JSON-RPC answer, taken out of an SSE stream if need be.

    Session transports answer on an SSE stream; a JSON-only client and a batch need the one
    response message, which is the last `data:` event carrying an id (notifications before it
    are dropped, as the SDK's own JSON mode drops them).
    """
    status = 500
    chunks: list[bytes] = []
    event_stream = False

    async def send(message: Message) -> None:
        nonlocal status, event_stream
        if message["type"] == "http.response.start":
            status = message["status"]
            event_stream = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                               for k, v in message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"accept")]
    headers += [(b"content-length", str(len(body)).encode()), SSE_ACCEPT]
    await app({**scope, "headers": headers}, _replay(body, receive), send)
    payload = b"".join(chunks)
    if event_stream:
        payload = _last_response(payload)
    return status, payload


def _last_response(stream: bytes) -> bytes:
    answer = b""
    for event in stream.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if data.startswith(b"{"):
            try:
                message = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(message, dict) and "id" in message and ("result" in message or "error" in message):
                answer = data
    return answer


async def _send_captured(send: Send, status: int, payload: bytes) -> None:
    if not payload:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
