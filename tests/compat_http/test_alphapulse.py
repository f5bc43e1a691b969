"""The AlphaPulse document replayed against `quantdesk serve --compat alphapulse:PORT`: its OAuth2 flow, its
routes in their shapes computed on a real desk, and its four WebSocket channels, each fed by a desk action."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets

SECRET = "alphapulse-test-secret-with-32-bytes!"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ap(tmp_path_factory: pytest.TempPathFactory, module_server_factory: Any, quantdesk_bin_module: str) -> Any:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("alphapulse")
    server = module_server_factory(data_dir, args=("--compat", f"alphapulse:{port}"),
                                   extra_env={"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_JWT_SECRET": SECRET})
    created = subprocess.run([quantdesk_bin_module, "--data-dir", str(data_dir), "users", "create", "alice",
                              "--scopes", "read,trade,control,stream"], input=f"{PASSWORD}\n", text=True,
                             capture_output=True, timeout=60)
    assert created.returncode == 0, created.stderr
    server.ap_url = f"http://127.0.0.1:{port}"
    server.ws_url = f"ws://127.0.0.1:{port}"
    return server


@pytest.fixture(scope="module")
def quantdesk_bin_module() -> str:
    return str(Path(sys.executable).with_name("quantdesk"))


@pytest.fixture(scope="module")
def token(ap: Any) -> str:
    # The document's login: a form-encoded POST /token with username and password.
    response = httpx.post(f"{ap.ap_url}/token", data={"username": "alice", "password": PASSWORD}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    return str(body["access_token"])


def get(ap: Any, path: str, token: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{ap.ap_url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def tool(ap: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{ap.url}/tools/{name}", json=args, headers=ap.headers(), timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_health_is_public_in_the_documented_shape(ap):
    response = httpx.get(f"{ap.ap_url}/health", timeout=30)
    assert response.status_code == 200 and set(response.json()) == {"status", "version"}
    assert response.json()["status"] == "ok"


def test_api_key_and_bearer_both_work_and_bad_tokens_are_refused(ap, token):
    by_key = httpx.get(f"{ap.ap_url}/api/v1/portfolio", headers={"X-API-Key": ap.admin_key}, timeout=30)
    assert by_key.status_code == 200
    assert get(ap, "/api/v1/portfolio", token).status_code == 200
    assert httpx.get(f"{ap.ap_url}/api/v1/portfolio", timeout=30).status_code == 401
    wrong = httpx.post(f"{ap.ap_url}/token", data={"username": "alice", "password": "not the password"}, timeout=30)
    assert wrong.status_code == 401 and wrong.json()["detail"] == "incorrect username or password"
    forged = jwt.encode({"iss": "quantdesk", "sub": "alice", "exp": int(time.time()) + 600, "scopes": ["admin"]},
                        "some other secret that is long enough", algorithm="HS256")
    assert get(ap, "/api/v1/portfolio", forged).json()["detail"] == "the access token is not valid"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="quantdesk")
    expired = jwt.encode({**claims, "exp": int(time.time()) - 60}, SECRET, algorithm="HS256")
    response = get(ap, "/api/v1/portfolio", expired)
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    # A token carries its user's scopes only: alice has no admin scope.
    assert claims["scopes"] == ["control", "read", "stream", "trade"]


def test_positions_exposure_and_hedging_on_the_desk(ap, token):
    tool(ap, "place_order", {"symbol": "BTC-USDT", "side": "buy", "order_type": "market", "quantity": 0.5})
    tool(ap, "place_order", {"symbol": "BTC-USDT-PERP", "side": "sell", "order_type": "market", "quantity": 0.3})
    tool(ap, "advance_clock", {"seconds": 7200})

    spot = get(ap, "/api/v1/positions/spot", token)
    assert spot.headers["X-Data-Source"] == "synthetic"
    assert [(p["symbol"], p["quantity"]) for p in spot.json()] == [("BTC", 0.5)]
    assert set(spot.json()[0]) == {"symbol", "quantity", "value_usd", "avg_entry_price"}
    futures = get(ap, "/api/v1/positions/futures", token).json()
    assert [(p["symbol"], p["quantity"], p["leverage"] > 0) for p in futures] == [("BTC-USDT-PERP", -0.3, True)]
    [metrics] = get(ap, "/api/v1/positions/metrics", token).json()
    assert metrics["hedge_ratio"] == pytest.approx(0.6)
    assert metrics["net_exposure"] == pytest.approx(metrics["spot_value"] + metrics["futures_value"])
    exposure = get(ap, "/api/v1/risk/exposure", token).json()
    assert exposure["total"] == pytest.approx(exposure["BTC"]) and 0 < exposure["BTC"] < 1

    analysis = get(ap, "/api/v1/hedging/analysis", token).json()
    assert analysis["risk_metrics"]["hedge_ratio"] == pytest.approx(0.6, rel=1e-2)  # by value: spot and mark differ
    assert analysis["target_net_exposure"] == 0.0
    [adjustment] = analysis["adjustments"]
    assert adjustment["asset"] == "BTC" and adjustment["priority"] in {"high", "medium", "low"}
    assert adjustment["side"] == "sell" and adjustment["quantity"] == pytest.approx(0.2)

    executed = httpx.post(f"{ap.ap_url}/api/v1/hedging/execute", headers={"Authorization": f"Bearer {token}"},
                          timeout=60).json()
    assert executed["status"] == "completed"
    [trade] = executed["executed_trades"]
    assert trade == {**trade, "asset": "BTC-USDT-PERP", "side": "sell", "amount": "0.2"}
    assert float(trade["price"]) > 0
    # The hedge is a real desk fill: the trades route shows it, and the ratio is now exactly the target.
    trades = get(ap, "/api/v1/trades", token, symbol="BTC-USDT-PERP").json()
    assert trade["fill_id"] in {t["id"] for t in trades}
    assert get(ap, "/api/v1/positions/metrics", token).json()[0]["hedge_ratio"] == pytest.approx(1.0)

    closed = httpx.post(f"{ap.ap_url}/api/v1/hedging/close", headers={"Authorization": f"Bearer {token}"},
                        timeout=60).json()
    assert [(t["asset"], t["side"], t["amount"]) for t in closed["executed_trades"]] == \
        [("BTC-USDT-PERP", "buy", "0.5")]
    assert get(ap, "/api/v1/positions/futures", token).json() == []


def test_portfolio_metrics_series_and_risk_metrics(ap, token):
    portfolio = get(ap, "/api/v1/portfolio", token, include_history="true").json()
    assert portfolio["data_source"] == "synthetic"
    assert [(p["symbol"], p["kind"], p["quantity"]) for p in portfolio["positions"]] == [("BTC-USDT", "spot", 0.5)]
    assert portfolio["history"] and {"timestamp", "total_value"} == set(portfolio["history"][0])
    reloaded = httpx.post(f"{ap.ap_url}/api/v1/portfolio/reload", headers={"Authorization": f"Bearer {token}"},
                          timeout=30).json()
    assert reloaded["status"] == "success" and reloaded["timestamp"].endswith("Z")

    series = get(ap, "/api/v1/metrics/portfolio_value", token, start_time="2025-01-01T00:00:00Z",
                 aggregation="max").json()
    assert series and all(set(p) == {"timestamp", "value"} for p in series)
    assert series[0]["value"] == pytest.approx(100_000.0)  # the first hour's maximum is the starting balance
    latest = get(ap, "/api/v1/metrics/portfolio_value/latest", token).json()
    assert latest["value"] == pytest.approx(series[-1]["value"], rel=0.01) and "change_24h" in latest

    bad_time = get(ap, "/api/v1/metrics/risk", token, start_time="yesterday")
    assert bad_time.status_code == 422 and bad_time.json()["detail"][0]["loc"] == ["start_time"]
    bad_name = get(ap, "/api/v1/metrics/bogus", token)
    assert bad_name.status_code == 422 and bad_name.json()["detail"][0]["loc"] == ["metric_type"]
    bad_aggregation = get(ap, "/api/v1/metrics/portfolio_value", token, aggregation="median")
    assert bad_aggregation.status_code == 422

    risk = get(ap, "/api/v1/risk/metrics", token, bar="1m").json()
    for field in ("volatility", "var_95", "cvar_95", "max_drawdown", "sharpe_ratio", "sortino_ratio", "calmar_ratio"):
        assert field in risk
    assert risk["periods_per_year"] == 525_600 and risk["observations"] >= 100 and risk["method"] == "historical"
    assert risk["cvar_95"] >= risk["var_95"] >= 0


def test_limits_written_in_the_read_shape_are_what_the_engine_enforces(ap, token):
    headers = {"Authorization": f"Bearer {token}"}
    # alice has the control scope the limits need.
    written = httpx.put(f"{ap.ap_url}/api/v1/risk/limits", headers=headers, timeout=30,
                        json={"position_limits": {"default": 20_000.0}, "drawdown_limits": {"max": 25_000.0}})
    assert written.status_code == 200, written.text
    limits = get(ap, "/api/v1/risk/limits", token).json()
    assert limits["position_limits"]["default"] == 20_000.0 and limits["drawdown_limits"]["max"] == 25_000.0
    too_big = httpx.post(f"{ap.url}/tools/place_order", headers=ap.headers(), timeout=60,
                         json={"symbol": "BTC-USDT-PERP", "side": "buy", "order_type": "market", "quantity": 1.0})
    assert "POSITION_LIMIT_EXCEEDED" in too_big.text, too_big.text
    bad = httpx.put(f"{ap.ap_url}/api/v1/risk/limits", headers=headers, timeout=30,
                    json={"position_limits": {"BTC": 5}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["position_limits"]
    null = httpx.put(f"{ap.ap_url}/api/v1/risk/limits", headers=headers, timeout=30,
                     json={"drawdown_limits": {"max": None}})
    assert null.status_code == 422 and null.json()["detail"][0]["loc"] == ["drawdown_limits", "max"]
    httpx.put(f"{ap.ap_url}/api/v1/risk/limits", headers=headers, timeout=30,
              json={"position_limits": {"default": 500_000.0}})


def test_position_size_and_regimes(ap, token):
    size = get(ap, "/api/v1/risk/position-size/BTC", token, atr_usd=1500).json()
    assert size["asset"] == "BTC" and 0 < size["recommended_size"] <= size["max_size"]
    assert size["stop_loss"] < size["entry_price"] < size["take_profit"]
    assert size["factors"] and size["binding_constraint"]
    unknown = get(ap, "/api/v1/risk/position-size/DOGE", token, atr_usd=1)
    assert unknown.status_code in (404, 422) and "DOGE" in unknown.text

    current = get(ap, "/api/v1/regime/current", token).json()
    assert {"regime", "confidence", "parameters", "timestamp"} <= set(current)
    assert get(ap, "/api/v1/regime/history", token, hours=24).json()["regimes"] is not None
    analyzed = httpx.post(f"{ap.ap_url}/api/v1/regime/analyze", headers={"Authorization": f"Bearer {token}"},
                          json={"market_data": {"symbol": "BTC", "timeframe": "1m", "lookback_hours": 1}}, timeout=120)
    assert analyzed.status_code == 200, analyzed.text
    body = analyzed.json()
    assert body["regime"] in {"BULL", "BEAR", "SIDEWAYS", "HIGH_VOLATILITY", "CRISIS"}
    assert set(body["features"]) == {"volatility", "trend_strength", "volume_ratio"} and body["causal"] is True
    too_long = httpx.post(f"{ap.ap_url}/api/v1/regime/analyze", headers={"Authorization": f"Bearer {token}"},
                          json={"market_data": {"symbol": "BTC", "timeframe": "1h", "lookback_hours": 24}}, timeout=60)
    assert too_long.status_code == 422 and "not enough data" in too_long.text


def _ws(ap: Any, channel: str, first: dict[str, Any], action: Any, want: str) -> list[dict[str, Any]]:
    """Connect, send the first frame, run the desk action, and collect messages until one of type `want`."""

    async def run() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        async with websockets.connect(f"{ap.ws_url}{channel}") as ws:
            await ws.send(json.dumps(first))
            await asyncio.sleep(0.3)  # subscribed before the action publishes
            await asyncio.to_thread(action)
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                got.append(message)
                if message["type"] in (want, "error"):
                    return got

    return asyncio.run(run())


def test_each_websocket_channel_receives_the_event_its_desk_action_caused(ap, token):
    auth = {"type": "auth", "token": token}

    def buy() -> None:
        tool(ap, "place_order", {"symbol": "ETH-USDT-PERP", "side": "buy", "order_type": "market", "quantity": 0.1})

    trades = _ws(ap, "/ws/trades", auth, buy, "new_trade")
    assert trades[-1]["data"]["symbol"] == "ETH-USDT-PERP" and trades[-1]["data"]["quantity"] == 0.1
    assert trades[-1]["data"]["timestamp"].endswith("Z")

    portfolio = _ws(ap, "/ws/portfolio", auth, buy, "portfolio_update")
    assert "ETH-USDT-PERP" in {p["symbol"] for p in portfolio[-1]["data"]["positions"]}

    metrics = _ws(ap, "/ws/metrics", auth, lambda: tool(ap, "advance_clock", {"seconds": 120}), "metrics_update")
    assert metrics[-1]["data"]["portfolio_value"] > 0

    def rule_and_advance() -> None:
        tool(ap, "create_alert_rule", {"name": "equity watch", "metric": "portfolio_value_usd", "operator": ">",
                                       "threshold": 1.0, "severity": "critical", "message": "equity above 1 USD"})
        tool(ap, "advance_clock", {"seconds": 120})

    alerts = _ws(ap, "/ws/alerts", auth, rule_and_advance, "new_alert")
    alert = alerts[-1]["data"]
    assert alert["severity"] == "critical" and alert["message"] == "equity above 1 USD"

    listed = get(ap, "/api/v1/alerts", token).json()
    assert alert["id"] in {a["id"] for a in listed}
    acknowledged = httpx.post(f"{ap.ap_url}/api/v1/alerts/{alert['id']}/acknowledge", timeout=30,
                              headers={"Authorization": f"Bearer {token}"}).json()
    assert acknowledged["success"] is True and acknowledged["alert"]["acknowledged"] is True


def test_websockets_refuse_clients_that_do_not_authenticate_first(ap, token):
    refused = _ws(ap, "/ws/trades", {"type": "subscribe"}, lambda: None, "new_trade")
    assert refused == [{"type": "error", "error": 'authenticate first: send {"type": "auth", "token": "<token>"}'}]
    forged = _ws(ap, "/ws/portfolio", {"type": "auth", "token": token[:-4] + "abcd"}, lambda: None, "portfolio_update")
    assert forged[-1]["type"] == "error" and "not valid" in forged[-1]["error"]


def test_a_websocket_client_that_never_authenticates_is_closed(ap):
    async def silent() -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        async with websockets.connect(f"{ap.ws_url}/ws/alerts") as ws:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            return message, time.monotonic() - started

    message, waited = asyncio.run(silent())
    assert message["type"] == "error" and "authenticate first" in message["error"]
    assert 5 < waited < 30  # refused after the server's auth timeout, not at once and not never
