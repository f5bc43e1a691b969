"""Hedging that trades, through a real server (simulated clock): the adjustments become real desk orders through
the risk checks, each with a decision-log entry, and the hedge ends exactly at the target ratio."""

from __future__ import annotations

from typing import Any

import pytest

SPOT, PERP = "BTC-USDT", "BTC-USDT-PERP"


@pytest.fixture(scope="module")
def desk_server(module_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return module_server_factory(tmp_path_factory.mktemp("hedge"),
                                 extra_env={"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_DESK_SEED": "11"})


def perp_size(rest: Any, server: Any) -> float:
    rows = rest.ok(server, "get_positions", {"symbol": PERP, "include_flat": True})["positions"]
    return float(rows[0]["size"]) if rows else 0.0


def btc(rest: Any, server: Any) -> dict[str, Any]:
    assets = rest.ok(server, "get_exposure", {})["assets"]
    row: dict[str, Any] = next(a for a in assets if a["asset"] == "BTC")
    return row


def test_a_spot_long_hedged_by_a_short_perpetual_ends_exactly_at_the_target_with_its_trades_in_the_fills(
        desk_server, rest):
    server = desk_server
    ok = rest.ok
    assert ok(server, "place_order", {"symbol": SPOT, "side": "buy", "order_type": "market", "quantity": 0.5})[
        "accepted"]
    assert ok(server, "place_order", {"symbol": PERP, "side": "sell", "order_type": "market", "quantity": 0.2})[
        "accepted"]
    before = btc(rest, server)
    assert before["spot_quantity"] == 0.5 and before["futures_quantity"] == -0.2
    assert before["hedge_ratio"] == pytest.approx(0.4, abs=1e-12)
    assert before["net_exposure_usd"] == pytest.approx(before["spot_value_usd"] + before["futures_value_usd"])

    analysis = ok(server, "analyze_hedge", {"target_hedge_ratio": 1.0})
    [adjustment] = analysis["adjustments"]
    assert (adjustment["symbol"], adjustment["side"], adjustment["quantity"]) == (PERP, "sell", 0.3)
    assert adjustment["reduce_only"] is False and adjustment["planned_futures_quantity"] == -0.5
    assert "40%" in analysis["commentary"] and "sell 0.3 BTC-USDT-PERP" in analysis["commentary"]
    assert analysis["target_net_exposure_usd"] == 0.0 and analysis["data_source"] == "synthetic"
    assert perp_size(rest, server) == -0.2  # an analysis trades nothing
    assert analysis["correlation"] is None and "one-minute bars" in analysis["assets"][0]["correlation_note"]

    executed = ok(server, "execute_hedge", {"target_hedge_ratio": 1.0, "request_id": "full"})
    assert executed["status"] == "completed"
    assert sum(t["amount"] for t in executed["executed_trades"]) == pytest.approx(0.3, abs=1e-12)
    assert {t["side"] for t in executed["executed_trades"]} == {"sell"}
    assert perp_size(rest, server) == -0.5
    assert btc(rest, server)["hedge_ratio"] == 1.0
    [placed] = executed["orders"]
    order = placed["order"]
    assert order["source"] == "risk:hedge" and order["status"] == "filled" and order["decision_id"]

    fills = {f["fill_id"]: f for f in ok(server, "list_fills", {"symbol": PERP, "limit": 100})["fills"]}
    for trade in executed["executed_trades"]:
        assert fills[trade["fill_id"]]["order_id"] == order["order_id"]
        assert fills[trade["fill_id"]]["price"] == trade["price"]
    decisions = ok(server, "list_decisions", {"symbol": PERP, "limit": 100})["decisions"]
    logged = [d for d in decisions if d["decision_id"] == order["decision_id"]]
    assert len(logged) == 1 and logged[0]["source"] == "risk:hedge" and logged[0]["risk_passed"] is True
    assert logged[0]["selected_order_id"] == order["order_id"]

    again = ok(server, "execute_hedge", {"target_hedge_ratio": 1.0})
    assert again["status"] == "nothing_to_do" and again["executed_trades"] == [] and again["orders"] == []

    half = ok(server, "execute_hedge", {"target_hedge_ratio": 0.5})
    assert half["status"] == "completed"
    [reduce] = half["orders"]
    assert reduce["order"]["side"] == "buy" and reduce["order"]["reduce_only"] is True
    assert perp_size(rest, server) == -0.25 and btc(rest, server)["hedge_ratio"] == 0.5

    closed = ok(server, "close_all_hedges", {})
    assert closed["status"] == "completed"
    [close] = closed["orders"]
    assert close["order"]["reduce_only"] is True and close["order"]["source"] == "risk:close_hedges"
    assert sum(t["amount"] for t in closed["executed_trades"]) == pytest.approx(0.25, abs=1e-12)
    assert perp_size(rest, server) == 0.0
    assert btc(rest, server)["spot_quantity"] == 0.5  # spot holdings are not sold

    hedge_trades = ok(server, "list_trades", {"symbol": "BTC", "source": "risk:"})["trades"]
    assert [t["source"] for t in hedge_trades] == ["risk:close_hedges", "risk:hedge", "risk:hedge"]
    assert ok(server, "list_trades", {"symbol": "BTC", "side": "buy", "source": "tool:"})["trades"][0]["symbol"] == SPOT


def test_a_hedge_stops_at_the_position_limit_it_is_shown_and_the_engine_enforces(desk_server, rest):
    server = desk_server
    ok = rest.ok
    assert perp_size(rest, server) == 0.0
    limits = ok(server, "set_risk_limits_usd", {"position_limit_usd": 20_000.0})
    assert limits["position_limits"]["default"] == 20_000.0
    assert ok(server, "get_risk_limits", {})["max_position_notional_usd"] == 20_000.0  # the control plane's own
    plan = ok(server, "analyze_hedge", {"target_hedge_ratio": 1.0})
    [adjustment] = plan["adjustments"]
    assert adjustment["limited_by"] == "position limit"
    assert adjustment["quantity"] * adjustment["mark_price_usd"] <= 20_000.0
    executed = ok(server, "execute_hedge", {"target_hedge_ratio": 1.0})
    assert executed["status"] == "completed" and executed["orders"][0]["accepted"] is True
    assert 0 < -perp_size(rest, server) < 0.5
    assert abs(btc(rest, server)["futures_value_usd"]) <= 20_000.0
    usage = ok(server, "get_risk_limit_usage", {})
    assert usage["usage"]["largest_position_symbol"] == SPOT  # the spot holding bought before the limit
    ok(server, "close_all_hedges", {})
    ok(server, "set_risk_limits_usd", {"position_limit_usd": 500_000.0})


def test_hedge_execution_needs_the_trade_scope_and_bad_targets_name_the_field(desk_server, rest):
    server = desk_server
    read_only = server.key("read")
    refused = rest.call(server, "execute_hedge", {"target_hedge_ratio": 1.0}, key=read_only)
    assert refused.status_code == 403
    assert rest.call(server, "close_all_hedges", {}, key=read_only).status_code == 403
    assert rest.call(server, "analyze_hedge", {}, key=read_only).status_code == 200
    bad = rest.call(server, "execute_hedge", {"target_hedge_ratio": 3})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["target_hedge_ratio"]
    unknown = rest.call(server, "analyze_hedge", {"assets": ["DOGE"]})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["assets", 0]
