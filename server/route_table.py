"""An indexed table of derived routes, seen by the app's router as one route.

Starlette and FastAPI match routes by scanning a list, a few microseconds per route; with a row per
tool and per legacy path that scan would dominate a call. The table looks static paths up in a
dict and tries path templates only after that, so static paths win over templates that also match
(`/mcp/caches/stats` before `/mcp/caches/{cache_key}`). It also documents its routes in OpenAPI.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette._utils import get_route_path
from starlette.convertors import Convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, compile_path
from starlette.types import Receive, Scope, Send

from quantdesk.server.http_state import json_response

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class TableRoute:
    method: str
    path: str
    endpoint: Endpoint
    operation: dict[str, Any] = field(repr=False)
    regex: re.Pattern[str] = field(init=False, repr=False)
    convertors: dict[str, Convertor[Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        regex, _, convertors = compile_path(self.path)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "convertors", convertors)

    @property
    def templated(self) -> bool:
        return bool(self.convertors)


class RouteTable(BaseRoute):
    def __init__(self) -> None:
        self._static: dict[str, dict[str, TableRoute]] = {}
        self._templated: list[TableRoute] = []
        self._all: list[TableRoute] = []

    def add(self, route: TableRoute) -> None:
        if any(r.method == route.method and r.path == route.path for r in self._all):
            raise ValueError(f"two rows claim {route.method} {route.path}")
        self._all.append(route)
        if route.templated:
            self._templated.append(route)
        else:
            self._static.setdefault(route.path, {})[route.method] = route

    def routes(self) -> list[TableRoute]:
        return list(self._all)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path = get_route_path(scope)
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        allowed: list[str] = []
        by_method = self._static.get(path)
        if by_method is not None:
            # A static path is its own resource: a template that would also match it does not serve it.
            route = by_method.get(method)
            if route is not None:
                return Match.FULL, {"quantdesk.route": route, "path_params": {}}
            return Match.PARTIAL, {"quantdesk.allowed": sorted(by_method)}
        for route in self._templated:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            params = {k: route.convertors[k].convert(v) for k, v in found.groupdict().items()}
            return Match.FULL, {"quantdesk.route": route, "path_params": {**scope.get("path_params", {}), **params}}
        if allowed:
            return Match.PARTIAL, {"quantdesk.allowed": sorted(set(allowed))}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: TableRoute | None = scope.get("quantdesk.route")
        if route is None:
            allowed = ", ".join(scope.get("quantdesk.allowed", []))
            response = json_response({"detail": "Method Not Allowed"}, 405, {"Allow": allowed})
        else:
            response = await route.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    def openapi_paths(self) -> dict[str, dict[str, Any]]:
        paths: dict[str, dict[str, Any]] = {}
        for route in self._all:
            paths.setdefault(route.path, {})[route.method.lower()] = route.operation
        return paths
