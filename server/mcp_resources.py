"""MCP resources, prompts, completion and resource subscriptions, served from the registry's declarations.

Reading a resource is a tool call (see server/resources.py), so it passes the same validation,
scope check and metrics as any call. Subscriptions ride on the SDK's subscription bus: a
successful call of a tool that a resource names in `changed_by` publishes `ResourceUpdated`
(a static resource) or `ResourcesListChanged` (a template's listing); 2026-07-28 clients get it
through `subscriptions/listen`, handshake-era sessions through `resources/subscribe`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import mcp.types as types
import orjson
from mcp.server import ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourcesListChanged, ResourceUpdated, ServerEvent
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from quantdesk.server.context import CallContext
from quantdesk.server.errors import (
    Forbidden,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    QuantdeskError,
    Unauthorized,
)
from quantdesk.server.registry import FileBlock, ToolRegistry
from quantdesk.server.resources import MAX_LISTED, Listing, PromptEntry, ResourceEntry

logger = logging.getLogger("quantdesk.mcp")

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002  # through 2025-11-25; 2026-07-28 folds it into -32602
AUTH_ERROR = -32001
SERVER_ERROR = -32000
MAX_COMPLETIONS = 100

Ctx = ServerRequestContext[Any]
ContextFactory = Callable[[Ctx], CallContext]


def rpc_error(exc: QuantdeskError, protocol_version: str | None, uri: str | None = None) -> MCPError:
    """One mapping of our typed errors to JSON-RPC errors, for the requests that are not tool calls."""
    data = {"uri": uri} if uri is not None else None
    if isinstance(exc, NotFound):
        modern = protocol_version in MODERN_PROTOCOL_VERSIONS
        return MCPError(INVALID_PARAMS if modern or uri is None else RESOURCE_NOT_FOUND, exc.message, data)
    if isinstance(exc, InvalidArgument | PayloadTooLarge):
        problems = [p.as_dict() for p in exc.problems] if isinstance(exc, InvalidArgument) else []
        return MCPError(INVALID_PARAMS, exc.message, {**(data or {}), "problems": problems} if problems else data)
    if isinstance(exc, Forbidden | Unauthorized):
        return MCPError(AUTH_ERROR, exc.message, data)
    return MCPError(SERVER_ERROR, f"{exc.kind}: {exc.message}", data)


@dataclass
class _Subscribers:
    """Handshake-era `resources/subscribe`: which sessions asked about which URI."""

    by_uri: dict[str, dict[int, Any]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def add(self, uri: str, session: Any) -> None:
        self.by_uri.setdefault(uri, {})[id(session)] = session

    def remove(self, uri: str, session: Any) -> None:
        self.by_uri.get(uri, {}).pop(id(session), None)

    def deliver(self, event: ServerEvent) -> None:
        if isinstance(event, ResourceUpdated):
            for session in list(self.by_uri.get(event.uri, {}).values()):
                self._spawn(self._send(event.uri, session))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, uri: str, session: Any) -> None:
        try:
            await session.send_resource_updated(uri)
        except Exception:  # the session is gone: forget it rather than fail the publisher
            self.remove(uri, session)


class ResourceDoor:
    """The MCP handlers for resources, prompts and completion, over one registry."""

    def __init__(self, registry: ToolRegistry, make_context: ContextFactory, max_resource_bytes: int,
                 page_size: int, bus: InMemorySubscriptionBus) -> None:
        self.registry = registry
        self.make_context = make_context
        self.max_resource_bytes = max_resource_bytes
        self.page_size = page_size
        self.bus = bus
        self.subscribers = _Subscribers()
        self.bus.subscribe(self.subscribers.deliver)
        self._effects = self._index_effects(registry.list_resources())
        self._pending: set[asyncio.Task[None]] = set()
        registry.observers.append(self._on_call)

    @staticmethod
    def _index_effects(resources: list[ResourceEntry]) -> dict[str, list[ServerEvent]]:
        effects: dict[str, list[ServerEvent]] = {}
        for entry in resources:
            event: ServerEvent = ResourcesListChanged() if entry.templated else ResourceUpdated(entry.uri)
            for tool in entry.changed_by:
                if event not in effects.setdefault(tool, []):
                    effects[tool].append(event)
        return effects

    def _on_call(self, tool: str, door: str, outcome: str, seconds: float) -> None:
        events = self._effects.get(tool) if outcome == "ok" else None
        if not events:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a call outside an event loop (none happen today) has nobody to tell
            return
        for event in events:
            task = loop.create_task(self.bus.publish(event))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    # --- resources -------------------------------------------------------------------------------

    async def _listing(self, listing: Listing, call_ctx: CallContext) -> list[dict[str, Any]]:
        outcome = await self.registry.call_tool(listing.tool, dict(listing.arguments), call_ctx)
        return listing.items(outcome.structured)[:MAX_LISTED]

    async def concrete_resources(self, ctx: Ctx) -> list[types.Resource]:
        """Every readable resource: the static ones, and each template expanded by its listing."""
        call_ctx = self.make_context(ctx)
        out: list[types.Resource] = []
        for entry in self.registry.list_resources():
            if not call_ctx.principal.allows(self.registry.get_tool(entry.tool).scope):
                continue
            if not entry.templated:
                out.append(types.Resource(uri=entry.uri, name=entry.name, title=entry.title,
                                          description=entry.description, mime_type=entry.mime_type))
                continue
            if entry.listing is None:
                continue
            try:
                items = await self._listing(entry.listing, call_ctx)
            except QuantdeskError as exc:
                logger.warning("resource listing failed", extra={"uri": entry.uri, "error": exc.message})
                continue
            for item in items:
                uri = entry.expand(item)
                out.append(types.Resource(uri=uri, name=uri.rsplit("/", 1)[-1], title=item.get("title", entry.title),
                                          description=item.get("description", entry.description),
                                          mime_type=entry.mime_type, size=item.get("size")))
        return out

    def templates(self) -> list[types.ResourceTemplate]:
        return [types.ResourceTemplate(uri_template=e.uri, name=e.name, title=e.title, description=e.description,
                                       mime_type=e.mime_type)
                for e in self.registry.list_resources() if e.templated]

    def find(self, uri: str) -> tuple[ResourceEntry, dict[str, str]] | None:
        for entry in self.registry.list_resources():
            variables = entry.match(uri)
            if variables is not None:
                return entry, variables
        return None

    async def read(self, ctx: Ctx, uri: str) -> types.ReadResourceResult:
        found = self.find(uri)
        if found is None:
            raise rpc_error(NotFound(f"Resource not found: {uri}"), ctx.protocol_version, uri)
        entry, variables = found
        call_ctx = self.make_context(ctx)
        try:
            outcome = await self.registry.call_tool(entry.tool, {**entry.arguments, **variables}, call_ctx)
            block = next((b for b in outcome.content if isinstance(b, FileBlock)), None)
            if block is not None:
                return types.ReadResourceResult(contents=[await self._file_contents(uri, block)])
        except QuantdeskError as exc:
            raise rpc_error(exc, ctx.protocol_version, uri) from None
        document = entry.select(outcome.structured) if entry.select is not None else outcome.structured
        text = orjson.dumps(document).decode() if entry.mime_type == "application/json" else str(document)
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=entry.mime_type,
                                                                             text=text)])

    async def _file_contents(self, uri: str, block: FileBlock) -> types.BlobResourceContents:
        if block.size > self.max_resource_bytes:
            raise PayloadTooLarge(
                f"{block.name} is {block.size} bytes, over the {self.max_resource_bytes}-byte limit for reading a "
                "resource over MCP (QUANTDESK_MAX_RESOURCE_BYTES): download it over HTTP at "
                f"/artifacts/{block.name}, or generate a shorter dataset")
        data = await anyio.to_thread.run_sync(block.path.read_bytes)
        return types.BlobResourceContents(uri=uri, mime_type=block.mime_type, blob=base64.b64encode(data).decode())

    def subscribe(self, ctx: Ctx, uri: str) -> None:
        if self.find(uri) is None:
            raise rpc_error(NotFound(f"Resource not found: {uri}"), ctx.protocol_version, uri)
        self.subscribers.add(uri, ctx.session)

    def unsubscribe(self, ctx: Ctx, uri: str) -> None:
        self.subscribers.remove(uri, ctx.session)

    # --- prompts ---------------------------------------------------------------------------------

    def prompt_definitions(self) -> list[types.Prompt]:
        return [types.Prompt(name=p.name, title=p.title, description=p.description,
                             arguments=[types.PromptArgument(name=a.name, description=a.description,
                                                             required=a.required) for a in p.arguments])
                for p in self.registry.list_prompts()]

    def render_prompt(self, ctx: Ctx, name: str, arguments: dict[str, str]) -> types.GetPromptResult:
        try:
            prompt = self.registry.get_prompt(name)
        except NotFound as exc:
            raise MCPError(INVALID_PARAMS, exc.message) from None
        known = {a.name for a in prompt.arguments}
        missing = [a.name for a in prompt.arguments if a.required and not arguments.get(a.name)]
        unknown = sorted(set(arguments) - known)
        if missing or unknown:
            problems = [f"argument {n!r} is required" for n in missing] + [f"unknown argument {n!r}" for n in unknown]
            raise MCPError(INVALID_PARAMS, f"prompt {name}: " + "; ".join(problems))
        text = prompt.render({a.name: arguments[a.name] for a in prompt.arguments if arguments.get(a.name)})
        return types.GetPromptResult(description=prompt.description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))])

    # --- completion ------------------------------------------------------------------------------

    async def complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        listing, key = self._completion_source(params)
        values: list[str] = []
        if listing is not None:
            try:
                items = await self._listing(listing, self.make_context(ctx))
            except QuantdeskError:
                items = []
            prefix = params.argument.value
            values = sorted({str(i[key]) for i in items if key in i and str(i[key]).startswith(prefix)})
        return types.CompleteResult(completion=types.Completion(
            values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS))

    def _completion_source(self, params: types.CompleteRequestParams) -> tuple[Listing | None, str]:
        name = params.argument.name
        if isinstance(params.ref, types.PromptReference):
            prompt: PromptEntry | None = next((p for p in self.registry.list_prompts() if p.name == params.ref.name),
                                              None)
            argument = next((a for a in prompt.arguments if a.name == name), None) if prompt else None
            return (argument.completion if argument else None), name
        entry = next((e for e in self.registry.list_resources() if e.uri == params.ref.uri), None)
        if entry is None or name not in entry.variables:
            return None, name
        return entry.listing, name
