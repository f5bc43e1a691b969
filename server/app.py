"""The HTTP application factory: one registry, the MCP door at `/mcp`, derived REST routes, discovery, metrics."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from quantdesk.server.core import SERVER_NAME, Core, build_core, package_version
from quantdesk.server.discovery import server_card, session_config_schema
from quantdesk.server.discovery import tools_list as discovery_tools_list
from quantdesk.server.errors import QuantdeskError
from quantdesk.server.http_auth import authenticate_request
from quantdesk.server.http_front import FrontDoor
from quantdesk.server.http_state import STATUS_BY_KIND, HttpState, error_headers, json_response
from quantdesk.server.mcp_binding import McpBinding, McpExtension
from quantdesk.server.mcp_http import McpHttpDoor
from quantdesk.server.metrics import CONTENT_TYPE
from quantdesk.server.openapi import SECURITY_SCHEMES
from quantdesk.server.registry import ToolSet
from quantdesk.server.rest_derive import derive_routes
from quantdesk.server.rest_rows import Profile, discover_profiles
from quantdesk.server.route_table import RouteTable
from quantdesk.server.settings import Settings
from quantdesk.server.ws_derive import derive_websockets

logger = logging.getLogger("quantdesk.http")
NATIVE = "native"


def _system_route(path: str, endpoint: Callable[..., Any], scopes: list[str], summary: str,
                  media_type: str = "application/json") -> APIRoute:
    return APIRoute(path, endpoint, methods=["GET"], summary=summary, tags=["Server"],
                    openapi_extra={"x-quantdesk-scopes": scopes,
                                   **({"security": [{"ApiKeyHeader": []}, {"BearerAuth": []}]} if scopes else {}),
                                   "responses": {"200": {"description": summary,
                                                         "content": {media_type: {"schema": {}}}}}},
                    include_in_schema=True)


def _system_routes(state: HttpState) -> list[APIRoute]:
    registry = state.registry

    async def root(request: Request) -> Response:
        return json_response({"name": SERVER_NAME, "version": package_version(),
                              "description": "MCP-first tool server for crypto market simulation and paper trading",
                              "mcp": "/mcp", "tools": "/mcp/tools/list", "docs": "/docs",
                              "server_card": "/.well-known/mcp.json", "health": "/health",
                              **({"dashboard": "/ui/"} if state.settings.dashboard else {})})

    async def metrics(request: Request) -> Response:
        try:
            authenticate_request(request, state.authenticator, ("metrics",))
        except QuantdeskError as exc:
            return json_response({"detail": exc.message}, STATUS_BY_KIND[exc.kind], error_headers(exc))
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    async def tools_list(request: Request) -> Response:
        return json_response(discovery_tools_list(registry))

    async def card(request: Request) -> Response:
        return json_response(server_card(registry), headers={"Access-Control-Allow-Origin": "*",
                                                             "Cache-Control": "public, max-age=3600"})

    async def card_v2(request: Request) -> Response:
        response = await card(request)
        response.headers["content-type"] = "application/mcp-server-card+json"
        return response

    async def mcp_config(request: Request) -> Response:
        return json_response(session_config_schema(), headers={"Access-Control-Allow-Origin": "*"})

    return [
        _system_route("/", root, [], "Server identity and entry points"),
        _system_route("/metrics", metrics, ["metrics"], "Prometheus metrics", CONTENT_TYPE),
        _system_route("/mcp/tools/list", tools_list, [], "Every tool with its schemas (public discovery)"),
        _system_route("/.well-known/mcp.json", card, [], "MCP server card"),
        _system_route("/mcp/server-card", card_v2, [], "MCP server card", "application/mcp-server-card+json"),
        _system_route("/.well-known/mcp-config", mcp_config, [], "Session configuration schema"),
    ]


def create_app(
    settings: Settings,
    *,
    extra_toolsets: Iterable[ToolSet] = (),
    extra_profiles: Iterable[Profile] = (),
    extension: McpExtension | None = None,
    core: Core | None = None,
) -> FastAPI:
    """The whole HTTP surface. `extra_toolsets`/`extra_profiles` let tests add a tool and a table row."""
    core = core or build_core(settings, extra_toolsets)
    state = HttpState(settings, core.registry, core.services, core.authenticator, core.metrics)
    binding = McpBinding(core, "http", package_version(),
                         page_size=settings.tools_page_size, extension=extension,
                         max_resource_bytes=settings.max_resource_bytes)
    door = McpHttpDoor(binding, core.authenticator, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with door.run():
            yield
        core.services.close()

    app = FastAPI(title="quantdesk", version=package_version(), lifespan=lifespan,
                  description="MCP-first tool server: every route below is derived from an MCP tool.")
    app.state.quantdesk = state
    profiles = [*discover_profiles(), *extra_profiles]
    try:
        table = main_port_table(profiles, state)
        sockets = main_port_websockets(profiles, state)
    except Exception:
        core.services.close()
        raise
    # Hot paths first: the router scans its list, and /mcp and the table answer nearly every request.
    # Exact path for /mcp: no redirect between /mcp and /mcp/ (a Mount would add one).
    app.router.routes[:0] = [Route("/mcp", endpoint=door, methods=["GET", "POST", "DELETE"]), table,
                             *_system_routes(state), *sockets]
    if settings.dashboard:
        from quantdesk.server.ui.routes import ui_mount

        app.router.routes.append(ui_mount(state))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id, "path": request.url.path})
        return json_response({"detail": f"internal error (request id {request_id})", "request_id": request_id}, 500)

    _install_openapi(app, table)
    if settings.cors_origins:
        # Browser-based MCP clients: an explicit allowlist only; the session id must be readable by script.
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                           allow_headers=["Content-Type", "Accept", "Authorization", "X-API-Key", "Mcp-Session-Id",
                                          "MCP-Protocol-Version", "Last-Event-ID", "Mcp-Method", "Mcp-Name"],
                           expose_headers=["Mcp-Session-Id", "WWW-Authenticate", "X-Request-Id"], max_age=600)
    app.add_middleware(FrontDoor, allowed_hosts=settings.host_allowlist(),
                       allowed_origins=settings.origin_allowlist(), max_body_bytes=settings.max_body_bytes)
    return app


def main_port_table(profiles: list[Profile], state: HttpState) -> RouteTable:
    """Every profile's rows on the main port, except a route two profiles claim: that one lives only on the
    profiles' own listeners (`--compat name:port`), where each keeps its original path. The native profile's
    routes always stay."""
    claims: dict[tuple[str, str], list[str]] = {}
    for profile in profiles:
        for row in profile.rows_for(state.registry):
            claims.setdefault((row.method, row.path), []).append(profile.name)
    table = RouteTable()
    for profile in profiles:
        rows = [row for row in profile.rows_for(state.registry)
                if profile.name == NATIVE or len(claims[(row.method, row.path)]) == 1
                and NATIVE not in claims[(row.method, row.path)]]
        skipped = len(profile.rows_for(state.registry)) - len(rows)
        if skipped:
            logger.info("routes left to the profile's own listener", extra={"profile": profile.name,
                                                                            "routes": skipped})
        for route in derive_routes(dataclasses.replace(profile, rows=tuple(rows)), state):
            table.add(route)
    return table


def main_port_websockets(profiles: list[Profile], state: HttpState) -> list[WebSocketRoute]:
    """Every profile's WebSocket routes on the main port, but for a path two profiles claim."""
    claims: dict[str, int] = {}
    for profile in profiles:
        for row in profile.websockets:
            claims[row.path] = claims.get(row.path, 0) + 1
    return [route for profile in profiles
            for route in derive_websockets(dataclasses.replace(
                profile, websockets=tuple(w for w in profile.websockets if claims[w.path] == 1)), state)]


