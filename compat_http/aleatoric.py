"""Aleatoric engine 0.4.7 (seeds/000): the `/mcp/*` REST routes and `/data/*`, all derived from tools.

Aleatoric's "direct HTTP endpoints" all required the `mcp` scope; generation required `generate`.
"""

from __future__ import annotations

from typing import Any

from quantdesk.server.registry import CallOutcome
from quantdesk.server.rest_rows import Profile, Row

MCP = ("mcp",)


def _with_hash(outcome: CallOutcome) -> dict[str, Any]:
    # Aleatoric's validate_config answered with `hash`; ours is `manifest_hash`. Clients read either.
    return {**outcome.structured, "hash": outcome.structured.get("manifest_hash")}


_GENERATE_ARGS = {"config", "duration_seconds", "driver", "use_cache", "wait"}


def _generate_body(args: dict[str, Any]) -> dict[str, Any]:
    # The Aleatoric MCP tool took the manifest fields flat (symbol, seed, tick_size, ...); nest them.
    if "config" in args:
        return args
    return {**{k: v for k, v in args.items() if k in _GENERATE_ARGS},
            "config": {k: v for k, v in args.items() if k not in _GENERATE_ARGS}}


def _config_body(args: dict[str, Any]) -> dict[str, Any]:
    # Aleatoric clients post the manifest itself or wrap it as {"config": ...}; accept both. An empty body is
    # neither: the tool answers that `config` is required, as the OpenAPI document says.
    return args if not args or set(args) == {"config"} else {"config": args}


ROWS: tuple[Row, ...] = (
    Row("GET", "/mcp/health", "get_health", scopes=MCP),
    Row("GET", "/mcp/manifest", "get_manifest", scopes=MCP),
    Row("GET", "/mcp/config/schema", "get_config_schema", scopes=MCP),
    Row("GET", "/mcp/presets", "get_presets", scopes=MCP),
    Row("POST", "/mcp/config/validate", "validate_config", scopes=MCP, request=_config_body, response=_with_hash,
        extra_properties={"hash": {"type": ["string", "null"], "description": "Aleatoric's name for manifest_hash."}}),
    Row("POST", "/mcp/simulate_funding_regime", "simulate_funding_regime", scopes=MCP),
    Row("GET", "/mcp/venues/{exchange}", "get_venue_details", scopes=MCP),
    Row("POST", "/mcp/normalize", "normalize_events", scopes=MCP, sse_when="stream"),
    Row("POST", "/data/generate", "generate_dataset", request=_generate_body),
    Row("POST", "/mcp/generate_dataset", "generate_dataset", scopes=MCP, request=_generate_body),
    Row("GET", "/stream/live", "stream_live", stream=True),
    Row("GET", "/mcp/caches/stats", "get_cache_stats", scopes=MCP),
    Row("GET", "/mcp/caches/{cache_key}/manifest", "get_cache_manifest", scopes=MCP),
    Row("GET", "/mcp/caches/export/{cache_key}", "export_cache", scopes=MCP, file=True),
    Row("GET", "/mcp/caches/stream/{cache_key}", "stream_cache", scopes=MCP, stream=True),
    Row("DELETE", "/mcp/caches/{cache_key}", "delete_cache", scopes=MCP),
    Row("DELETE", "/mcp/caches", "clear_caches", scopes=MCP),
)

PROFILE = Profile("aleatoric", "Aleatoric", ROWS)
