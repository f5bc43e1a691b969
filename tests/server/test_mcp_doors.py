"""The MCP door, through the official SDK client, on every transport: stdio, HTTP handshake era, HTTP 2026-07-28."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from quantdesk.server.registry import ToolRegistry, discover_tools

pytestmark = pytest.mark.anyio
TEST_TOOLS = {"count_slowly", "wait_until_cancelled", "fail_unexpectedly", "emit_ticks", "show_blocks",
              "emit_then_fail"}


def registry_names() -> set[str]:
    return {entry.name for entry in discover_tools(ToolRegistry()).list_tools()} | TEST_TOOLS


async def test_the_negotiated_protocol_matches_the_door(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        expected = "2026-07-28" if door == "http-modern" else "2025-11-25"
        assert client.protocol_version == expected
        assert client.server_info is not None and client.server_info.name == "quantdesk"


async def test_tools_list_pages_through_every_registered_tool(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        names: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await client.list_tools(cursor=cursor)
            names += [tool.name for tool in page.tools]
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert set(names) == registry_names()
        assert names == sorted(names), "tools/list order is deterministic (by name)"
        assert pages == -(-len(names) // 2), "the test servers page two tools at a time"


async def test_an_invalid_cursor_is_invalid_params(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        with pytest.raises(MCPError) as caught:
            await client.list_tools(cursor="not-a-cursor")
        assert caught.value.error.code == -32602


async def test_tools_advertise_schemas_and_annotations(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        tools = {}
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools.update({t.name: t for t in page.tools})
            if (cursor := page.next_cursor) is None:
                break
        health = tools["get_health"]
        assert health.output_schema is not None and "status" in health.output_schema["properties"]
        assert health.annotations is not None and health.annotations.read_only_hint is True
        assert tools["validate_config"].input_schema["required"] == ["config"]
        assert tools["validate_config"].input_schema["additionalProperties"] is False


async def test_a_call_returns_structured_content_and_the_same_json_as_text(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        result = await client.call_tool("get_health", {})
        assert result.is_error is False
        assert result.structured_content is not None
        assert result.structured_content["status"] == "ok"
        assert json.loads(result.content[0].text) == result.structured_content


async def test_invalid_arguments_are_an_error_result_naming_each_field(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        result = await client.call_tool("validate_config", {"config": 5, "bogus": True})
        assert result.is_error is True
        text = result.content[0].text
        assert "$.config" in text and "object" in text
        assert "$.bogus" in text and "not a known field" in text


async def test_an_unknown_tool_is_a_protocol_error(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("no_such_tool", {})
        assert caught.value.error.code == -32602


async def test_an_unexpected_fault_is_an_internal_error_without_details(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("fail_unexpectedly", {"steps": 1})
        assert caught.value.error.code == -32603
        assert "request id" in caught.value.error.message
        assert "passwd" not in caught.value.error.message


async def test_progress_notifications_reach_the_client(door, server, open_mcp):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with open_mcp(door, server) as client:
        result = await client.call_tool("count_slowly", {"steps": 4, "delay_seconds": 0.01},
                                        progress_callback=on_progress)
        assert result.structured_content == {"counted": 4}
    assert [p for p, _, _ in seen] == [1, 2, 3, 4]
    assert seen[-1][1] == 4 and seen[-1][2] == "step 4 of 4"


async def test_a_streaming_tool_returns_its_bounded_batch_with_progress_per_event(door, server, open_mcp):
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with open_mcp(door, server) as client:
        result = await client.call_tool("emit_ticks", {"count": 3}, progress_callback=on_progress)
    assert result.structured_content == {"events": [{"index": 0}, {"index": 1}, {"index": 2}], "count": 3,
                                         "truncated": False}
    assert [json.loads(m or "{}") for m in seen] == [{"index": 0}, {"index": 1}, {"index": 2}]


async def test_cancelling_a_call_stops_the_work_on_the_server(door, server, open_mcp, tmp_path: Path):
    marker = tmp_path / "marker"
    async with open_mcp(door, server) as client:
        async with anyio.create_task_group() as tg:
            async def call() -> None:
                await client.call_tool("wait_until_cancelled", {"marker_path": str(marker)})

            tg.start_soon(call)
            with anyio.fail_after(20):
                while not (marker.exists() and marker.read_text() == "started"):
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
        with anyio.fail_after(20):
            while marker.read_text() != "cancelled":
                await anyio.sleep(0.02)
