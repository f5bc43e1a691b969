"""SSE streams tell the truth: errors known before the first byte get their status, later ones an `event: error`;
streams count in the call metrics; an abandoned replay lets go of its file."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

SSE = {"Accept": "text/event-stream"}


def events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        kind = next((line[6:].strip() for line in lines if line.startswith("event:")), "message")
        data = "\n".join(line[5:].strip() for line in lines if line.startswith("data:"))
        out.append((kind, data))
    return out


@pytest.mark.parametrize(("path", "status"), [("/mcp/caches/stream/no_such_key", 404),
                                              ("/stream/live?preset=no_such_preset&max_events=1", 404),
                                              ("/stream/live?speed=-1", 422)])
def test_a_stream_that_cannot_start_answers_its_status_before_any_byte(server, path, status):
    response = httpx.get(f"{server.url}{path}", headers={**server.headers(), **SSE}, timeout=30)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert "detail" in response.json()


def test_a_stream_that_fails_midway_ends_with_an_error_event_that_leaks_nothing(server):
    response = httpx.post(f"{server.url}/tools/emit_then_fail", json={"count": 3},
                          headers={**server.headers(), **SSE}, timeout=30)
    assert response.status_code == 200
    received = events(response.text)
    assert [json.loads(data)["index"] for kind, data in received[:3]] == [0, 1, 2]
    kind, data = received[-1]
    assert kind == "error"
    body = json.loads(data)
    assert "request id" in body["detail"] and "shadow" not in response.text


def test_streams_are_counted_in_the_call_metrics(server):
    httpx.post(f"{server.url}/tools/emit_ticks", json={"count": 2}, headers={**server.headers(), **SSE}, timeout=30)
    httpx.post(f"{server.url}/tools/emit_then_fail", json={"count": 1}, headers={**server.headers(), **SSE},
               timeout=30)
    metrics = httpx.get(f"{server.url}/metrics", headers=server.headers(), timeout=30).text
    assert 'quantdesk_tool_calls_total{door="rest-native",tool="emit_ticks"}' in metrics
    assert 'quantdesk_tool_errors_total{kind="internal",tool="emit_then_fail"}' in metrics


def open_files(pid: int, fragment: str) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += fragment in os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return count


def test_an_abandoned_replay_releases_its_file(server):
    generated = httpx.post(f"{server.url}/tools/generate_dataset", headers=server.headers(), timeout=120,
                           json={"config": {"symbol": "BTC", "seed": 5}, "duration_seconds": 600}).json()
    key = generated["cache_key"]
    for _ in range(5):
        with httpx.stream("GET", f"{server.url}/mcp/caches/stream/{key}?speed=1", headers=server.headers(),
                          timeout=30) as response:
            assert response.status_code == 200
            next(response.iter_lines())
    assert server.proc is not None
    deadline = time.monotonic() + 20
    while open_files(server.proc.pid, key) > 0:
        assert time.monotonic() < deadline, "the server still holds the artifact open after the clients left"
        time.sleep(0.1)
