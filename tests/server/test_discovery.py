"""Discovery documents: generated from the registry, served live, and kept in parity with the files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from quantdesk.schemas.export import SCHEMA_FILES, render, schema_document
from quantdesk.server.discovery import PROTOCOL_VERSIONS, WELL_KNOWN_FILES
from quantdesk.server.discovery import render as render_discovery
from quantdesk.server.registry import ToolRegistry, discover_tools

REPO = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"count_slowly", "wait_until_cancelled", "fail_unexpectedly", "emit_ticks", "show_blocks",
              "emit_then_fail"}


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return discover_tools(ToolRegistry())


@pytest.mark.parametrize("name", sorted(WELL_KNOWN_FILES))
def test_well_known_files_match_the_live_registry(registry, name):
    expected = render_discovery(WELL_KNOWN_FILES[name](registry))
    actual = (REPO / ".well-known" / name).read_text()
    assert actual == expected, f".well-known/{name} drifted: run `make generated`"


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schema_files_match_the_models(name):
    expected = render(schema_document(SCHEMA_FILES[name]))
    assert (REPO / "schemas" / name).read_text() == expected, f"schemas/{name} drifted: run `make generated`"


def test_the_readme_tool_list_matches_the_registry(registry):
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- tools:start -->")[1].split("<!-- tools:end -->")[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", block, flags=re.M)
    assert listed == [entry.name for entry in registry.list_tools()], "README tool list drifted"


def test_the_server_card_is_served_and_equals_the_file(server):
    live = httpx.get(f"{server.url}/.well-known/mcp.json").json()
    on_disk = json.loads((REPO / ".well-known" / "mcp.json").read_text())
    shipped = {t["name"] for t in on_disk["tools"]}
    assert [t for t in live["tools"] if t["name"] in shipped] == on_disk["tools"]
    assert {t["name"] for t in live["tools"]} - shipped == TEST_TOOLS, "only the test plugin's tools are extra"
    assert live["remotes"][0]["supportedProtocolVersions"] == list(PROTOCOL_VERSIONS)
    assert {"name", "version", "description", "remotes"} <= set(live)
    card = httpx.get(f"{server.url}/mcp/server-card")
    assert card.headers["content-type"] == "application/mcp-server-card+json"
    assert card.headers["access-control-allow-origin"] == "*"


def test_session_config_schema_is_served(server):
    schema = httpx.get(f"{server.url}/.well-known/mcp-config").json()
    assert schema["type"] == "object" and "apiKey" in schema["properties"]


def test_public_tools_list_matches_what_mcp_lists(server):
    listed = httpx.get(f"{server.url}/mcp/tools/list").json()["tools"]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    names, cursor = [], None
    while True:
        params = {"cursor": cursor} if cursor else {}
        result = httpx.post(f"{server.url}/mcp", json={**body, "params": params},
                            headers={"Content-Type": "application/json", **server.headers()}).json()["result"]
        names += [t["name"] for t in result["tools"]]
        if not (cursor := result.get("nextCursor")):
            break
    assert [t["name"] for t in listed] == names


def test_the_aleatoric_manifest_route_describes_every_tool(server):
    manifest = httpx.get(f"{server.url}/mcp/manifest", headers=server.headers()).json()
    assert manifest["name"] == "quantdesk"
    assert "2024-11-05" in manifest["protocol_versions"]
    tool = next(t for t in manifest["tools"] if t["name"] == "generate_dataset" or t["name"] == "validate_config")
    assert "inputSchema" in tool and "scope" in tool
