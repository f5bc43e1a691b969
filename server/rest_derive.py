"""The one function that turns route-table rows into FastAPI routes.

Every derived route runs the same generic endpoint: authenticate, gather path/query/body into
the tool's arguments, call the registry (which validates against the tool's schema, checks
its scope and runs the handler), and render the result or the error in the profile's shape.
The OpenAPI entry comes from the tool's input and output schemas.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio
import anyio.to_thread
import orjson
from pydantic import BaseModel
from sse_starlette import EventSourceResponse
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from quantdesk.server.context import CallContext, Principal, ProgressFn
from quantdesk.server.disconnect import cancel_on_disconnect
from quantdesk.server.errors import InternalError, InvalidArgument, Problem, QuantdeskError, Unavailable
from quantdesk.server.http_auth import authenticate_request, request_credential
from quantdesk.server.http_state import STATUS_BY_KIND, HttpState, error_headers, json_response
from quantdesk.server.logs import new_request_id
from quantdesk.server.openapi import inline_refs
from quantdesk.server.rate_limit import ClientRateLimit
from quantdesk.server.registry import CallOutcome, FileBlock, ToolEntry
from quantdesk.server.rest_rows import Profile, Row
from quantdesk.server.route_table import TableRoute

logger = logging.getLogger("quantdesk.rest")
_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?}")
_BODY_METHODS = ("POST", "PUT", "PATCH")


def _types(prop: dict[str, Any]) -> set[str]:
    if "type" in prop:
        t = prop["type"]
        return set(t) if isinstance(t, list) else {t}
    out: set[str] = set()
    for option in prop.get("anyOf", []) + prop.get("oneOf", []):
        out |= _types(option)
    return out


def coerce_query_value(values: list[str], prop: dict[str, Any] | None) -> Any:
    """A query string is text; give the validator the JSON type the tool's schema asks for."""
    types = _types(prop or {})
    if "array" in types:
        return [item for value in values for item in value.split(",") if item != ""]
    value = values[-1]
    if "null" in types and value == "null":
        return None
    if "boolean" in types and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if "integer" in types and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    if "number" in types:
        try:
            return float(value)
        except ValueError:
            return value
    if "object" in types:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _merge(args: dict[str, Any], extra: dict[str, Any], source: str) -> None:
    clash = sorted(set(args) & set(extra))
    if clash:
        raise InvalidArgument.from_problems([Problem(f"$.{name}", f"given twice (also in the {source})")
                                             for name in clash])
    args.update(extra)


async def gather_arguments(request: Request, row: Row, entry: ToolEntry, skip_query: str | None = None
                           ) -> dict[str, Any]:
    properties: dict[str, Any] = entry.input_schema.get("properties", {})
    args: dict[str, Any] = {}
    if row.method in _BODY_METHODS:
        raw = await request.body()
        if raw.strip(b" \t\r\n"):  # JSON's whitespace only: a form feed is not an empty body
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidArgument.from_problems(
                    [Problem("$", f"the request body is not valid JSON ({exc})")]) from None
            if row.body_arg is not None:
                args[row.body_arg] = body
            elif isinstance(body, dict):
                args.update(body)
            else:
                raise InvalidArgument.from_problems([Problem("$", "the request body must be a JSON object")])
    query: dict[str, Any] = {}
    for name in dict.fromkeys(request.query_params.keys()):
        if name != skip_query:  # the profile's credential parameter (?token=) is not an argument
            query[name] = coerce_query_value(request.query_params.getlist(name), properties.get(name))
    _merge(args, {arg: request.headers[header] for header, arg in row.headers.items() if header in request.headers},
           "headers")
    _merge(args, query, "query string")
    _merge(args, {k: coerce_query_value([v], properties.get(k)) for k, v in request.path_params.items()}, "path")
    _merge(args, dict(row.fixed), "route's fixed arguments")
    args = {**{k: v for k, v in row.defaults.items() if k not in args}, **args}
    return row.request(args) if row.request is not None else args


