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


def test_desk_counters_and_gauges_are_exposed(server_factory, tmp_path):
    desk = server_factory(tmp_path / "desk", extra_env={"QUANTDESK_DESK_CLOCK": "simulated"})
    order = {"symbol": "BTC-USDT-PERP", "side": "buy", "order_type": "market", "quantity": 0.01}
    placed = httpx.post(f"{desk.url}/tools/place_order", json=order, headers=desk.headers(), timeout=60)
    assert placed.status_code == 200, placed.text
    rejected = httpx.post(f"{desk.url}/tools/place_order", json={**order, "quantity": 1000},
                          headers=desk.headers(), timeout=60)
    assert rejected.status_code in (200, 422)
    text = httpx.get(f"{desk.url}/metrics", headers=desk.headers(), timeout=30).text
    assert "quantdesk_orders_submitted_total 2.0" in text
    assert 'quantdesk_fills_by_liquidity_total{liquidity="taker"} 1.0' in text
    assert "# TYPE quantdesk_equity_usd gauge" in text
    assert "quantdesk_control_state 1.0" in text  # running
    assert "quantdesk_event_bus_dropped_total 0.0" in text
    assert "quantdesk_order_rejections_total{code=" in text
