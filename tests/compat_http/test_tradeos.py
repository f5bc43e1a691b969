"""The TRADEOS document's routes (seeds/004) against `quantdesk serve --compat tradeos:PORT --compat
tradeos-metrics:PORT` on a simulated clock: each answers in the document's shape, bad input gets a clear error
and changes nothing, and the WebSocket delivers each message type from the one event bus."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest
import websockets


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tradeos(tmp_path_factory: pytest.TempPathFactory, module_server_factory: Any) -> Any:
    port, metrics_port = free_port(), free_port()
    server = module_server_factory(tmp_path_factory.mktemp("tradeos"),
                                   args=("--compat", f"tradeos:{port}", "--compat", f"tradeos-metrics:{metrics_port}"),
                                   extra_env={"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_DESK_SEED": "5"})
    server.tradeos_url = f"http://127.0.0.1:{port}"
    server.metrics_url = f"http://127.0.0.1:{metrics_port}"
    server.ws_url = f"ws://127.0.0.1:{port}"
    return server


def auth(server: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def get(server: Any, path: str, base: str | None = None, **params: Any) -> httpx.Response:
    return httpx.get(f"{base or server.tradeos_url}{path}", params=params, headers=auth(server), timeout=120)


def post(server: Any, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{server.tradeos_url}{path}", json=body or {}, headers=auth(server), timeout=120)


def tool(server: Any, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/tools/{name}", json=args or {}, headers=server.headers(), timeout=300)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_healthz_reports_services_and_needs_the_token(tradeos):
    body = get(tradeos, "/healthz").json()
    assert body["status"] == "healthy"
    assert set(body["services"]) >= {"signal_engine", "execution"}
    assert all(v == "healthy" for v in body["services"].values()) and body["timestamp"].endswith("Z")
    assert httpx.get(f"{tradeos.tradeos_url}/healthz", timeout=30).status_code == 401
    assert httpx.get(f"{tradeos.tradeos_url}/healthz", headers={"Authorization": "Bearer wrong"},
                     timeout=30).status_code == 401


def test_a_strategy_session_through_the_documented_routes(tradeos):
    tool(tradeos, "run_strategy", {"cycles": 240})  # four hours of the seeded synthetic market
    signals = get(tradeos, "/signals").json()
    assert isinstance(signals, list) and 0 < len(signals) <= 100
    assert {"signal_id", "symbol", "signal_type", "direction", "strength", "confidence", "created_at",
            "ttl_seconds"} <= set(signals[0])
    momentum = get(tradeos, "/signals", limit=3, signal_type="momentum", symbol="BTC-USDT-PERP").json()
    assert len(momentum) <= 3 and all(s["signal_type"] == "momentum" and s["symbol"] == "BTC-USDT-PERP"
                                      for s in momentum)

    portfolio = get(tradeos, "/portfolio").json()
    assert {"total_value", "cash", "unrealized_pnl", "realized_pnl_today", "drawdown", "positions"} <= set(portfolio)
    assert isinstance(get(tradeos, "/positions").json(), list)

    tool(tradeos, "place_order", {"symbol": "BTC-USDT-PERP", "side": "buy", "order_type": "market",
                                  "quantity": 0.01})
    trades = get(tradeos, "/trades").json()
    assert isinstance(trades, list) and 1 <= len(trades) <= 50
    assert get(tradeos, "/trades", limit=1, symbol="BTC-USDT-PERP", since="2025-01-01T00:00:00Z").json()
    assert get(tradeos, "/trades", since="2099-01-01T00:00:00Z").json() == []

    profile = post(tradeos, "/profile", {"profile": "aggressive"})
    assert profile.status_code == 200 and profile.json()["profile"] == "aggressive"
    assert get(tradeos, "/profile").json()["profile"] == "aggressive"


@pytest.mark.parametrize(("path", "params"), [
    ("/signals", {"limit": -1}), ("/signals", {"signal_type": "astrology"}), ("/signals", {"symbol": "DOGE-XYZ"}),
    ("/trades", {"limit": -5}), ("/trades", {"since": "yesterday"}), ("/signals", {"since": "3 pm"}),
    ("/trades", {"symbol": "DOGE-XYZ"}),
])
def test_bad_query_parameters_get_clear_errors(tradeos, path, params):
    response = get(tradeos, path, **params)
    assert response.status_code in (400, 422), response.text
    assert list(params)[0] in response.text


def test_an_unknown_profile_is_refused_and_changes_nothing(tradeos):
    before = get(tradeos, "/profile").json()["profile"]
    response = post(tradeos, "/profile", {"profile": "reckless"})
    assert response.status_code == 422 and "profile" in response.text
    assert get(tradeos, "/profile").json()["profile"] == before


def test_halt_is_the_kill_switch_and_resume_leaves_it(tradeos):
    halted = post(tradeos, "/trading/halt")
    assert halted.status_code == 200 and halted.json()["status"] == "halted"
    assert tool(tradeos, "get_control_status")["state"] == "killed"
    refused = tool(tradeos, "place_order", {"symbol": "BTC-USDT-PERP", "side": "buy", "order_type": "market",
                                            "quantity": 0.01})
    assert refused["order"]["status"] == "rejected"
    cycle = tool(tradeos, "run_strategy", {"cycles": 5})
    assert cycle["orders_placed"] == 0 and cycle["stopped"]
    resumed = post(tradeos, "/trading/resume")
    assert resumed.status_code == 200 and resumed.json()["state"] == "running"
    assert resumed.json()["steps"] == ["reset_kill_switch", "resume_trading"]


def test_the_metrics_api_on_its_own_listener(tradeos):
    perf = get(tradeos, "/metrics/performance", base=tradeos.metrics_url).json()
    assert {"sharpe_ratio", "win_rate", "avg_trade_duration_seconds", "profit_factor"} <= set(perf)
    sig = get(tradeos, "/metrics/signals", base=tradeos.metrics_url).json()
    assert sig["metrics"] and {h["horizon_bars"] for h in sig["metrics"][0]["horizons"]} == {1, 5, 10}
    system = get(tradeos, "/metrics/system", base=tradeos.metrics_url).json()
    assert {"cycle_latency_ms", "order_rejections_by_reason", "circuit_breaker_activations"} <= set(system)
    assert system["cycle_latency_ms"]["count"] > 0
    # the metrics routes live on the metrics listener only
    assert get(tradeos, "/metrics/system").status_code == 404


def _collect(server: Any, action: Any, wanted: set[str], token: str | None = None) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        async with websockets.connect(f"{server.ws_url}/ws?token={token or server.admin_key}") as ws:
            await asyncio.sleep(0.3)  # subscribed before the actions publish
            await asyncio.to_thread(action)
            seen: set[str] = set()
            while not wanted <= seen:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                got.append(message)
                seen.add(message["type"])
        return got

    return asyncio.run(run())


def test_each_websocket_message_type_arrives(tradeos):
    def actions() -> None:
        tool(tradeos, "set_regime_tracking", {"symbol": "BTC-USDT", "timeframe": "1m", "lookback_hours": 6})
        tool(tradeos, "generate_signals")
        tool(tradeos, "place_order", {"symbol": "ETH-USDT-PERP", "side": "buy", "order_type": "market",
                                      "quantity": 0.1})
        tool(tradeos, "place_order", {"symbol": "ETH-USDT-PERP", "side": "buy", "order_type": "market",
                                      "quantity": 5000})  # beyond the order limit: a risk event
        tool(tradeos, "advance_clock", {"seconds": 3 * 3600})

    got = _collect(tradeos, actions, {"portfolio_update", "signal", "fill", "risk_event", "regime_change"})
    by_type = {m["type"]: m for m in got}
    assert by_type["fill"]["data"]["fill"]["symbol"] == "ETH-USDT-PERP"
    assert by_type["signal"]["data"]["signal_id"].startswith("sig_")
    assert by_type["portfolio_update"]["data"]["total_value"] > 0
    assert by_type["regime_change"]["data"]["symbol"] == "BTC-USDT"
    assert all(m["timestamp"] is None or m["timestamp"].endswith("Z") for m in got)


def test_a_websocket_with_a_bad_token_is_refused(tradeos):
    async def run() -> Any:
        async with websockets.connect(f"{tradeos.ws_url}/ws?token=not-a-key") as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return first, closed.value.rcvd

    first, close = asyncio.run(run())
    assert first["type"] == "error" and first["error"]
    assert close is not None and close.code == 1008


def test_the_profiles_openapi_documents_the_documents_parameters(tradeos):
    doc = get(tradeos, "/openapi.json").json()
    assert {"/healthz", "/portfolio", "/positions", "/trades", "/signals", "/trading/halt", "/trading/resume",
            "/profile"} <= set(doc["paths"])
    trades = {p["name"] for p in doc["paths"]["/trades"]["get"]["parameters"]}
    assert {"limit", "symbol", "since"} <= trades and "since_ms" not in trades
    metrics = get(tradeos, "/openapi.json", base=tradeos.metrics_url).json()
    assert {"/metrics/performance", "/metrics/signals", "/metrics/system"} <= set(metrics["paths"])
