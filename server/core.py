"""The door-independent core of a running server: settings, registry, services, authentication, metrics.

Every door (HTTP, stdio, the CLI) starts from `build_core`. Nothing here imports FastAPI or the
MCP SDK, so a command that needs neither (`quantdesk call`) starts without paying for them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from quantdesk.server.auth import Authenticator, KeyStore
from quantdesk.server.context import ServerInfo, Services
from quantdesk.server.metrics import Metrics
from quantdesk.server.oauth import TokenIssuer, UserStore
from quantdesk.server.paths import ServerPaths
from quantdesk.server.registry import ToolRegistry, ToolSet, discover_tools
from quantdesk.server.settings import Settings
from quantdesk.server.state import StateStore

SERVER_NAME = "quantdesk"


def package_version() -> str:
    try:
        return version("quantdesk")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


@dataclass(frozen=True, slots=True)
class Core:
    """The door-independent parts of a running server, built once and shared by every door."""

    settings: Settings
    registry: ToolRegistry
    services: Services
    authenticator: Authenticator
    metrics: Metrics


def build_core(settings: Settings, extra_toolsets: Iterable[ToolSet] = ()) -> Core:
    metrics = Metrics()
    registry = discover_tools(ToolRegistry(observer=metrics.observe_call), extra_modules=settings.tool_modules)
    for toolset in extra_toolsets:
        registry.add_toolset(toolset)
    registry.check_references()
    metrics.tools_registered.set(len(registry.list_tools()))
    state = StateStore(settings.state_path)
    info = ServerInfo(SERVER_NAME, package_version())
    services = Services(settings.data_dir, state, info, registry, registry.factories,
                        settings={"max_body_bytes": settings.max_body_bytes, "background": settings.background},
                        paths=ServerPaths(settings.data_dir, settings.import_dirs))
    tokens = TokenIssuer(UserStore(state), settings.data_dir, settings.jwt_secret, settings.jwt_expire_minutes)
    authenticator = Authenticator(KeyStore(state, settings.env_api_key), tokens)
    services.start(registry.start_services)
    for source in registry.metric_sources:
        metrics.add_domain(source.prefix, functools.partial(source.source, services), source.labels)
    return Core(settings, registry, services, authenticator, metrics)


