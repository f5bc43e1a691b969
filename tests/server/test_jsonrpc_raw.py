"""Plain JSON-RPC over HTTP, as curl sends it (the Aleatoric document's `POST /mcp` with X-API-Key)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "curl", "version": "8"}}}
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {}}


def post(server, body, *, headers=None, content=None):
    base = {"Content-Type": "application/json", **server.headers()}
    return httpx.post(f"{server.url}/mcp", json=body if content is None else None, content=content,
                      headers={**base, **(headers or {})}, timeout=30)


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_initialize_echoes_every_handshake_version(server, version):
    response = post(server, {**INIT, "params": {**INIT["params"], "protocolVersion": version}})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["result"]["protocolVersion"] == version
    assert response.json()["result"]["serverInfo"]["name"] == "quantdesk"


def test_an_unknown_future_version_is_answered_with_the_latest_handshake_version(server):
    response = post(server, {**INIT, "params": {**INIT["params"], "protocolVersion": "2099-01-01"}})
    assert response.json()["result"]["protocolVersion"] == "2025-11-25"


def test_a_plain_tools_call_needs_no_handshake(server):
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_health", "arguments": {}}}
    response = post(server, body)
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["status"] == "ok"


def test_bad_arguments_are_an_error_result_not_a_protocol_error(server):
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "get_presets", "arguments": {"name": 7, "extra": 1}}}
    result = post(server, body).json()["result"]
    assert result["isError"] is True
    assert "$.name" in result["content"][0]["text"] and "$.extra" in result["content"][0]["text"]


def test_an_unknown_tool_is_invalid_params(server):
    body = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "nope", "arguments": {}}}
    assert post(server, body).json()["error"]["code"] == -32602


def test_an_unknown_method_is_method_not_found(server):
    body = {"jsonrpc": "2.0", "id": 5, "method": "foo/bar", "params": {}}
    assert post(server, body).json()["error"]["code"] == -32601


def test_invalid_json_is_a_parse_error(server):
    response = post(server, None, content=b'{"jsonrpc": "2.0", "id": ')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_a_notification_is_accepted_without_a_body(server):
    response = post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert response.status_code == 202
    assert response.content == b""


def test_a_2025_03_26_batch_gets_an_array_of_answers(server):
    batch = [{"jsonrpc": "2.0", "id": 10, "method": "ping"},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "get_health", "arguments": {}}}]
    response = post(server, batch, headers={"MCP-Protocol-Version": "2025-03-26"})
    assert response.status_code == 200
    answers = {a["id"]: a for a in response.json()}
    assert answers[10]["result"] == {}
    assert answers[11]["result"]["structuredContent"]["status"] == "ok"


def test_a_batch_is_refused_in_versions_that_removed_batching(server):
    batch = [{"jsonrpc": "2.0", "id": 12, "method": "ping"}]
    response = post(server, batch, headers={"MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


def test_the_2026_07_28_era_is_served_per_request(server):
    body = {"jsonrpc": "2.0", "id": 20, "method": "server/discover", "params": {"_meta": MODERN_META}}
    response = post(server, body, headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"})
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["supportedVersions"] == ["2026-07-28"]
    assert result["capabilities"]["tools"] is not None

    call = {"jsonrpc": "2.0", "id": 21, "method": "tools/call",
            "params": {"name": "get_health", "arguments": {}, "_meta": MODERN_META}}
    response = post(server, call, headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                                           "Mcp-Name": "get_health"})
    assert response.status_code == 200
    assert response.json()["result"]["resultType"] == "complete"
    assert response.json()["result"]["structuredContent"]["status"] == "ok"


def test_an_origin_outside_the_allowlist_is_refused(server):
    response = post(server, INIT, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403


def test_a_host_outside_the_allowlist_is_refused(server):
    response = post(server, INIT, headers={"Host": "evil.example"})
    assert response.status_code == 421


def test_the_endpoint_is_exactly_slash_mcp(server):
    response = post(server, INIT)
    assert response.status_code == 200  # no redirect at /mcp itself
    assert not response.history


def test_a_request_without_a_key_is_unauthorized_and_says_how_to_authenticate(server):
    response = httpx.post(f"{server.url}/mcp", json=INIT, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert "www-authenticate" in response.headers
    assert response.json()["error"]["code"] == -32001


def test_a_key_without_the_mcp_scope_is_forbidden(server):
    response = post(server, INIT, headers={"X-API-Key": server.key("generate")})
    assert response.status_code == 403
    assert "'mcp'" in response.json()["error"]["message"]


def test_a_tool_outside_the_keys_scopes_names_the_missing_scope(server):
    body = {"jsonrpc": "2.0", "id": 30, "method": "tools/call",
            "params": {"name": "emit_ticks", "arguments": {"count": 1}}}
    result = post(server, body, headers={"X-API-Key": server.key("mcp")}).json()["result"]
    assert result["isError"] is True
    assert "'stream'" in result["content"][0]["text"]


def test_bearer_authorization_is_accepted(server):
    response = httpx.post(f"{server.url}/mcp", json=INIT, timeout=30,
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.admin_key}"})
    assert response.status_code == 200


def sse_result(response: httpx.Response) -> dict:
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return [json.loads(d) for d in data if '"result"' in d or '"error"' in d][-1]


def sdk_session(server) -> dict[str, str]:
    sse_headers = {"Accept": "application/json, text/event-stream"}
    init = post(server, {**INIT, "params": {**INIT["params"], "protocolVersion": "2025-11-25"}}, headers=sse_headers)
    session = {**sse_headers, "Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
    post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    return session


def registered_tools(server) -> list[str]:
    return [tool["name"] for tool in httpx.get(f"{server.url}/mcp/tools/list", timeout=30).json()["tools"]]


PARITY_CALLS = [("get_presets", {"name": "eth"}), ("get_presets", {"name": 5}), ("get_presets", {"name": "nope"}),
                ("get_presets", {"bogus": 1}), ("get_config_schema", {}), ("list_venue_ids", {}),
                ("show_blocks", {"steps": 3}), ("fail_unexpectedly", {"steps": 1}), ("no_such_tool", {})]


@pytest.mark.parametrize(("name", "arguments"), PARITY_CALLS)
def test_a_plain_json_call_answers_exactly_as_the_sdk_path_does(server, name, arguments):
    """Plain JSON tools/call is answered by the binding directly; an SDK session must get the same answer:
    results, content blocks of every kind, tool errors, unknown tools and internal errors (request ids aside)."""
    call = {"jsonrpc": "2.0", "id": 40, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    plain = post(server, call).json()
    through_sdk = sse_result(post(server, call, headers=sdk_session(server)))
    if "error" in plain and "request id" in plain["error"]["message"]:
        plain["error"]["message"] = through_sdk["error"]["message"] = "internal error"
    assert plain == through_sdk


def test_every_tool_refuses_an_unknown_argument_alike_on_both_paths(server):
    session = sdk_session(server)
    for name in registered_tools(server):
        call = {"jsonrpc": "2.0", "id": 41, "method": "tools/call",
                "params": {"name": name, "arguments": {"parity_probe": 1}}}
        plain = post(server, call).json()
        assert plain["result"]["isError"] is True, name
        assert "$.parity_probe" in plain["result"]["content"][0]["text"], name
        assert plain == sse_result(post(server, call, headers=session)), name


def test_a_client_that_hangs_up_cancels_a_plain_json_call(server, tmp_path):
    marker = tmp_path / "marker"
    call = {"jsonrpc": "2.0", "id": 41, "method": "tools/call",
            "params": {"name": "wait_until_cancelled", "arguments": {"marker_path": str(marker)}}}
    with pytest.raises(httpx.ReadTimeout):
        post_with_timeout(server, call, timeout=1.0)
    deadline = time.monotonic() + 20
    while marker.read_text() != "cancelled":
        assert time.monotonic() < deadline, "the call was not cancelled when the client went away"
        time.sleep(0.05)


def post_with_timeout(server, body, timeout):
    return httpx.post(f"{server.url}/mcp", json=body, timeout=timeout,
                      headers={"Content-Type": "application/json", **server.headers()})
