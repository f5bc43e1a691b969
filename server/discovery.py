"""Discovery documents, all generated from the registry: the tool list, the server card, the session config.

`quantdesk export-wellknown` writes the same documents into `.well-known/`; a parity test fails
when the files drift from the live registry, so nothing here may depend on the host or the clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from quantdesk.schemas.export import render
from quantdesk.server.core import package_version
from quantdesk.server.registry import ToolRegistry

__all__ = ["package_version", "render", "server_card", "session_config_schema", "tools_list", "write_well_known"]

SERVER_CARD_NAME = "dev.quantdesk/quantdesk"
SERVER_CARD_SCHEMA = "https://static.modelcontextprotocol.io/schemas/v1/server-card.schema.json"
PROTOCOL_VERSIONS: tuple[str, ...] = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
DEFAULT_BASE_URL = "http://127.0.0.1:8765"


def tools_list(registry: ToolRegistry) -> dict[str, Any]:
    return {"tools": [entry.describe() for entry in registry.list_tools()]}


def server_card(registry: ToolRegistry) -> dict[str, Any]:
    """The experimental MCP server card (SEP-2127 draft), plus a tool summary for Aleatoric-era crawlers."""
    return {
        "$schema": SERVER_CARD_SCHEMA,
        "name": SERVER_CARD_NAME,
        "title": "quantdesk",
        "version": package_version(),
        "description": "Crypto market simulation, feed normalization, funding and paper-trading tools",
        "remotes": [{
            "type": "streamable-http",
            "url": "{base_url}/mcp",
            "variables": {"base_url": {"description": "Where the server listens", "default": DEFAULT_BASE_URL}},
            "headers": [{"name": "X-API-Key", "description": "A quantdesk API key (quantdesk keys create)",
                         "isRequired": False, "isSecret": True}],
            "supportedProtocolVersions": list(PROTOCOL_VERSIONS),
        }],
        "_meta": {"dev.quantdesk/experimental": "server cards are an experimental MCP extension"},
        "tools": [entry.summary() for entry in registry.list_tools()],
    }


def session_config_schema() -> dict[str, Any]:
    """What a client configures to connect: where the server is and which key to send."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "quantdesk session configuration",
        "type": "object",
        "properties": {
            "baseUrl": {"type": "string", "format": "uri", "default": DEFAULT_BASE_URL,
                        "description": "Base URL of the quantdesk server; MCP is served at {baseUrl}/mcp."},
            "apiKey": {"type": "string", "description": "API key sent as X-API-Key (or Authorization: Bearer). "
                       "Optional when the server runs on loopback with no key configured.",
                       "x-header": "X-API-Key", "writeOnly": True},
            "protocolVersion": {"type": "string", "enum": list(PROTOCOL_VERSIONS),
                                "description": "MCP protocol version to request; any listed version is served."},
        },
        "additionalProperties": False,
    }


WELL_KNOWN_FILES: dict[str, Any] = {
    "mcp.json": server_card,
    "mcp-config.json": lambda _registry: session_config_schema(),
}


def write_well_known(registry: ToolRegistry, folder: Path) -> list[Path]:
    written = []
    for name, build in WELL_KNOWN_FILES.items():
        path = folder / name
        path.write_text(render(build(registry)))
        written.append(path)
    return written
