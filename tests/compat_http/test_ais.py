"""The AIS document's curl examples, replayed verbatim against `quantdesk serve --compat ais:PORT`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ais(tmp_path_factory: pytest.TempPathFactory, module_server_factory: Any) -> Any:
    port = free_port()
    server = module_server_factory(tmp_path_factory.mktemp("ais"), args=("--compat", f"ais:{port}"),
                                   extra_env={"QUANTDESK_DESK_CLOCK": "simulated"})
    server.ais_url = f"http://127.0.0.1:{port}"
    return server


def curl(ais: Any, command: str) -> Any:
    """Run one of the document's commands with its base URL replaced, as a shell would."""
    env = {**os.environ, "AIS_API_KEY": ais.admin_key}
    shell = command.replace("http://localhost:8000", ais.ais_url)
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_health_is_public_with_component_status(ais):
    body = curl(ais, "curl -s http://localhost:8000/health | python -m json.tool")
    assert body["status"] == "ok"
    assert all(isinstance(body[k], bool) for k in ("engine_ok", "ledger_ok", "feed_ok", "control_store_ok"))


def test_metrics_are_public_prometheus_text(ais):
    text = httpx.get(f"{ais.ais_url}/metrics", timeout=30).text
    assert "quantdesk_control_state" in text


def test_the_documented_control_session(ais):
    assert curl(ais, 'curl -s -H "Authorization: Bearer $AIS_API_KEY" http://localhost:8000/control/mode') == \
        {"default_mode": "paper"}
    status = curl(ais, 'curl -s -H "Authorization: Bearer $AIS_API_KEY" http://localhost:8000/control/status')
    assert status["state"] == "running"

    order = {"symbol": "BTC-USDT-PERP", "side": "buy", "order_type": "limit", "quantity": 0.01, "price": 50000}
    placed = httpx.post(f"{ais.url}/tools/place_order", json=order, headers=ais.headers(), timeout=60).json()
    assert placed["order"]["status"] == "open"

    paused = curl(ais, """curl -s -X POST \\
      -H "Authorization: Bearer $AIS_API_KEY" \\
      -H "Content-Type: application/json" \\
      -d '{"reason": "manual review"}' \\
      http://localhost:8000/control/pause""")
    assert paused["state"] == "paused" and paused["reason"] == "manual review"
    resumed = curl(ais, """curl -s -X POST \\
      -H "Authorization: Bearer $AIS_API_KEY" \\
      http://localhost:8000/control/resume""")
    assert resumed["state"] == "running"

    killed = curl(ais, """curl -s -X POST \\
      -H "Authorization: Bearer $AIS_API_KEY" \\
      -H "Content-Type: application/json" \\
      -d '{"reason": "drawdown exceeded manual threshold"}' \\
      http://localhost:8000/control/kill-switch""")
    assert killed["action"] == "killed" and killed["reason"] == "drawdown exceeded manual threshold"
    assert [c["order_id"] for c in killed["cancelled"]] == [placed["order"]["order_id"]]
    assert {"tool": "cancel_all_orders", "symbol": "BTCUSDT"} in killed["cancel_instructions"]

    refused = curl(ais, """curl -s -X POST \\
      -H "Authorization: Bearer $AIS_API_KEY" \\
      http://localhost:8000/control/resume""")
    assert refused["action"] == "refused" and refused["state"] == "killed"

    cancelled = curl(ais, """curl -s -X POST \\
      -H "Authorization: Bearer $AIS_API_KEY" \\
      -H "Content-Type: application/json" \\
      -d '{"symbols": ["BTCUSDT", "ETHUSDT"]}' \\
      http://localhost:8000/control/cancel-all""")
    assert cancelled["cancelled"] == [] and cancelled["count"] == 0

    deleveraged = curl(ais, """curl -s -X POST \\
      -H "Authorization: Bearer $AIS_API_KEY" \\
      -H "Content-Type: application/json" \\
      -d '{"symbol": "BTCUSDT", "reduce_pct": 0.5}' \\
      http://localhost:8000/control/deleverage""")
    assert deleveraged["action"] == "no_position"

    decisions = curl(ais, 'curl -s -H "Authorization: Bearer $AIS_API_KEY" '
                          "http://localhost:8000/reports/decisions | python -m json.tool")
    assert isinstance(decisions, list) and decisions
    assert {"decision_id", "timestamp", "decision_type", "agent_votes", "risk_passed", "risk_reasons"} <= \
        set(decisions[0])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_a_missing_or_wrong_token_is_401_with_detail(ais, headers):
    response = httpx.get(f"{ais.ais_url}/control/status", headers=headers, timeout=30)
    assert response.status_code == 401
    assert "detail" in response.json()


def test_a_bad_body_is_422_with_detail(ais):
    response = httpx.post(f"{ais.ais_url}/control/deleverage", json={"symbol": "BTCUSDT", "reduce_pct": 2},
                          headers={"Authorization": f"Bearer {ais.admin_key}"}, timeout=30)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["reduce_pct"]


def test_only_the_ais_routes_are_on_its_listener(ais):
    assert httpx.post(f"{ais.ais_url}/tools/get_health", json={}, timeout=30).status_code == 404
    assert httpx.get(f"{ais.ais_url}/docs", timeout=30).status_code == 200
    # on the main port, /health stays quantdesk's own; AIS's control routes are there too
    assert "engine_ok" not in httpx.get(f"{ais.url}/health", timeout=30).json()
    status = httpx.get(f"{ais.url}/control/status", headers=ais.headers(), timeout=30)
    assert status.status_code == 200
