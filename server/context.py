"""What a handler receives besides its arguments: the caller, progress, logging and services."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from quantdesk.server.paths import ServerPaths
from quantdesk.server.state import StateStore

if TYPE_CHECKING:
    from quantdesk.server.registry import ToolRegistry

SCOPES: tuple[str, ...] = ("read", "generate", "stream", "metrics", "mcp", "trade", "control", "agents", "admin")
# Aleatoric's `mcp` scope gave access to the MCP endpoint and every read-only tool, so it implies `read`.
IMPLIED_SCOPES: dict[str, frozenset[str]] = {"mcp": frozenset({"read"}), "admin": frozenset(SCOPES)}


def expand_scopes(scopes: frozenset[str]) -> frozenset[str]:
    out = set(scopes)
    for scope in scopes:
        out |= IMPLIED_SCOPES.get(scope, frozenset())
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a stored API key, the environment key, or the local user (stdio, loopback)."""

    key_id: str | None
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """Who acted, as state changes and the decision log record it: the name and the key id."""
        return self.name + (f" ({self.key_id})" if self.key_id else "")

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @classmethod
    def with_scopes(cls, key_id: str | None, name: str, scopes: frozenset[str]) -> Principal:
        return cls(key_id, name, expand_scopes(scopes))


LOCAL_PRINCIPAL = Principal.with_scopes(None, "local", frozenset({"admin"}))

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


async def _no_progress(progress: float, total: float | None, message: str | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The server's identity, for tools that describe the server itself."""

    name: str
    version: str
    started_at: float = field(default_factory=time.time)

    @property
    def protocol_versions(self) -> tuple[str, ...]:
        # The SDK's version table lives in a heavy module; only the tools that describe the server need it.
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

        return (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)


T = TypeVar("T")
ServiceFactory = Callable[["Services"], Any]


class Services:
    """The application's long-lived services, built lazily from factories the tool domains register.

    The server knows no domain: a domain registers `factory(services) -> instance` for the
    interface type it defines, and handlers ask for it with `ctx.services.get(ThatType)`.
    """

    def __init__(
        self,
        data_dir: Path,
        state: StateStore,
        info: ServerInfo,
        tools: ToolRegistry,
        factories: dict[type[Any], ServiceFactory] | None = None,
        settings: dict[str, Any] | None = None,
        paths: ServerPaths | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.paths = paths or ServerPaths(data_dir)
        self.state = state
        self.info = info
        self.tools = tools
        self.settings: dict[str, Any] = dict(settings or {})
        self._factories: dict[type[Any], ServiceFactory] = dict(factories or {})
        self._instances: dict[type[Any], Any] = {}

    def get(self, kind: type[T]) -> T:
        instance = self._instances.get(kind)
        if instance is None:
            factory = self._factories.get(kind)
            if factory is None:
                raise LookupError(f"no service registered for {kind.__name__}")
            instance = self._instances[kind] = factory(self)
        return cast(T, instance)

    def start(self, kinds: list[type[Any]]) -> None:
        """Build the services that must exist from the start (crash recovery runs in their constructors)."""
        for kind in kinds:
            self.get(kind)

    def close(self) -> None:
        for instance in self._instances.values():
            close = getattr(instance, "close", None)
            if callable(close):
                close()
        self._instances.clear()
        self.state.close()


@dataclass(slots=True)
class CallContext:
    """Per-call context handed to every tool handler, whatever the door."""

    principal: Principal
    services: Services
    request_id: str
    door: str
    progress: ProgressFn = _no_progress
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("quantdesk.tools"))
    started_at: float = field(default_factory=time.time)

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        await self.progress(progress, total, message)
