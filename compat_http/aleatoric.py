"""Aleatoric engine 0.4.7 (seeds/000): the `/mcp/*` REST routes and `/data/*`, all derived from tools.

Aleatoric's "direct HTTP endpoints" all required the `mcp` scope; generation required `generate`.
"""

from __future__ import annotations

from typing import Any

from quantdesk.compat_http.rows import Profile, Row
from quantdesk.server.registry import CallOutcome

MCP = ("mcp",)


def _with_hash(outcome: CallOutcome) -> dict[str, Any]:
    # Aleatoric's validate_config answered with `hash`; ours is `manifest_hash`. Clients read either.
    return {**outcome.structured, "hash": outcome.structured.get("manifest_hash")}


def _config_body(args: dict[str, Any]) -> dict[str, Any]:
    # Aleatoric clients post the manifest itself or wrap it as {"config": ...}; accept both.
    return args if set(args) == {"config"} else {"config": args}


ROWS: tuple[Row, ...] = (
    Row("GET", "/mcp/health", "get_health", scopes=MCP),
    Row("GET", "/mcp/manifest", "get_manifest", scopes=MCP),
    Row("GET", "/mcp/config/schema", "get_config_schema", scopes=MCP),
    Row("GET", "/mcp/presets", "get_presets", scopes=MCP),
    Row("POST", "/mcp/config/validate", "validate_config", scopes=MCP, request=_config_body, response=_with_hash),
    Row("POST", "/mcp/simulate_funding_regime", "simulate_funding_regime", scopes=MCP),
)

PROFILE = Profile("aleatoric", "Aleatoric", ROWS)
