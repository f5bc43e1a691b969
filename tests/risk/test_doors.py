"""The risk tools through real doors on a simulated-clock server: MCP (scopes, annotations, structured results),
REST bad input naming the field (NaN refused, too-short windows explained), the numbers computed on the
desk's own equity series, sizing with the desk's figures, limits shown as enforced, Prometheus numbers, and
the background recorder publishing what a desk action caused."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import numpy as np
import pytest

from quantdesk.tools.risk.metrics import compute_metrics

pytestmark = pytest.mark.anyio
PERP, SPOT = "BTC-USDT-PERP", "BTC-USDT"
HOUR_S = 3600
SCOPES = {"get_risk_metrics": "read", "get_exposure": "read", "get_risk_limit_usage": "read",
          "set_risk_limits_usd": "control", "get_position_size": "read", "analyze_hedge": "read",
          "execute_hedge": "trade", "close_all_hedges": "trade", "get_portfolio": "read", "reload_portfolio": "read",
          "list_trades": "read", "get_metric_series": "read", "get_latest_metric": "read",
          "list_alert_rules": "read", "create_alert_rule": "control", "delete_alert_rule": "control",
          "list_alerts": "read", "acknowledge_alert": "control", "get_market_regime": "read",
          "get_regime_history": "read", "analyze_market_regime": "read", "set_regime_tracking": "control"}


@pytest.fixture(scope="module")
def sim(module_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return module_server_factory(tmp_path_factory.mktemp("risk-doors"),
                                 extra_env={"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_DESK_SEED": "11"})


def test_a_fresh_desk_has_not_enough_data_and_the_answer_says_how_much_is_needed(sim, rest):
    response = rest.call(sim, "get_risk_metrics", {"bar": "1d"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["bar"] and "at least 2" in problem["msg"]


def test_a_position_size_on_the_desk_reproduces_the_hand_computed_case(sim, rest):
    out = rest.ok(sim, "get_position_size", {"asset": "BTC", "entry_price_usd": 50_000.0, "atr_usd": 1_000.0,
                                             "volatility_annual": 0.6})
    # equity 100,000 (the fresh desk's deposit), taker 5 bps: 1 % x 100,000 / (2,000 + 98,000 x 0.0005) -> 0.488
    assert out["symbol"] == PERP and out["quantity"] == 0.488 and out["max_quantity"] == 0.5
    assert (out["stop_loss_price_usd"], out["take_profit_price_usd"]) == (48_000.0, 54_000.0)
    assert out["binding_constraint"] == "risk_per_trade" and out["data_source"] == "synthetic"
    short_spot = rest.call(sim, "get_position_size", {"asset": "BTC", "instrument": "spot", "side": "short",
                                                      "entry_price_usd": 50_000.0, "atr_usd": 1_000.0})
    assert short_spot.status_code == 422 and short_spot.json()["detail"][0]["loc"] == ["side"]
    no_bars = rest.call(sim, "get_position_size", {"asset": "ETH", "timeframe": "1d"})
    assert no_bars.status_code == 422 and no_bars.json()["detail"][0]["loc"] == ["atr_usd"]


def test_nan_unknown_assets_and_unknown_metrics_are_refused_naming_the_field(sim, rest):
    raw = httpx.post(f"{sim.url}/tools/get_risk_metrics", content=b'{"risk_free_rate_annual": NaN}',
                     headers={**sim.headers(), "content-type": "application/json"}, timeout=60)
    assert raw.status_code == 422
    for tool, body, loc in (("get_position_size", {"asset": "DOGE"}, ["asset"]),
                            ("get_metric_series", {"metric_type": "happiness"}, ["metric_type"]),
                            ("get_metric_series", {"metric_type": "pnl_usd", "aggregation": "median"},
                             ["aggregation"]),
                            ("get_risk_metrics", {"confidence_level": 1.5}, ["confidence_level"]),
                            ("get_position_size", {"asset": "BTC", "risk_per_trade_pct": 1.0},
                             ["risk_per_trade_pct"]),
                            ("acknowledge_alert", {"alert_id": "x"}, ["alert_id"])):
        response = rest.call(sim, tool, body)
        assert response.status_code == 422, (tool, response.text)
        assert response.json()["detail"][0]["loc"] == loc, (tool, response.text)
    assert rest.call(sim, "acknowledge_alert", {"alert_id": "alert-00009999"}).status_code == 404


def test_limits_are_shown_as_the_control_plane_enforces_them(sim, rest):
    usage = rest.ok(sim, "get_risk_limit_usage")
    enforced = rest.ok(sim, "get_risk_limits")
    assert usage["enforced"] == enforced
    assert usage["position_limits"]["default"] == enforced["max_position_notional_usd"]
    assert usage["exposure_limits"]["total"] == enforced["max_gross_exposure_usd"]
    assert usage["margin_limits"]["total"] == pytest.approx(enforced["max_leverage"] * usage["basis"]["equity_usd"])
    assert usage["drawdown_limits"]["max"] == pytest.approx(enforced["max_drawdown_pct"]
                                                            * usage["basis"]["peak_equity_usd"])
    changed = rest.ok(sim, "set_risk_limits_usd", {"margin_limit_usd": 300_000.0, "drawdown_limit_usd": 20_000.0})
    assert changed["enforced"]["max_leverage"] == pytest.approx(3.0)
    assert changed["enforced"]["max_drawdown_pct"] == pytest.approx(0.2)
    assert rest.ok(sim, "get_risk_limits")["max_leverage"] == pytest.approx(3.0)
    too_big = rest.call(sim, "set_risk_limits_usd", {"drawdown_limit_usd": 500_000.0})
    assert too_big.status_code == 422 and too_big.json()["detail"][0]["loc"] == ["drawdown_limit_usd"]
    assert rest.call(sim, "set_risk_limits_usd", {"margin_limit_usd": 1.0}, key=sim.key("read")).status_code == 403
    rest.ok(sim, "set_risk_limits_usd", {"margin_limit_usd": 1_000_000.0, "drawdown_limit_usd": 25_000.0})


def test_risk_metrics_are_computed_on_the_desk_equity_series(sim, rest):
    ok = rest.ok
    ok(sim, "place_order", {"symbol": SPOT, "side": "buy", "order_type": "market", "quantity": 0.3})
    ok(sim, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.5})
    ok(sim, "advance_clock", {"seconds": 6 * HOUR_S})
    out = ok(sim, "get_risk_metrics", {"bar": "15m", "confidence_level": 0.99, "var_method": "parametric"})
    samples = ok(sim, "get_equity_series", {"limit": 100_000})["samples"]
    grid = [s["equity_usd"] for s in samples if s["timestamp_ms"] % 900_000 == 0]
    expected = compute_metrics(np.asarray(grid), periods=365 * 96, confidence_levels=(0.95, 0.99))
    assert out["periods_per_year"] == 365 * 96 and out["bar_seconds"] == 900 and out["horizon_bars"] == 1
    assert out["observations"] == len(grid) - 1 == 24
    assert out["var_method"] == "parametric" and out["var_method_used"] == "parametric"
    assert out["volatility_annual"] == pytest.approx(expected.volatility_annual, rel=1e-12)
    assert out["max_drawdown_pct"] == pytest.approx(expected.max_drawdown_pct, rel=1e-12)
    assert out["var_pct"] == pytest.approx(expected.tail_risk("parametric", 0.99).var_pct, rel=1e-12)
    assert out["window_start_ms"] == samples[0]["timestamp_ms"]
    assert {t["method"] for t in out["tail_risk"]} == {"historical", "parametric", "cornish_fisher"}
    assert "NaN" not in json.dumps(out) and "Infinity" not in json.dumps(out)
    assert out["data_source"] == "synthetic" and out["execution_mode"] == "paper"
    exposure = ok(sim, "get_exposure")
    [btc] = [a for a in exposure["assets"] if a["asset"] == "BTC"]
    assert btc["spot_quantity"] == 0.3 and btc["futures_quantity"] == 0.5 and btc["hedge_ratio"] == pytest.approx(
        -0.5 / 0.3)
    assert btc["net_exposure_usd"] == pytest.approx(btc["spot_value_usd"] + btc["futures_value_usd"])
    portfolio = ok(sim, "get_portfolio", {"include_history": True, "history_bar": "1h", "history_days": 1})
    assert portfolio["total_value_usd"] == pytest.approx(exposure["equity_usd"])
    assert [p["symbol"] for p in portfolio["positions"]] == [SPOT, PERP]
    assert [h["total_value_usd"] for h in portfolio["history"]] == [s["equity_usd"] for s in samples
                                                                    if s["timestamp_ms"] % 3_600_000 == 0]
    same_way = ok(sim, "analyze_hedge", {"correlation_lookback_hours": 4})  # spot and perpetual both long
    assert same_way["correlation_asset"] == "BTC" and same_way["correlation"] > 0.9
    assert "239 one-minute returns over 4 h" in same_way["assets"][0]["correlation_note"]
    reloaded = ok(sim, "reload_portfolio")
    assert reloaded["status"] == "success" and reloaded["data_source"] == "synthetic"


async def test_the_risk_tools_over_mcp_carry_their_scopes_annotations_and_structured_results(sim, open_mcp):
    async with open_mcp("http-modern", sim) as client:
        listed: dict[str, Any] = {}
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed.update({t.name: t for t in page.tools})
            if (cursor := page.next_cursor) is None:
                break
        assert set(SCOPES) <= set(listed)
        assert listed["close_all_hedges"].annotations.destructive_hint is True
        assert listed["get_risk_metrics"].annotations.read_only_hint is True
        assert listed["execute_hedge"].annotations.read_only_hint is False
        assert listed["get_exposure"].output_schema is not None
        exposure = await client.call_tool("get_exposure", {"include_flat": True})
        assert exposure.is_error is False and {a["asset"] for a in exposure.structured_content["assets"]} == {
            "BTC", "ETH"}
        bad = await client.call_tool("get_metric_series", {"metric_type": "pnl_usd", "bucket_seconds": 1})
        assert bad.is_error is True and "$.bucket_seconds" in bad.content[0].text
    described = httpx.get(f"{sim.url}/mcp/tools/list", timeout=30).json()
    tools = {t["name"]: t for t in (described["tools"] if isinstance(described, dict) else described)}
    for name, scope in SCOPES.items():
        assert tools[name]["scope"] == scope, name


def test_the_background_recorder_follows_the_desk_clock_without_being_asked(sim, rest):
    stats = rest.ok(sim, "get_event_bus_stats")
    assert "risk-recorder" in {s["name"] for s in stats["subscribers"]}
    before = _value(httpx.get(f"{sim.url}/metrics", headers=sim.headers(), timeout=30).text,
                    "quantdesk_risk_portfolio_events_total")
    rest.ok(sim, "advance_clock", {"seconds": 120})
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:  # the recorder thread wakes on the desk's equity events
        text = httpx.get(f"{sim.url}/metrics", headers=sim.headers(), timeout=30).text
        if _value(text, "quantdesk_risk_portfolio_events_total") > before and \
                _value(text, "quantdesk_risk_metric_events_total") > 0:
            break
    assert _value(text, "quantdesk_risk_portfolio_events_total") > before
    assert _value(text, "quantdesk_risk_samples_recorded_total") > 0


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_alert_and_regime_tools_answer_in_their_advertised_shapes(sim, rest):
    ok = rest.ok
    rule = ok(sim, "create_alert_rule", {"name": "any loss", "metric": "pnl_usd", "operator": "<", "threshold": 0.0,
                                         "severity": "info"})["rule"]
    assert rule["condition"] == "pnl_usd < 0" and rule["rule_id"].startswith("rule-")
    assert rest.call(sim, "create_alert_rule", {"name": "x", "metric": "pnl_usd"}).status_code == 422
    rules = ok(sim, "list_alert_rules")
    assert rule["rule_id"] in {r["rule_id"] for r in rules["rules"]} and rules["data_source"] == "synthetic"
    alerts = ok(sim, "list_alerts", {"rule_id": rule["rule_id"]})
    assert alerts["count"] == len(alerts["alerts"])
    for alert in alerts["alerts"]:
        assert ok(sim, "acknowledge_alert", {"alert_id": alert["alert_id"]})["alert"]["acknowledged"] is True
    assert ok(sim, "delete_alert_rule", {"rule_id": rule["rule_id"]})["deleted"] is True
    assert ok(sim, "delete_alert_rule", {"rule_id": rule["rule_id"]})["deleted"] is False
    assert ok(sim, "get_metric_series", {"metric_type": "drawdown_pct", "aggregation": "max"})["count"] >= 1

    tracked = ok(sim, "set_regime_tracking", {"symbol": "ETH", "timeframe": "1m", "lookback_hours": 3})["tracked"]
    assert {"symbol": "ETH-USDT", "timeframe": "1m", "lookback_hours": 3.0} in tracked
    current = ok(sim, "get_market_regime", {"symbol": "ETH-USDT", "timeframe": "1m"})
    assert current["regime"] in {"BULL", "BEAR", "SIDEWAYS", "HIGH_VOLATILITY", "CRISIS"}
    assert current["parameters"]["leverage_multiplier"] > 0
    history = ok(sim, "get_regime_history", {"symbol": "ETH-USDT", "timeframe": "1m", "hours": 24})
    assert history["regimes"][-1]["regime"] == current["regime"]
    assert rest.call(sim, "get_market_regime", {"symbol": "ETH-USDT", "timeframe": "4h"}).status_code == 404
    analysis = ok(sim, "analyze_market_regime", {"symbol": "BTC", "timeframe": "1m", "lookback_hours": 1,
                                                 "n_states": 3})
    assert analysis["model"]["n_states"] == 3 and analysis["bars_analyzed"] == 60 and analysis["bars_fitted"] == 113
    assert rest.call(sim, "set_regime_tracking", {"symbol": "ETH"}, key=sim.key("read")).status_code == 403
