"""Registry rules that every domain relies on."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolRegistry, ToolSet


class In(ToolInput):
    x: int


class Out(ToolOutput):
    y: int


def make(name: str, domain: str = "a") -> ToolSet:
    toolset = ToolSet(domain)

    @toolset.tool(scope="read", name=name)
    async def handler(args: In, ctx: CallContext) -> Out:
        """Doc."""
        return Out(y=args.x)

    return toolset


def test_two_tools_with_one_name_fail_instead_of_shadowing():
    registry = ToolRegistry()
    registry.add_toolset(make("same", "a"))
    with pytest.raises(ValueError, match="duplicate tool name 'same'"):
        registry.add_toolset(make("same", "b"))


def test_a_tool_without_a_description_is_refused():
    toolset = ToolSet("a")
    with pytest.raises(ValueError, match="docstring"):
        @toolset.tool(scope="read")
        async def undocumented(args: In, ctx: CallContext) -> Out:
            return Out(y=1)


def test_an_unknown_scope_is_refused():
    toolset = ToolSet("a")
    with pytest.raises(ValueError, match="unknown scope"):
        @toolset.tool(scope="root")
        async def tool(args: In, ctx: CallContext) -> Out:
            """Doc."""
            return Out(y=1)


def test_a_streaming_tool_must_name_its_event_model():
    toolset = ToolSet("a")

    class Event(BaseModel):
        n: int

    @toolset.stream(scope="stream", event_model=Event)
    async def ticks(args: In, ctx: CallContext):  # type: ignore[no-untyped-def]
        """Doc."""
        yield Event(n=1)

    entry = toolset.entries[0]
    assert entry.streaming and entry.output_schema["properties"]["count"]["type"] == "integer"


def test_input_schemas_forbid_unknown_fields():
    entry = make("t").entries[0]
    assert entry.input_schema["additionalProperties"] is False
    assert entry.input_schema["required"] == ["x"]


def test_every_registered_schema_is_valid_json_schema_2020_12():
    # Checked here, not at start-up: the check costs every server start and the schemas only change with the code.
    import jsonschema

    from quantdesk.server.registry import discover_tools

    for entry in discover_tools(ToolRegistry()).list_tools():
        jsonschema.Draft202012Validator.check_schema(entry.input_schema)
        jsonschema.Draft202012Validator.check_schema(entry.output_schema)
        assert "title" not in entry.input_schema, entry.name


def test_a_resource_naming_an_unknown_tool_fails_at_start_up():
    toolset = make("t")
    toolset.resource("quantdesk://x/{id}", tool="nope", name="x", title="X", description="X.")
    registry = ToolRegistry()
    registry.add_toolset(toolset)
    with pytest.raises(ValueError, match="unknown tool 'nope'"):
        registry.check_references()


# The tools quantdesk had when tools/list measured 92 KB (issue 7); new tools come on top.
FOUNDATION_TOOLS = {"clear_caches", "delete_cache", "describe_dataset", "export_cache", "generate_dataset",
                    "get_cache_manifest", "get_cache_stats", "get_config_schema", "get_health", "get_manifest",
                    "get_presets", "get_venue_details", "list_venue_ids", "normalize_events", "normalize_file",
                    "plot_dataset", "simulate_funding_regime", "stream_cache", "stream_live", "validate_config"}


def test_tools_list_of_the_foundation_tools_stays_under_45_kb():
    import orjson

    from quantdesk.server.mcp_binding import tool_definition
    from quantdesk.server.registry import discover_tools

    entries = [e for e in discover_tools(ToolRegistry()).list_tools() if e.name in FOUNDATION_TOOLS]
    assert {e.name for e in entries} == FOUNDATION_TOOLS
    wire = [tool_definition(e).model_dump(mode="json", by_alias=True, exclude_none=True) for e in entries]
    assert len(orjson.dumps(wire)) < 45_000