def create_profile_app(settings: Settings, core: Core, profile: Profile) -> FastAPI:
    """One legacy API on a listener of its own, at its original root paths, on the same registry and services.

    The main app owns the services' lifetime; this one only serves routes (no MCP endpoint).
    """
    state = HttpState(settings, core.registry, core.services, core.authenticator, core.metrics)
    app = FastAPI(title=f"quantdesk: {profile.title} compatibility", version=package_version(),
                  description=f"The {profile.title} API, served by quantdesk tools.")
    app.state.quantdesk = state
    table = RouteTable()
    for route in derive_routes(profile, state):
        table.add(route)
    routes: list[Any] = [table, *derive_websockets(profile, state)]
    if profile.metrics_path is not None:
        async def metrics(request: Request) -> Response:
            return Response(state.metrics.render(), media_type=CONTENT_TYPE)

        routes.append(_system_route(profile.metrics_path, metrics, [], "Prometheus metrics", CONTENT_TYPE))
    app.router.routes[:0] = routes

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id, "path": request.url.path})
        return json_response({"detail": f"internal error (request id {request_id})", "request_id": request_id}, 500)

    _install_openapi(app, table)
    app.add_middleware(FrontDoor, allowed_hosts=settings.host_allowlist(),
                       allowed_origins=settings.origin_allowlist(), max_body_bytes=settings.max_body_bytes)
    return app


def _install_openapi(app: FastAPI, table: RouteTable) -> None:
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default()
            for path, operations in table.openapi_paths().items():
                schema.setdefault("paths", {}).setdefault(path, {}).update(operations)
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
