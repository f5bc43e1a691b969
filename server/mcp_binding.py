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
from typing import Any, Literal, Protocol

import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from quantdesk.server.context import LOCAL_PRINCIPAL, CallContext, Principal, Services
from quantdesk.server.errors import InvalidArgument, QuantdeskError
from quantdesk.server.logs import new_request_id
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

SERVER_NAME = "quantdesk"
SERVER_INSTRUCTIONS = (
    "quantdesk generates reproducible synthetic crypto market data (trades and L2 books), normalizes "
    "exchange feeds into one canonical schema, simulates perpetual funding per venue, and runs a "
    "paper-trading desk. Start with get_presets and validate_config before generate_dataset."
)
PRINCIPAL_STATE_KEY = "quantdesk.principal"
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class McpExtension(Protocol):
    """Extra MCP-only surface (the conformance fixtures): tools, resources and prompts beside the registry."""

    tools: list[types.Tool]

    async def call_tool(self, ctx: ServerRequestContext[Any], name: str, arguments: dict[str, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult: ...

    def input_schema(self, name: str) -> dict[str, Any] | None: ...

    def install(self, server: Server[Any]) -> None: ...


def tool_definition(entry: ToolEntry) -> types.Tool:
    a = entry.annotations
    return types.Tool(
        name=entry.name,
        title=a.title,
        description=entry.description,
        input_schema=entry.input_schema,
        output_schema=entry.output_schema,
        annotations=types.ToolAnnotations(
            title=a.title,
            read_only_hint=a.read_only,
            destructive_hint=a.destructive,
            idempotent_hint=a.idempotent,
            open_world_hint=a.open_world,
        ),
    )


def content_block(block: ContentBlock) -> types.ContentBlock:
    if isinstance(block, FileBlock):
        return types.ResourceLink(type="resource_link", uri=block.uri, name=block.name, mime_type=block.mime_type,
                                  size=block.size)
    if isinstance(block, ImageBlock):
        return types.ImageContent(type="image", data=base64.b64encode(block.data).decode(), mime_type=block.mime_type)
    if isinstance(block, AudioBlock):
        return types.AudioContent(type="audio", data=base64.b64encode(block.data).decode(), mime_type=block.mime_type)
    resource: types.TextResourceContents | types.BlobResourceContents
    if block.text is not None:
        resource = types.TextResourceContents(uri=block.uri, mime_type=block.mime_type, text=block.text)
    else:
        resource = types.BlobResourceContents(uri=block.uri, mime_type=block.mime_type,
                                              blob=base64.b64encode(block.blob or b"").decode())
    return types.EmbeddedResource(type="resource", resource=resource)


def call_result(outcome: CallOutcome) -> types.CallToolResult:
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=outcome.text())]
    content += [content_block(b) for b in outcome.content]
    return types.CallToolResult(content=content, structured_content=outcome.structured)


def error_result(exc: QuantdeskError) -> types.CallToolResult:
    text = f"{exc.kind}: {exc.message}"
    if isinstance(exc, InvalidArgument) and exc.problems:
        text = "invalid arguments:\n" + "\n".join(f"- {p.path}: {p.message}" for p in exc.problems)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


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
    """Builds the SDK server for one transport kind and answers its tool requests from the registry."""

    registry: ToolRegistry
    services: Services
    transport: Literal["stdio", "http", "memory"]
    version: str
    page_size: int = 50
    extension: McpExtension | None = None
    _tools: list[types.Tool] = field(init=False)

    def __post_init__(self) -> None:
        self._tools = [tool_definition(e) for e in self.registry.list_tools()]
        if self.extension is not None:
            self._tools += self.extension.tools
        self._extra_names = {t.name for t in self.extension.tools} if self.extension else set()

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

    async def on_list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        offset = decode_cursor(params.cursor) if params is not None and params.cursor else 0
        page = self._tools[offset: offset + self.page_size]
        end = offset + len(page)
        return types.ListToolsResult(tools=page, next_cursor=encode_cursor(end) if end < len(self._tools) else None)

    def serves_directly(self, name: str) -> bool:
        """Whether a plain JSON tools/call for this tool may skip the SDK's per-request machinery."""
        return self.registry.has_tool(name) and name not in self._extra_names

    async def call_plain(self, name: str, arguments: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """Answer a handshake-era tools/call from a JSON-only client: the same result the SDK path gives.

        In JSON response mode the SDK can deliver no notifications for a request, so such a call is
        request in, result out; building the result here saves the SDK's per-request transport,
        session and task-group set-up (about 0.5 ms of CPU per call, see BENCHMARKS.md).
        """
        request_id = new_request_id()
        ctx = CallContext(principal=principal, services=self.services, request_id=request_id, door="mcp-http")
        try:
            outcome = await self.registry.call_tool(name, arguments, ctx)
        except QuantdeskError as exc:
            return {"result": _dump(error_result(exc))}
        except Exception:
            logger.exception("tool call failed", extra={"request_id": request_id, "tool": name})
            return {"error": {"code": INTERNAL_ERROR, "message": f"internal error (request id {request_id})"}}
        if outcome.content:
            return {"result": _dump(call_result(outcome))}
        # The dict _dump(call_result(outcome)) gives, without building three pydantic models per call.
        return {"result": {"content": [{"type": "text", "text": outcome.text()}], "isError": False,
                           "structuredContent": outcome.structured}}

    async def on_call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        name = params.name
        arguments = dict(params.arguments or {})
        if name in self._extra_names and self.extension is not None:
            return await self.extension.call_tool(ctx, name, arguments, params)
        if not self.registry.has_tool(name):
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
        request_id = new_request_id()
        call_ctx = CallContext(
            principal=self.principal(ctx),
            services=self.services,
            request_id=request_id,
            door=f"mcp-{self.transport}",
            progress=_progress_sender(ctx),
        )
        try:
            outcome = await self.registry.call_tool(name, arguments, call_ctx)
        except QuantdeskError as exc:
            return error_result(exc)
        except Exception:
            logger.exception("tool call failed", extra={"request_id": request_id, "tool": name})
            raise MCPError(code=INTERNAL_ERROR, message=f"internal error (request id {request_id})") from None
        return call_result(outcome)


def _dump(result: types.CallToolResult) -> dict[str, Any]:
    # resultType belongs to the 2026-07-28 wire only; the SDK leaves it out of handshake-era answers.
    return result.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"result_type"})


def _progress_sender(ctx: ServerRequestContext[Any]) -> Callable[[float, float | None, str | None], Awaitable[None]]:
    async def send(progress: float, total: float | None, message: str | None) -> None:
        # A no-op in the SDK when the client sent no progressToken.
        await ctx.session.report_progress(progress, total, message)

    return send
