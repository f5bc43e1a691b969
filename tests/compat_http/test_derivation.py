"""A throwaway tool plus one table row gets a route, validation, an OpenAPI entry and auth, with no other code."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import Field

from quantdesk.server.app import create_app
from quantdesk.server.auth import KeyStore
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.server.rest_rows import Profile, Row
from quantdesk.server.settings import Settings
from quantdesk.server.state import StateStore

ADMIN = "qd_derivation_admin_key_000000000000"
throwaway = ToolSet("throwaway")


class GreetInput(ToolInput):
    name: str = Field(min_length=1, description="Who to greet.")
    times: int = Field(1, ge=1, le=5, description="How many greetings.")
    shout: bool = False


class GreetOutput(ToolOutput):
    greeting: str


@throwaway.tool(scope="trade", read_only=True)
async def greet_someone(args: GreetInput, ctx: CallContext) -> GreetOutput:
    """Greet someone, a number of times."""
    text = " ".join([f"Hello {args.name}"] * args.times)
    return GreetOutput(greeting=text.upper() if args.shout else text)


PROFILE = Profile("throwaway", "Throwaway", (Row("GET", "/throwaway/{name}/greet", "greet_someone"),))


@pytest.fixture
def running(tmp_path: Path, threaded_server):
    app = create_app(Settings(data_dir=tmp_path, env_api_key=ADMIN), extra_toolsets=[throwaway],
                     extra_profiles=[PROFILE])
    state = StateStore(tmp_path / "quantdesk.sqlite3")
    keys = KeyStore(state)
    trade = keys.create(frozenset({"trade"}))[1]
    read = keys.create(frozenset({"read"}))[1]
    state.close()
    with threaded_server(app) as server:
        yield server, trade, read


def test_the_row_becomes_a_route_that_calls_the_tool(running):
    server, trade, _ = running
    response = httpx.get(f"{server.url}/throwaway/Ada/greet", params={"times": "2", "shout": "true"},
                         headers={"X-API-Key": trade})
    assert response.status_code == 200
    assert response.json() == {"greeting": "HELLO ADA HELLO ADA"}


def test_the_route_validates_with_the_tools_schema(running):
    server, trade, _ = running
    headers = {"X-API-Key": trade}
    bad_type = httpx.get(f"{server.url}/throwaway/Ada/greet", params={"times": "many"}, headers=headers)
    assert bad_type.status_code == 422
    assert bad_type.json()["detail"][0]["loc"] == ["times"]
    out_of_bounds = httpx.get(f"{server.url}/throwaway/Ada/greet", params={"times": "9"}, headers=headers)
    assert out_of_bounds.status_code == 422
    assert "maximum" in out_of_bounds.json()["detail"][0]["msg"]
    unknown = httpx.get(f"{server.url}/throwaway/Ada/greet", params={"volume": "11"}, headers=headers)
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["volume"]


def test_the_route_applies_the_tools_scope(running):
    server, _, read = running
    assert httpx.get(f"{server.url}/throwaway/Ada/greet").status_code == 401
    forbidden = httpx.get(f"{server.url}/throwaway/Ada/greet", headers={"X-API-Key": read})
    assert forbidden.status_code == 403
    assert "'trade'" in forbidden.json()["detail"]


def test_the_route_has_an_openapi_entry_from_the_tool_schema(running):
    server, _, _ = running
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operation = spec["paths"]["/throwaway/{name}/greet"]["get"]
    assert operation["x-quantdesk-tool"] == "greet_someone"
    assert operation["x-quantdesk-scopes"] == ["trade"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["name"]["in"] == "path" and params["name"]["required"] is True
    assert params["times"]["in"] == "query" and params["times"]["schema"]["maximum"] == 5
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["properties"]["greeting"]["type"] == "string"
    assert {"ApiKeyHeader": []} in operation["security"]
    assert "ApiKeyHeader" in spec["components"]["securitySchemes"]


def test_the_tool_is_also_on_the_native_route_and_over_mcp(running):
    server, trade, _ = running
    response = httpx.post(f"{server.url}/tools/greet_someone", json={"name": "Bo"}, headers={"X-API-Key": trade})
    assert response.json() == {"greeting": "Hello Bo"}
    listed = httpx.get(f"{server.url}/mcp/tools/list").json()["tools"]
    assert "greet_someone" in {t["name"] for t in listed}


def test_a_row_naming_an_argument_the_tool_lacks_fails_at_start(tmp_path):
    broken = Profile("broken", "Broken", (Row("GET", "/broken/{nobody}", "greet_someone"),))
    with pytest.raises(ValueError, match="nobody"):
        create_app(Settings(data_dir=tmp_path, env_api_key=ADMIN), extra_toolsets=[throwaway],
                   extra_profiles=[broken])
