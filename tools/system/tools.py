"""Tools that describe the server itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet

tools = ToolSet("system")


class NoArguments(ToolInput):
    pass


class HealthOutput(ToolOutput):
    status: str = Field(description="`ok` when the server answers.")
    name: str
    version: str
    timestamp: str = Field(description="Server time, ISO 8601 UTC.")
    uptime_seconds: float


class ManifestOutput(ToolOutput):
    name: str
    version: str
    protocol_versions: list[str]
    tools: list[dict[str, Any]] = Field(description="Every tool: name, description, scope, annotations, schemas.")


@tools.tool(scope="read", title="Health check", read_only=True, idempotent=True)
async def get_health(args: NoArguments, ctx: CallContext) -> HealthOutput:
    """Lightweight health check: status, server version and time. Use it to confirm the server is reachable."""
    now = datetime.now(UTC)
    info = ctx.services.info
    return HealthOutput(status="ok", name=info.name, version=info.version,
                        timestamp=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                        uptime_seconds=round(now.timestamp() - info.started_at, 3))


@tools.tool(scope="read", title="Server manifest", read_only=True, idempotent=True)
async def get_manifest(args: NoArguments, ctx: CallContext) -> ManifestOutput:
    """Describe the server and every tool it offers, with input and output JSON Schemas and required scopes.

    Use it to discover capabilities programmatically; MCP clients get the same from tools/list.
    """
    info = ctx.services.info
    return ManifestOutput(name=info.name, version=info.version, protocol_versions=list(info.protocol_versions),
                          tools=[entry.describe() for entry in ctx.services.tools.list_tools()])
