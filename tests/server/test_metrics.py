"""Prometheus exposition: per-tool calls, errors by kind, latency, process metrics."""

from __future__ import annotations

import httpx


def test_metrics_count_calls_errors_and_latency_per_tool(server):
    headers = server.headers()
    httpx.post(f"{server.url}/tools/get_health", json={}, headers=headers)
    httpx.post(f"{server.url}/tools/get_presets", json={"name": 5}, headers=headers)
    httpx.post(f"{server.url}/tools/get_presets", json={"name": "nope"}, headers=headers)
    text = httpx.get(f"{server.url}/metrics", headers=headers).text
    assert 'quantdesk_tool_calls_total{door="rest-native",tool="get_health"}' in text
    assert 'quantdesk_tool_errors_total{kind="invalid_argument",tool="get_presets"}' in text
    assert 'quantdesk_tool_errors_total{kind="not_found",tool="get_presets"}' in text
    assert 'quantdesk_tool_latency_seconds_bucket{le="0.005",tool="get_health"}' in text
    assert "process_resident_memory_bytes" in text
    assert "quantdesk_tools_registered" in text


def test_metrics_are_prometheus_text(server):
    response = httpx.get(f"{server.url}/metrics", headers=server.headers())
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE quantdesk_tool_calls_total counter" in response.text


def test_health_is_public_and_shaped_like_aleatoric(server):
    body = httpx.get(f"{server.url}/health").json()
    assert body["status"] == "ok"
    assert set(body) >= {"status", "version", "timestamp"}