def _accepts_sse(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def _error_event(profile: Profile, exc: BaseException, request_id: str, route: str) -> dict[str, str]:
    """An error after the first byte: the status is gone, so the body says it as `event: error`."""
    if not isinstance(exc, QuantdeskError):
        logger.error("stream failed", exc_info=exc, extra={"request_id": request_id, "route": route})
        exc = InternalError(request_id)
    body = profile.error_body(error_status(profile, exc), exc, request_id)
    return {"event": "error", "data": orjson.dumps(body).decode()}


async def open_event_stream(events: AsyncIterator[BaseModel], profile: Profile, state: HttpState,
                            request_id: str, route: str) -> EventSourceResponse:
    """An SSE response for a tool's events, started only once the tool has produced its first event.

    Whatever a tool checks before its first event (an unknown cache key, an unknown preset) is
    raised here, before any byte is sent, so the client gets the error's real status. Later
    failures end the stream with an `event: error`. When the client goes away the tool's
    generator is closed at once, which releases its files and buffers.
    """
    try:
        first: BaseModel | None = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise

    async def messages() -> AsyncIterator[dict[str, str]]:
        state.metrics.active_streams.inc()
        try:
            if first is not None:
                yield {"data": orjson.dumps(first.model_dump(mode="json", exclude_none=True)).decode()}
                async for event in events:
                    yield {"data": orjson.dumps(event.model_dump(mode="json", exclude_none=True)).decode()}
        except Exception as exc:
            yield _error_event(profile, exc, request_id, route)
        finally:
            state.metrics.active_streams.dec()
            await events.aclose()  # type: ignore[attr-defined]

    return EventSourceResponse(messages(), headers={"X-Accel-Buffering": "no"})


def _progress_sse(profile: Profile, request_id: str, route: str,
                  call: Callable[[ProgressFn], Awaitable[CallOutcome]]) -> EventSourceResponse:
    """Run a call and stream its progress messages, then its result (or its error), as SSE."""
    send, receive = anyio.create_memory_object_stream[dict[str, str]](max_buffer_size=256)

    async def progress(done: float, total: float | None, message: str | None) -> None:
        data = message if message is not None else orjson.dumps({"progress": done, "total": total}).decode()
        await send.send({"event": "progress", "data": data})

    async def events() -> AsyncIterator[dict[str, str]]:
        async with anyio.create_task_group() as tg:
            async def run() -> None:
                async with send:
                    try:
                        outcome = await call(progress)
                        await send.send({"event": "result", "data": outcome.text()})
                    except Exception as exc:
                        await send.send(_error_event(profile, exc, request_id, route))

            tg.start_soon(run)
            async with receive:
                async for item in receive:
                    yield item

    return EventSourceResponse(events(), headers={"X-Accel-Buffering": "no"})


def error_status(profile: Profile, exc: QuantdeskError) -> int:
    return profile.status_by_kind.get(exc.kind) or STATUS_BY_KIND.get(exc.kind, 400)


def error_response(profile: Profile, exc: QuantdeskError, request_id: str) -> Response:
    status = error_status(profile, exc)
    return json_response(profile.error_body(status, exc, request_id), status, error_headers(exc))


def _render(row: Row, outcome: CallOutcome) -> Response:
    if row.etag is not None:
        tag = f'"{outcome.structured[row.etag]}"'
        if outcome.structured.get("not_modified"):
            return Response(status_code=304, headers={"ETag": tag})
        response = _render(replace(row, etag=None), outcome)
        response.headers["ETag"] = tag
        return response
    if row.text is not None:
        return PlainTextResponse(str(outcome.structured[row.text]), row.status_code)
    if row.file:
        block = next((b for b in outcome.content if isinstance(b, FileBlock)), None)
        if block is None:
            raise TypeError(f"{row.tool} returned no file for a file route")
        return FileResponse(block.path, media_type=block.mime_type, filename=block.name)
    if row.response is None:
        return json_response(outcome.structured, row.status_code)
    rendered = row.response(outcome)
    if isinstance(rendered, Response):
        return rendered
    response = json_response(rendered, row.status_code)
    source = outcome.structured.get("data_source") if isinstance(outcome.structured, dict) else None
    if isinstance(source, str):
        # A legacy shape may be a bare list or a name-to-number map with no room for the field: say it here.
        response.headers["X-Data-Source"] = source
    return response


def make_endpoint(row: Row, entry: ToolEntry, profile: Profile, state: HttpState,
                  limit: ClientRateLimit | None = None) -> Callable[[Request], Awaitable[Response]]:
    anonymous = Principal(None, "anonymous", frozenset({entry.scope}))
    credentials = profile.credentials

    async def endpoint(request: Request) -> Response:
        request_id = getattr(request.state, "request_id", None) or new_request_id()
        remember: str | None = None
        try:
            if limit is not None:
                limit.check(request.client.host if request.client else "-")
            if row.public:
                principal = anonymous
            else:
                key = request_credential(request, credentials.cookie, credentials.query)
                principal = authenticate_request(request, state.authenticator, row.scopes, key)
                if credentials.remember_query_in_cookie and key and credentials.cookie \
                        and request.cookies.get(credentials.cookie) != key:
                    remember = key
            args = await gather_arguments(request, row, entry, skip_query=credentials.query)
            ctx = CallContext(principal, state.services, request_id, door=f"rest-{profile.name}")
            if entry.streaming and (row.stream or _accepts_sse(request)):
                events = await state.registry.open_stream(row.tool, args, ctx)
                return await open_event_stream(events, profile, state, request_id, row.path)
            if not row.file and (_accepts_sse(request) or (row.sse_when and args.get(row.sse_when) is True)):
                # Checked before the stream opens, so bad arguments get their real status, not `200` and an error event.
                state.registry.authorize(entry, ctx)
                entry.parse_arguments(args)

                async def call(progress: ProgressFn) -> CallOutcome:
                    ctx.progress = progress
                    return await state.registry.call_tool(row.tool, args, ctx)

                return _progress_sse(profile, request_id, row.path, call)
            # A waiting call belongs to its request: a client that hangs up cancels it (jobs outlive requests).
            outcome = await cancel_on_disconnect(request.receive, state.registry.call_tool(row.tool, args, ctx))
            if outcome is None:
                logger.info("client went away; call cancelled", extra={"request_id": request_id, "route": row.path})
                return Response(status_code=499)
            response = _render(row, outcome)
            if remember is not None and credentials.cookie is not None:
                response.set_cookie(credentials.cookie, remember, httponly=True, samesite="strict",
                                    secure=request.url.scheme == "https")
            return response
        except QuantdeskError as exc:
            return error_response(profile, exc, request_id)
        except ClientDisconnect:
            logger.info("client went away", extra={"request_id": request_id, "route": row.path})
            return Response(status_code=499)  # nobody is listening; the front door drops it after its own 413
        except Exception:
            logger.exception("route failed", extra={"request_id": request_id, "route": row.path, "tool": row.tool})
            return error_response(profile, InternalError(request_id), request_id)

    return endpoint


_ERROR_RESPONSES: dict[str, Any] = {
    "404": {"description": "A named thing (an entry, an order, an agent, ...) does not exist."},
    "409": {"description": "The request clashes with the current state."},
    "413": {"description": "The request body is over the size limit."},
    "422": {"description": "Invalid arguments: every problem with its JSON path."},
    "429": {"description": "Too many requests or a concurrency cap; retry after `Retry-After` seconds."},
    "503": {"description": "A dependency or resource is unavailable now."},
}


def _error_responses(profile: Profile) -> dict[str, Any]:
    """The error statuses as the profile answers them (MANTIS says 400 where the others say 422)."""
    responses = dict(_ERROR_RESPONSES)
    for kind, status in profile.status_by_kind.items():
        default = str(STATUS_BY_KIND.get(kind, 400))
        if default in responses:
            responses[str(status)] = responses.pop(default)
    return responses


def openapi_operation(row: Row, entry: ToolEntry, path_params: list[str], profile: Profile) -> dict[str, Any]:
    schema = inline_refs(entry.input_schema)
    properties: dict[str, Any] = {name: {**prop, "default": row.defaults[name]} if name in row.defaults else prop
                                  for name, prop in schema.get("properties", {}).items()}
    for name, prop in row.params.items():
        if prop is None:
            properties.pop(name, None)
        else:
            properties[name] = prop
    required = (set(schema.get("required", [])) - set(row.defaults) - {n for n, p in row.params.items() if p is None}
                | set(row.params_required))
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": properties.get(p, {"type": "string"})}
        for p in path_params
    ]
    ok_schema = row.response_schema or inline_refs(entry.output_schema)
    if row.extra_properties:
        ok_schema = {**ok_schema, "properties": {**ok_schema.get("properties", {}), **row.extra_properties}}
    ok_content: dict[str, Any] = {"application/json": {"schema": ok_schema}}
    if row.text is not None:
        ok_content = {"text/plain": {"schema": {"type": "string"}}}
    if row.file:
        ok_content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    operation: dict[str, Any] = {
        "x-quantdesk-tool": entry.name,
        "x-quantdesk-scopes": sorted({*row.scopes, entry.scope}) if not row.public else [],
        "responses": {
            str(row.status_code): {"description": "The tool's result.", "content": ok_content},
            **_error_responses(profile),
        },
    }
    if not row.public:
        operation["security"] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
        operation["responses"]["401"] = {"description": "Missing or unknown API key."}
        operation["responses"]["403"] = {"description": "The key lacks a required scope."}
    rest = {k: v for k, v in properties.items() if k not in path_params and k not in row.fixed}
    if row.method in _BODY_METHODS:
        body_schema = (properties.get(row.body_arg, {}) if row.body_arg else
                       {**schema, "properties": rest, "required": sorted(required & set(rest))})
        operation["requestBody"] = {"required": bool(required & set(rest)),
                                    "content": {"application/json": {"schema": body_schema}}}
    else:
        params += [{"name": k, "in": "query", "required": k in required, "schema": v} for k, v in rest.items()]
    if entry.streaming:
        operation["responses"][str(row.status_code)]["content"]["text/event-stream"] = {
            "schema": {"description": "One event per `data:` line, as JSON."}}
    elif not row.file:
        operation["responses"][str(row.status_code)]["content"]["text/event-stream"] = {
            "schema": {"description": "With `Accept: text/event-stream`: `event: progress` messages, then "
                                      "`event: result` with the JSON result (or `event: error` with the error body)."}}
    params += [{"name": header, "in": "header", "required": False, "schema": properties.get(arg, {"type": "string"})}
               for header, arg in row.headers.items()]
    if row.etag is not None:
        operation["responses"]["304"] = {"description": "Not modified since the `If-None-Match` entity tag."}
    if params:
        operation["parameters"] = params
    return operation


