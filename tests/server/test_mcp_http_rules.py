"""Streamable HTTP as raw clients meet it: one session rule whatever the Accept header, honest version errors,
batches in sessions, CORS for browser clients, and numbers that JSON cannot carry."""

from __future__ import annotations

import json

import httpx
import pytest

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
JSON_ONLY = {"Accept": "application/json"}
BOTH = {"Accept": "application/json, text/event-stream"}
HEALTH = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_health", "arguments": {}}}


def post(server, body, headers=None, content=None):
    base = {"Content-Type": "application/json", **server.headers()}
    return httpx.post(f"{server.url}/mcp", json=body if content is None else None, content=content,
                      headers={**base, **(headers or {})}, timeout=30)


def answer(response: httpx.Response) -> dict:
    if response.headers["content-type"].startswith("text/event-stream"):
        lines = response.text.splitlines()
        data = [line[5:].strip() for line in lines if line.startswith("data:") and line[5:].strip()]
        return [json.loads(d) for d in data if '"id"' in d][-1]
    return response.json()


def open_session(server) -> dict[str, str]:
    init = post(server, INIT, BOTH)
    assert init.status_code == 200
    session = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-03-26"}
    post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, {**BOTH, **session})
    return session


def test_a_server_that_answered_initialize_without_a_session_never_demands_one(server):
    init = post(server, INIT, JSON_ONLY)
    assert init.status_code == 200 and "mcp-session-id" not in init.headers
    for accept in (BOTH, JSON_ONLY):
        response = post(server, HEALTH, {**accept, "MCP-Protocol-Version": "2025-03-26"})
        assert response.status_code == 200, response.text
        assert answer(response)["result"]["structuredContent"]["status"] == "ok"


def test_a_json_only_client_inside_a_session_is_answered_in_json(server):
    session = open_session(server)
    response = post(server, HEALTH, {**JSON_ONLY, **session})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["result"]["structuredContent"]["status"] == "ok"
    sse = post(server, HEALTH, {**BOTH, **session})
    assert answer(sse)["result"]["structuredContent"]["status"] == "ok"


def test_an_unknown_session_is_not_found_whatever_the_accept_header(server):
    for accept in (BOTH, JSON_ONLY):
        response = post(server, HEALTH, {**accept, "Mcp-Session-Id": "0123456789abcdef"})
        assert response.status_code == 404


@pytest.mark.parametrize("case", ["sse-only accept", "get without session", "delete without session",
                                  "bad initialize params"])
def test_error_replies_create_no_session(server, case):
    if case == "sse-only accept":
        response = post(server, INIT, {"Accept": "text/event-stream"})
    elif case == "get without session":
        response = httpx.get(f"{server.url}/mcp", headers={**server.headers(), **BOTH}, timeout=30)
    elif case == "delete without session":
        response = httpx.delete(f"{server.url}/mcp", headers={**server.headers(), **BOTH}, timeout=30)
    else:
        response = post(server, {**INIT, "params": {"protocolVersion": 7}}, BOTH)
    assert response.status_code >= 400 or "error" in answer(response)
    assert "mcp-session-id" not in response.headers


def test_get_without_a_session_is_method_not_allowed(server):
    response = httpx.get(f"{server.url}/mcp", headers={**server.headers(), **BOTH}, timeout=30)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_an_unsupported_protocol_version_header_names_the_supported_versions(server):
    response = post(server, HEALTH, {"MCP-Protocol-Version": "1999-01-01"})
    assert response.status_code == 400
    body = response.json()
    assert body["id"] == HEALTH["id"]
    assert "2024-11-05" in body["error"]["data"]["supported"] and "2025-11-25" in body["error"]["data"]["supported"]
    assert body["error"]["data"]["requested"] == "1999-01-01"
    assert "_meta" not in body["error"]["message"]


def test_a_batch_inside_a_2025_03_26_session_gets_an_array_of_answers(server):
    session = open_session(server)
    batch = [{"jsonrpc": "2.0", "id": 10, "method": "ping"}, HEALTH | {"id": 11},
             {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    response = post(server, batch, {**BOTH, **session})
    assert response.status_code == 200, response.text
    answers = {a["id"]: a for a in response.json()}
    assert answers[10]["result"] == {}
    assert answers[11]["result"]["structuredContent"]["status"] == "ok"


def test_cors_is_off_unless_an_origin_is_allowed(server, server_factory, tmp_path):
    origin = "https://inspector.example"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,mcp-session-id,x-api-key"}
    refused = httpx.options(f"{server.url}/mcp", headers=preflight, timeout=30)
    assert "access-control-allow-origin" not in refused.headers

    allowing = server_factory(tmp_path / "cors", extra_env={"QUANTDESK_CORS_ORIGINS": origin})
    allowed = httpx.options(f"{allowing.url}/mcp", headers=preflight, timeout=30)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == origin
    assert "mcp-session-id" in allowed.headers["access-control-allow-headers"].lower()
    init = post(allowing, INIT, {**BOTH, "Origin": origin})
    assert init.status_code == 200
    assert "mcp-session-id" in init.headers["access-control-expose-headers"].lower()
    other = post(allowing, INIT, {**BOTH, "Origin": "https://evil.example"})
    assert other.status_code == 403


NAN_CALL = (b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"validate_config",'
            b'"arguments":{"config":{"volatility_annual":NaN}}}}')


def test_nan_is_refused_over_mcp_not_turned_into_null(server):
    for accept in (JSON_ONLY, BOTH):
        result = answer(post(server, None, accept, content=NAN_CALL))["result"]
        assert result["isError"] is True
        assert "$.config.volatility_annual" in result["content"][0]["text"]


def test_infinity_is_refused_over_rest_too(server):
    response = httpx.post(f"{server.url}/tools/validate_config", content=b'{"config": {"volatility_annual": Infinity}}',
                          headers={"Content-Type": "application/json", **server.headers()}, timeout=30)
    assert response.status_code == 422


def test_an_out_of_range_optional_number_names_the_bound_it_broke(server):
    call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "generate_dataset", "arguments": {"config": {"seed": -1}, "duration_seconds": 604801}}}
    text = post(server, call).json()["result"]["content"][0]["text"]
    assert "$.duration_seconds" in text and "604800" in text
    assert "$.config.seed" in text and "minimum" in text
    assert "'null'" not in text
