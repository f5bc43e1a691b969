"""MCP resources, prompts, completion and subscriptions, through the official client on every door."""

from __future__ import annotations

import base64
import io
import json
import warnings

import anyio
import mcp.types as types
import pyarrow.parquet as pq
import pytest
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio
TINY = {"config": {"symbol": "BTC", "seed": 11}, "duration_seconds": 60}


async def every_resource(client) -> list[types.Resource]:
    found, cursor = [], None
    while True:
        page = await client.list_resources(cursor=cursor)
        found += page.resources
        if (cursor := page.next_cursor) is None:
            return found


async def generated_key(client) -> str:
    result = await client.call_tool("generate_dataset", TINY)
    assert result.is_error is False, result.content[0].text
    return str(result.structured_content["cache_key"])


async def test_a_generated_artifact_is_listed_and_reads_back_as_its_parquet_file(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        key = await generated_key(client)
        listed = {str(r.uri): r for r in await every_resource(client)}
        uri = f"quantdesk://artifacts/{key}.parquet"
        assert uri in listed and "quantdesk://caches/stats" in listed
        assert listed[uri].mime_type == "application/vnd.apache.parquet"
        contents = (await client.read_resource(uri)).contents[0]
        assert isinstance(contents, types.BlobResourceContents)
        data = base64.b64decode(contents.blob)
        assert len(data) == listed[uri].size
        assert pq.read_table(io.BytesIO(data)).num_rows > 0


async def test_the_link_in_a_generation_result_is_a_readable_resource(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        result = await client.call_tool("generate_dataset", TINY)
        link = next(block for block in result.content if isinstance(block, types.ResourceLink))
        contents = (await client.read_resource(str(link.uri))).contents[0]
        assert isinstance(contents, types.BlobResourceContents)
        assert len(base64.b64decode(contents.blob)) == link.size


async def test_json_resources_equal_the_tools_they_come_from(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        key = await generated_key(client)
        stats = json.loads((await client.read_resource("quantdesk://caches/stats")).contents[0].text)
        assert stats == (await client.call_tool("get_cache_stats", {})).structured_content
        manifest_uri = f"quantdesk://artifacts/{key}.manifest.json"
        manifest = json.loads((await client.read_resource(manifest_uri)).contents[0].text)
        tool = (await client.call_tool("get_cache_manifest", {"cache_key": key})).structured_content
        assert manifest == tool["manifest"]


async def test_templates_are_listed_with_their_variables(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        templates, cursor = [], None
        while True:
            page = await client.list_resource_templates(cursor=cursor)
            templates += [t.uri_template for t in page.resource_templates]
            if (cursor := page.next_cursor) is None:
                break
        assert "quantdesk://artifacts/{cache_key}.parquet" in templates


async def test_an_unknown_resource_is_a_not_found_error_naming_the_uri(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        for uri in ("quantdesk://nothing/here", "quantdesk://artifacts/no_such_key.parquet"):
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            expected = -32602 if door == "http-modern" else -32002
            assert caught.value.error.code == expected
            assert caught.value.error.data == {"uri": uri}


async def test_an_artifact_over_the_size_limit_is_refused_with_the_download_path(server_factory, tmp_path, open_mcp):
    small = server_factory(tmp_path / "small", extra_env={"QUANTDESK_MAX_RESOURCE_BYTES": "1000"})
    async with open_mcp("http-legacy", small) as client:
        key = await generated_key(client)
        with pytest.raises(MCPError) as caught:
            await client.read_resource(f"quantdesk://artifacts/{key}.parquet")
        assert caught.value.error.code == -32602
        assert f"/artifacts/{key}.parquet" in caught.value.error.message


async def test_prompts_are_listed_and_rendered_with_their_arguments(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        names = {p.name: p for p in (await client.list_prompts()).prompts}
        assert "analyze_funding_costs" in names
        assert [a.name for a in names["analyze_funding_costs"].arguments if a.required] == ["exchange"]
        prompt = await client.get_prompt("analyze_funding_costs", {"exchange": "okx", "days": "7"})
        text = prompt.messages[0].content.text
        assert "okx" in text and "7 days" in text and "simulate_funding_regime" in text


async def test_a_prompt_without_its_required_argument_is_invalid_params(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("analyze_funding_costs", {})
        assert caught.value.error.code == -32602 and "exchange" in caught.value.error.message
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("no_such_prompt", {})
        assert caught.value.error.code == -32602


async def test_completion_offers_the_cache_keys_of_the_artifact_template(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        key = await generated_key(client)
        ref = types.ResourceTemplateReference(uri="quantdesk://artifacts/{cache_key}.parquet")
        completion = await client.complete(ref, {"name": "cache_key", "value": key[:8]})
        assert key in completion.completion.values
        assert all(v.startswith(key[:8]) for v in completion.completion.values)


async def test_a_handshake_session_is_told_when_the_cache_stats_change(door, server, open_mcp):
    if door == "http-modern":
        pytest.skip("2026-07-28 has no resources/subscribe; see the listen test")
    updates: list[str] = []
    got = anyio.Event()

    async def on_message(message) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            updates.append(str(message.params.uri))
            got.set()

    async with open_mcp(door, server, message_handler=on_message) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK marks resources/subscribe as removed in 2026-07-28
            await client.subscribe_resource("quantdesk://caches/stats")
        await generated_key(client)
        with anyio.fail_after(20):
            await got.wait()
    assert updates[0] == "quantdesk://caches/stats"


async def test_a_modern_listen_stream_carries_resource_updates(server, open_mcp):
    async with open_mcp("http-modern", server) as client:
        async with client.listen(resource_subscriptions=["quantdesk://caches/stats"]) as subscription:
            await generated_key(client)
            with anyio.fail_after(20):
                event = await subscription.__anext__()
        assert getattr(event, "uri", None) == "quantdesk://caches/stats"


async def test_every_venue_is_a_resource_equal_to_its_details(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        listed = {str(r.uri) for r in await every_resource(client)}
        assert {"quantdesk://venues/okx", "quantdesk://venues/binance"} <= listed
        document = json.loads((await client.read_resource("quantdesk://venues/okx")).contents[0].text)
        assert document == (await client.call_tool("get_venue_details", {"exchange": "okx"})).structured_content
