"""Client mistakes on REST get a clear error in the door's format, never a 500."""

from __future__ import annotations

import httpx


def post(server, path, content, headers=None):
    return httpx.post(f"{server.url}{path}", content=content, timeout=30,
                      headers={"Content-Type": "application/json", **server.headers(), **(headers or {})})


def test_malformed_json_names_the_problem(server):
    response = post(server, "/tools/validate_config", b'{"config": {')
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"][0]["msg"]


def test_a_body_that_is_not_an_object_is_refused(server):
    response = post(server, "/tools/get_presets", b"[1, 2]")
    assert response.status_code == 422


def test_wrong_types_and_unknown_fields_are_each_named(server):
    response = post(server, "/tools/get_presets", b'{"name": 3, "colour": "red"}')
    assert response.status_code == 422
    locs = [d["loc"] for d in response.json()["detail"]]
    assert ["name"] in locs and ["colour"] in locs


def test_an_oversized_body_is_413_with_the_limit(server):
    limit = 16 * 1024 * 1024
    response = post(server, "/tools/validate_config", b'{"config": "' + b"x" * (limit + 10) + b'"}')
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]


def test_an_oversized_chunked_body_is_413(server):
    def chunks():
        yield b'{"config": "'
        for _ in range(17):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = httpx.post(f"{server.url}/tools/validate_config", content=chunks(), timeout=30,
                          headers={"Content-Type": "application/json", **server.headers()})
    assert response.status_code == 413
    request_id = response.headers["x-request-id"]
    lines = [line for line in server.log().splitlines() if request_id in line]
    assert not any('"level":"error"' in line for line in lines), "the 413 must not be followed by a server error"


def test_unknown_routes_are_404_and_wrong_methods_405(server):
    assert httpx.get(f"{server.url}/no/such/route", headers=server.headers()).status_code == 404
    assert httpx.get(f"{server.url}/tools/get_health", headers=server.headers()).status_code == 405
    assert httpx.put(f"{server.url}/mcp", headers=server.headers()).status_code == 405


def test_errors_carry_a_request_id(server):
    response = post(server, "/tools/get_presets", b'{"name": 3}')
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_an_unexpected_fault_is_a_500_without_details(server):
    response = post(server, "/tools/fail_unexpectedly", b'{"steps": 1}')
    assert response.status_code == 500
    assert "passwd" not in response.text
    assert response.json()["request_id"] in server.log()