def derive_route(row: Row, profile: Profile, state: HttpState, limit: ClientRateLimit | None = None) -> TableRoute:
    entry = state.registry.get_tool(row.tool)
    path_params = _PATH_PARAM.findall(row.path)
    properties = entry.input_schema.get("properties", {})
    missing = [p for p in path_params if p not in properties]
    if missing or (row.body_arg is not None and row.body_arg not in properties):
        raise ValueError(f"{profile.name} {row.method} {row.path}: {missing or row.body_arg} "
                         f"are not arguments of {row.tool}")
    operation = {
        "summary": row.summary or entry.annotations.title or entry.name,
        "description": entry.description,
        "tags": [profile.title],
        "operationId": f"{profile.name}_{row.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', row.path.lower()).strip('_')}",
        **openapi_operation(row, entry, path_params, profile),
    }
    return TableRoute(row.method, row.path, make_endpoint(row, entry, profile, state, limit), operation)


def profile_rate_limit(profile: Profile) -> ClientRateLimit | None:
    per_minute = profile.rate_limit_per_minute
    if profile.rate_limit_env and os.environ.get(profile.rate_limit_env, "").strip().isdigit():
        per_minute = int(os.environ[profile.rate_limit_env])
    return ClientRateLimit(per_minute) if per_minute > 0 else None


