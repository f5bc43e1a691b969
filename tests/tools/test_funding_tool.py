"""simulate_funding_regime through the doors, in the Aleatoric request shape."""

from __future__ import annotations

import httpx
import pytest

ALEATORIC_BODY = {"exchange": "binance", "spot_price": 50000.0, "mark_price": 50050.0, "position_size": 1.0,
                  "num_periods": 10, "use_soft_cap": True, "seed": 42}


def test_the_aleatoric_request_shape_is_answered_with_periods_and_summary(server):
    response = httpx.post(f"{server.url}/mcp/simulate_funding_regime", json=ALEATORIC_BODY,
                          headers=server.headers(), timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["periods"]) == 10
    first = body["periods"][0]
    for field in ("period_index", "start_ts_ms", "next_funding_time", "premium_bps", "funding_rate",
                  "funding_rate_bps", "funding_rate_annualized", "payment", "cumulative_payment", "pnl",
                  "perp_price", "index_price"):
        assert field in first
    assert body["summary"]["data_source"] == "simulated"
    assert body["summary"]["cap_mode"] == "soft"


def test_the_worked_example_over_mcp_json(server):
    args = {"exchange": "okx", "spot_price": 50000, "mark_price": 50100, "num_periods": 1,
            "premium_volatility_bps": 0, "seed": 1}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "simulate_funding_regime", "arguments": args}}
    result = httpx.post(f"{server.url}/mcp", json=call, headers={"Content-Type": "application/json",
                                                                 **server.headers()}).json()["result"]
    period = result["structuredContent"]["periods"][0]
    assert period["funding_rate"] == pytest.approx(0.002)
    assert period["payment"] == pytest.approx(-100.20)


def test_an_unknown_exchange_names_the_field(server):
    response = httpx.post(f"{server.url}/tools/simulate_funding_regime",
                          json={**ALEATORIC_BODY, "exchange": "mtgox"}, headers=server.headers())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["exchange"]
