"""WebSocket routes derived from streaming tools: each event of the tool, reshaped into a legacy message.

A `WsRow` names a streaming tool (the event bus's `stream_events`, say) and how its events become
the legacy API's messages; the door authenticates the client (a first `{"type": "auth", "token":
...}` frame, or the profile's query parameter and the headers), opens the stream with the
caller's scopes, and forwards until either side ends. A client that goes away closes the tool's
generator at once, which unsubscribes it from the bus.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from quantdesk.server.context import CallContext
from quantdesk.server.errors import Forbidden, QuantdeskError
from quantdesk.server.http_auth import authenticate_request, request_credential
from quantdesk.server.http_front import matches_pattern
from quantdesk.server.http_state import HttpState
from quantdesk.server.logs import new_request_id
from quantdesk.server.rest_rows import Profile, WsRow

logger = logging.getLogger("quantdesk.ws")
AUTH_TIMEOUT_SECONDS = 10.0
POLICY_VIOLATION = 1008
RENDERED_CACHE = 8_192
"""Messages kept per route by bus sequence number, so fifty subscribers share one rendering of an event."""


async def _refuse(websocket: WebSocket, message: str) -> None:
    await websocket.send_json({"type": "error", "error": message})
    await websocket.close(code=POLICY_VIOLATION, reason=message[:120])


async def _first_frame_token(websocket: WebSocket) -> str | None:
    try:
        with anyio.fail_after(AUTH_TIMEOUT_SECONDS):
            first: Any = await websocket.receive_json()
    except (TimeoutError, ValueError, KeyError):
        return None
    if isinstance(first, dict) and first.get("type") == "auth" and isinstance(first.get("token"), str):
        return str(first["token"])
    return None


def derive_websocket(row: WsRow, profile: Profile, state: HttpState) -> WebSocketRoute:
    entry = state.registry.get_tool(row.tool)
    if not entry.streaming:
        raise ValueError(f"{profile.name} WebSocket {row.path}: {row.tool} is not a streaming tool")
    origins = state.settings.origin_allowlist()
    # Only a reshaped message is shared: the raw event carries the subscriber's own `dropped_so_far`.
    rendered: dict[int, str | None] | None = {} if row.message is not None else None

    def render(event: Any) -> str | None:
        seq = getattr(event, "seq", None)
        if rendered is not None and seq is not None and seq in rendered:
            return rendered[seq]
        data = event.model_dump(mode="json", exclude_none=True)
        message = row.message(data) if row.message is not None else data
        text = None if message is None else orjson.dumps(message).decode()
        if rendered is not None and seq is not None:
            if len(rendered) >= RENDERED_CACHE:
                del rendered[next(iter(rendered))]
            rendered[seq] = text
        return text

    async def endpoint(websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        if origin and not matches_pattern(origin, origins):
            # Cross-site WebSocket hijacking: a page elsewhere must not ride the user's cookie.
            await websocket.close(code=POLICY_VIOLATION)
            return
        await websocket.accept()
        request_id = new_request_id()
        credentials = profile.credentials
        if row.auth == "first_frame":
            key = await _first_frame_token(websocket)
            if key is None:
                await _refuse(websocket, 'authenticate first: send {"type": "auth", "token": "<token>"}')
                return
        else:
            key = request_credential(websocket, credentials.cookie, credentials.query)
        try:
            principal = authenticate_request(websocket, state.authenticator, row.scopes, key)
            if not principal.allows(entry.scope):
                raise Forbidden(f"the credential lacks the '{entry.scope}' scope", missing_scope=entry.scope)
            ctx = CallContext(principal, state.services, request_id, door=f"ws-{profile.name}")
            events = await state.registry.open_stream(row.tool, dict(row.arguments), ctx)
        except QuantdeskError as exc:
            await _refuse(websocket, exc.message)
            return
        state.metrics.active_streams.inc()
        try:
            async with anyio.create_task_group() as group:
                async def watch_client() -> None:
                    try:
                        while True:
                            await websocket.receive_text()
                    except (WebSocketDisconnect, RuntimeError):
                        group.cancel_scope.cancel()

                group.start_soon(watch_client)
                async for event in events:
                    text = render(event)
                    if text is not None:
                        await websocket.send_text(text)
                group.cancel_scope.cancel()
            await websocket.close()
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client left: nothing to tell it
        except Exception:
            logger.exception("websocket stream failed", extra={"request_id": request_id, "route": row.path})
            await _refuse(websocket, f"internal error (request id {request_id})")
        finally:
            state.metrics.active_streams.dec()
            await events.aclose()  # type: ignore[attr-defined]

    return WebSocketRoute(row.path, endpoint)


def derive_websockets(profile: Profile, state: HttpState) -> list[WebSocketRoute]:
    return [derive_websocket(row, profile, state) for row in profile.websockets]
