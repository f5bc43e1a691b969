"""The MCP door: the official SDK's low-level `Server`, with tools/list and tools/call served by the registry.

The SDK does the protocol (both eras, negotiation, ping, notifications, cancellation); this
module only translates: registry entries to `Tool`s, a `CallOutcome` to a `CallToolResult`,
our typed errors to `isError` results, unknown tools to JSON-RPC -32602.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import mcp.types as types
import orjson
from mcp.server import Server, ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError

from quantdesk.server.context import LOCAL_PRINCIPAL, CallContext, Principal, Services
from quantdesk.server.core import SERVER_NAME, Core
from quantdesk.server.errors import InvalidArgument, QuantdeskError
from quantdesk.server.logs import new_request_id
from quantdesk.server.mcp_resources import ResourceDoor
from quantdesk.server.registry import (
    AudioBlock,
    CallOutcome,
    ContentBlock,
    FileBlock,
    ImageBlock,
    ToolEntry,
    ToolRegistry,
)

logger = logging.getLogger("quantdesk.mcp")

SERVER_INSTRUCTIONS = (
    "quantdesk generates reproducible synthetic crypto market data (trades and L2 books), normalizes "
    "exchange feeds into one canonical schema, simulates perpetual funding per venue, and runs a "
    "paper-trading desk. Start with get_presets and validate_config before generate_dataset."
)
PRINCIPAL_STATE_KEY = "quantdesk.principal"
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class McpExtension(Protocol):
    """Extra MCP-only surface beside the registry (the conformance suite's fixtures, loaded by `--mcp-extension`).

    Its lists are added to ours; a read or prompt it does not know it answers with None.
    """

    tools: list[types.Tool]
    resources: list[types.Resource]
    resource_templates: list[types.ResourceTemplate]
    prompts: list[types.Prompt]

    async def call_tool(self, ctx: ServerRequestContext[Any], name: str, arguments: dict[str, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult: ...

    def input_schema(self, name: str) -> dict[str, Any] | None: ...

    async def read_resource(self, ctx: ServerRequestContext[Any], uri: str) -> types.ReadResourceResult | None: ...

    async def get_prompt(self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
                         ) -> types.GetPromptResult | types.InputRequiredResult | None: ...

    def install(self, server: Server[Any]) -> None: ...


def _fields_only(node: Any) -> Any:
    """A schema's structure without prose and defaults."""
    if isinstance(node, list):
        return [_fields_only(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: _fields_only(sub) for name, sub in value.items()}
        elif key == "default" or (key == "description" and isinstance(value, str)):
            continue
        else:
            out[key] = _fields_only(value)
    return out


def wire_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The output schema as tools/list carries it: types, names and bounds, without field prose or defaults.

    Every model reads tools/list in full on every conversation. Results are self-describing (units
    are in the field names), so their schema on the wire keeps the structure a client validates
    against and leaves the prose to `GET /mcp/tools/list`, `get_manifest` and OpenAPI, which carry
    the full schemas.
    """
    return {k: v for k, v in _fields_only(schema).items()}


def wire_input_schema(entry: ToolEntry) -> dict[str, Any]:
    """The input schema as tools/list carries it: `brief` fields as a pointer to their shared definition, and
    without the argument model's docstring (the tool's description says it)."""
    if not entry.brief:
        return {k: v for k, v in entry.input_schema.items() if k != "description"}
    properties = {**entry.input_schema["properties"]}
    for name, text in entry.brief:
        properties[name] = {"type": "object", "description": text}
    all_defs: dict[str, Any] = entry.input_schema.get("$defs", {})
    defs: dict[str, Any] = {}
    text = orjson.dumps(properties).decode()
    while True:  # keep the definitions still referenced, transitively
        found = {k: v for k, v in all_defs.items() if k not in defs and f'"#/$defs/{k}"' in text}
        if not found:
            break
        defs |= found
        text = orjson.dumps(found).decode()
    schema = {k: v for k, v in entry.input_schema.items() if k not in ("$defs", "description")}
    return {**schema, "properties": properties, **({"$defs": defs} if defs else {})}


def _wire_output(entry: ToolEntry) -> dict[str, Any]:
    schema = entry.output_schema
    if entry.streaming:
        # The events of a stream are described by the stream's own documentation (and the canonical event
        # resource); repeating every event model in tools/list would double its size.
        properties = {**schema["properties"], "events": {"type": "array", "items": {"type": "object"},
                                                         "description": "The events in order, as the SSE stream "
                                                                        "sends them."}}
        schema = {k: v for k, v in {**schema, "properties": properties}.items() if k != "$defs"}
    return wire_output_schema(schema)


def tool_definition(entry: ToolEntry) -> types.Tool:
    a = entry.annotations
    # The spec reads destructive and idempotent hints only for tools that are not read-only, and the title
    # is the tool's own: sending them anyway would cost every conversation bytes that say nothing.
    return types.Tool(
        name=entry.name,
        title=a.title,
        description=entry.description,
        input_schema=wire_input_schema(entry),
        output_schema=_wire_output(entry),
        annotations=types.ToolAnnotations(
            read_only_hint=a.read_only,
            destructive_hint=None if a.read_only else a.destructive,
            idempotent_hint=None if a.read_only else a.idempotent,
            open_world_hint=a.open_world,
        ),
    )


def content_payload(block: ContentBlock) -> dict[str, Any]:
    """A content block as MCP wire JSON."""
    if isinstance(block, FileBlock):
        return {"type": "resource_link", "uri": block.uri, "name": block.name, "mimeType": block.mime_type,
                "size": block.size}
    if isinstance(block, ImageBlock | AudioBlock):
        kind = "image" if isinstance(block, ImageBlock) else "audio"
        return {"type": kind, "data": base64.b64encode(block.data).decode(), "mimeType": block.mime_type}
    resource: dict[str, Any] = {"uri": block.uri, "mimeType": block.mime_type}
    if block.text is not None:
        resource["text"] = block.text
    else:
        resource["blob"] = base64.b64encode(block.blob or b"").decode()
    return {"type": "resource", "resource": resource}


def result_payload(outcome: CallOutcome) -> dict[str, Any]:
    """A successful call as the wire JSON of a CallToolResult: the one place both call paths build it."""
    content = [{"type": "text", "text": outcome.text()}, *(content_payload(b) for b in outcome.content)]
    return {"content": content, "structuredContent": outcome.structured, "isError": False}


def error_payload(exc: QuantdeskError) -> dict[str, Any]:
    """A tool error as the wire JSON of an `isError` CallToolResult (SEP-1303: input problems included)."""
    text = f"{exc.kind}: {exc.message}"
    if isinstance(exc, InvalidArgument) and exc.problems:
        text = "invalid arguments:\n" + "\n".join(f"- {p.path}: {p.message}" for p in exc.problems)
    return {"content": [{"type": "text", "text": text}], "isError": True}


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise MCPError(code=INVALID_PARAMS, message="invalid cursor") from None
    if kind != "offset" or offset < 0:
        raise MCPError(code=INVALID_PARAMS, message="invalid cursor")
    return offset


@dataclass
class McpBinding:
    """Builds the SDK server for one transport kind and answers its requests from the registry.

    `core` may be a function that builds it: the stdio door passes one, so the server answers
    `initialize` before any tool domain is imported, and builds the core on the first request
    that needs it (tools, resources, prompts).
    """

    core: Core | Callable[[], Core]
    transport: Literal["stdio", "http", "memory"]
    version: str
    page_size: int = 500
    extension: McpExtension | None = None
    max_resource_bytes: int = 8 * 1024 * 1024
    _tools: list[types.Tool] = field(init=False, default_factory=list)
    _built: list[Core] = field(init=False, default_factory=list)
    _resources: list[ResourceDoor] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._extra_names = {t.name for t in self.extension.tools} if self.extension else set()
        self.bus = InMemorySubscriptionBus()
        if not callable(self.core):
            self._built.append(self.core)

    def built_core(self) -> Core | None:
        return self._built[0] if self._built else None

    @property
    def registry(self) -> ToolRegistry:
        if not self._built:
            assert callable(self.core)
            self._built.append(self.core())
        return self._built[0].registry

    @property
    def services(self) -> Services:
        self.registry  # noqa: B018 - builds the core when needed
        return self._built[0].services

    @property
    def resources(self) -> ResourceDoor:
        if not self._resources:
            self._resources.append(ResourceDoor(self.registry, self.call_context, self.max_resource_bytes,
                                                self.page_size, self.bus))
        return self._resources[0]

    def build(self) -> Server[Any]:
        server: Server[Any] = Server(
            SERVER_NAME,
            version=self.version,
            title="quantdesk",
            description="Crypto market simulation and paper-trading tool server",
            instructions=SERVER_INSTRUCTIONS,
            on_list_tools=self.on_list_tools,
            on_call_tool=self.on_call_tool,
            get_tool_input_schema=self.input_schema,
            on_list_resources=self.on_list_resources,
            on_list_resource_templates=self.on_list_resource_templates,
            on_read_resource=self.on_read_resource,
            on_subscribe_resource=self.on_subscribe_resource,
            on_unsubscribe_resource=self.on_unsubscribe_resource,
            on_subscriptions_listen=ListenHandler(self.bus),
            on_list_prompts=self.on_list_prompts,
            on_get_prompt=self.on_get_prompt,
            on_completion=self.on_completion,
        )
        if self.extension is not None:
            self.extension.install(server)
        return server

    def input_schema(self, name: str) -> dict[str, Any] | None:
        if self.registry.has_tool(name):
            return self.registry.get_tool(name).input_schema
        return self.extension.input_schema(name) if self.extension is not None else None

    def principal(self, ctx: ServerRequestContext[Any]) -> Principal:
        if self.transport in ("stdio", "memory"):
            return LOCAL_PRINCIPAL
        state = getattr(ctx.request, "scope", {}).get("state", {}) if ctx.request is not None else {}
        principal = state.get(PRINCIPAL_STATE_KEY)
        if not isinstance(principal, Principal):
            # The HTTP front authenticates before the SDK sees a request; reaching here without a principal
            # means a wiring fault, and the safe answer is to refuse.
            raise MCPError(code=INTERNAL_ERROR, message="request reached the MCP handler unauthenticated")
        return principal

    def call_context(self, ctx: ServerRequestContext[Any]) -> CallContext:
        return CallContext(principal=self.principal(ctx), services=self.services, request_id=new_request_id(),
                           door=f"mcp-{self.transport}", progress=_progress_sender(ctx))

    # --- tools -----------------------------------------------------------------------------------

    async def on_list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        if not self._tools:  # built on the first tools/list, so initialize never waits for every schema
            self._tools = [tool_definition(e) for e in self.registry.list_tools()]
            self._tools += self.extension.tools if self.extension is not None else []
        page, next_cursor = paginate(self._tools, params, self.page_size)
        return types.ListToolsResult(tools=page, next_cursor=next_cursor)

    def serves_directly(self, name: str) -> bool:
        """Whether a plain JSON tools/call for this tool may skip the SDK's per-request machinery."""
        return name not in self._extra_names

    async def call(self, name: str, arguments: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The one call path of both MCP routes: the result as CallToolResult wire JSON, or an MCPError.

        Unknown tools are protocol errors (-32602); our typed errors are `isError` results; anything
        else is logged with its request id and answered as an internal error that leaks nothing.
        """
        if not self.registry.has_tool(name):
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
        try:
            outcome = await self.registry.call_tool(name, arguments, ctx)
        except QuantdeskError as exc:
            return error_payload(exc)
        except Exception:
            logger.exception("tool call failed", extra={"request_id": ctx.request_id, "tool": name})
            raise MCPError(code=INTERNAL_ERROR, message=f"internal error (request id {ctx.request_id})") from None
        return result_payload(outcome)

    async def call_plain(self, name: str, arguments: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """Answer a handshake-era tools/call from a JSON-only client: `{"result": ...}` or `{"error": ...}`.

        In JSON response mode the SDK can deliver no notifications for a request, so such a call is
        request in, result out; answering here saves the SDK's per-request transport, session and
        task-group set-up (about 0.5 ms of CPU per call, see BENCHMARKS.md). The answer is built by
        `call`, as on the SDK path.
        """
        ctx = CallContext(principal=principal, services=self.services, request_id=new_request_id(), door="mcp-http")
        try:
            return {"result": await self.call(name, arguments, ctx)}
        except MCPError as exc:
            return {"error": exc.error.model_dump(mode="json", exclude_none=True)}

    async def on_call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        name = params.name
        arguments = dict(params.arguments or {})
        if name in self._extra_names and self.extension is not None:
            return await self.extension.call_tool(ctx, name, arguments, params)
        return types.CallToolResult.model_validate(await self.call(name, arguments, self.call_context(ctx)))

    # --- resources, prompts, completion ----------------------------------------------------------

    async def on_list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        extra = self.extension.resources if self.extension is not None else []
        page, next_cursor = paginate([*await self.resources.concrete_resources(ctx), *extra], params, self.page_size)
        return types.ListResourcesResult(resources=page, next_cursor=next_cursor)

    async def on_list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        extra = self.extension.resource_templates if self.extension is not None else []
        page, next_cursor = paginate([*self.resources.templates(), *extra], params, self.page_size)
        return types.ListResourceTemplatesResult(resource_templates=page, next_cursor=next_cursor)

    async def on_read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        uri = str(params.uri)
        if self.extension is not None:
            answer = await self.extension.read_resource(ctx, uri)
            if answer is not None:
                return answer
        return await self.resources.read(ctx, uri)

    async def on_subscribe_resource(self, ctx: ServerRequestContext[Any],
                                    params: types.SubscribeRequestParams) -> types.EmptyResult:
        uri = str(params.uri)
        extra = {r.uri for r in self.extension.resources} if self.extension is not None else set()
        if uri in extra:
            self.resources.subscribers.add(uri, ctx.session)
        else:
            self.resources.subscribe(ctx, uri)
        return types.EmptyResult()

    async def on_unsubscribe_resource(self, ctx: ServerRequestContext[Any],
                                      params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.resources.unsubscribe(ctx, str(params.uri))
        return types.EmptyResult()

    async def on_list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        extra = self.extension.prompts if self.extension is not None else []
        page, next_cursor = paginate([*self.resources.prompt_definitions(), *extra], params, self.page_size)
        return types.ListPromptsResult(prompts=page, next_cursor=next_cursor)

    async def on_get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        if self.extension is not None:
            answer = await self.extension.get_prompt(ctx, params)
            if answer is not None:
                return answer
        return self.resources.render_prompt(ctx, params.name, dict(params.arguments or {}))

    async def on_completion(self, ctx: ServerRequestContext[Any],
                            params: types.CompleteRequestParams) -> types.CompleteResult:
        return await self.resources.complete(ctx, params)


T = TypeVar("T")


def paginate(items: list[T], params: types.PaginatedRequestParams | None, page_size: int) -> tuple[list[T], str | None]:
    """One page of a list by an opaque offset cursor, and the cursor of the next page (None at the end)."""
    offset = decode_cursor(params.cursor) if params is not None and params.cursor else 0
    page = items[offset: offset + page_size]
    end = offset + len(page)
    return page, encode_cursor(end) if end < len(items) else None


def _progress_sender(ctx: ServerRequestContext[Any]) -> Callable[[float, float | None, str | None], Awaitable[None]]:
    async def send(progress: float, total: float | None, message: str | None) -> None:
        # A no-op in the SDK when the client sent no progressToken.
        await ctx.session.report_progress(progress, total, message)

    return send