def derive_routes(profile: Profile, state: HttpState) -> list[TableRoute]:
    """Every row of the profile as a route (raises at start-up for a row that names a wrong argument)."""
    limit = profile_rate_limit(profile)
    routes = [derive_route(row, profile, state, limit) for row in profile.rows_for(state.registry)]
    if profile.token_path is not None:
        routes.append(token_route(profile, state, limit))
    return routes


def token_route(profile: Profile, state: HttpState, limit: ClientRateLimit | None) -> TableRoute:
    """The OAuth2 password flow: a form with username and password in, a JWT bearer token out."""

    async def endpoint(request: Request) -> Response:
        request_id = getattr(request.state, "request_id", None) or new_request_id()
        try:
            if limit is not None:
                limit.check(request.client.host if request.client else "-")
            tokens = state.authenticator.tokens
            if tokens is None:
                raise Unavailable("password login is not configured on this server")
            try:
                form = await request.form()
            except Exception:
                form = None
            username, password = (form.get("username"), form.get("password")) if form is not None else (None, None)
            if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
                raise InvalidArgument.from_problems([Problem("$.username", "username and password are required, "
                                                                          "form-encoded")])
            grant = form.get("grant_type") if form is not None else None
            if grant not in (None, "", "password"):
                raise InvalidArgument.from_problems([Problem("$.grant_type", "only the password grant is served")])
            issued = await anyio.to_thread.run_sync(tokens.issue, username, password)
            return json_response(issued, headers={"Cache-Control": "no-store"})
        except QuantdeskError as exc:
            return error_response(profile, exc, request_id)

    form_schema = {"type": "object", "required": ["username", "password"],
                   "properties": {"username": {"type": "string", "minLength": 1, "maxLength": 64},
                                  "password": {"type": "string", "minLength": 1, "maxLength": 256},
                                  "grant_type": {"type": "string", "enum": ["password"]}}}
    operation = {
        "summary": "Log in (OAuth2 password flow): a JWT bearer token",
        "tags": [profile.title], "operationId": f"{profile.name}_post_token", "x-quantdesk-scopes": [],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form_schema}}},
        "responses": {"200": {"description": "access_token, token_type bearer, expires_in seconds",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": {"description": "Incorrect username or password."}, **_ERROR_RESPONSES},
    }
    assert profile.token_path is not None
    return TableRoute("POST", profile.token_path, endpoint, operation)
