"""Metric series recorded on the desk clock and alerts on them, on a real desk replaying a hand-written market:
the recorded values are the desk's own equity samples, aggregated as a hand aggregation of those samples
gives; rules raise one alert per crossing, stored and published on the bus; everything survives a restart;
a damaged rule fails closed until it is deleted, and nothing recorded meanwhile is lost."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from typing import Any

import pytest

from quantdesk.server.errors import InvalidArgument, NotFound, Unavailable
from quantdesk.tools.desk.model import OrderRequest

PERP, SPOT = "BTC-USDT-PERP", "BTC-USDT"
HOUR = 3_600_000
T0 = 1_735_689_600_000


def mid(h: int) -> float:
    """Up to a peak at 5 h, down to 9 h, up to a higher peak at 14 h, then down slowly to 30 h."""
    if h <= 5:
        return 50_000.0 + 200.0 * h
    if h <= 9:
        return 51_000.0 - 400.0 * (h - 5)
    if h <= 14:
        return 49_400.0 + 500.0 * (h - 9)
    return 51_900.0 - 100.0 * (h - 14)


def market(ev: Any, market_file: Any) -> Any:
    events = []
    for h in range(31):
        m = mid(h)
        events.append(ev.book(SPOT, T0 + h * HOUR, [(m - 0.5, 10.0)], [(m + 0.5, 10.0)]))
        events.append(ev.book(PERP, T0 + h * HOUR, [(m - 0.5, 10.0)], [(m + 0.5, 10.0)]))
    return market_file(events)


def equity_samples(desk: Any) -> list[Any]:
    return desk.engine.ledger.list_equity(since_ms=None, until_ms=None, limit=100_000)


@pytest.fixture
def traded(risks: Any, ev: Any, market_file: Any) -> Any:
    path = market(ev, market_file)
    desk, risk = risks.open(replay=path)
    desk.engine.place_order(OrderRequest(PERP, "buy", "market", 1.0))
    desk.control.set_limits({"max_drawdown_pct": 0.02}, "test")
    return desk, risk, path


def test_every_desk_equity_sample_is_recorded_and_aggregates_match_a_hand_aggregation(traded):
    desk, risk, _ = traded
    desk.engine.advance(T0 + 30 * HOUR)
    recorded = risk.catch_up()
    samples = equity_samples(desk)
    assert recorded == len(samples) == 30 * 60 + 1
    assert risk.catch_up() == 0  # exactly once

    by_hour: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        by_hour[s.timestamp_ms // HOUR * HOUR].append(s.equity_usd)
    out = risk.metric_series("portfolio_value_usd", T0, T0 + 30 * HOUR, "avg", 3600)
    assert [p["timestamp_ms"] for p in out["points"]] == sorted(by_hour)
    for point in out["points"]:
        values = by_hour[point["timestamp_ms"]]
        assert point["value"] == pytest.approx(sum(values) / len(values), rel=1e-12)
        assert point["count"] == len(values)
    for aggregation, fold in (("min", min), ("max", max), ("sum", sum), ("count", len), ("last", lambda v: v[-1])):
        points = risk.metric_series("portfolio_value_usd", T0, T0 + 30 * HOUR, aggregation, 3600)["points"]
        assert [p["value"] for p in points] == pytest.approx([fold(by_hour[t]) for t in sorted(by_hour)], rel=1e-12)
    drawdown = risk.metric_series("drawdown_pct", T0, T0 + 30 * HOUR, "max", 86_400)
    assert drawdown["points"][0]["value"] == pytest.approx(max(s.drawdown_pct for s in samples), rel=1e-12)
    assert out["data_source"] == "replay" and out["unit"] == "USD"

    latest = risk.latest_metric("portfolio_value_usd")
    then = next(s for s in reversed(samples) if s.timestamp_ms <= T0 + 6 * HOUR)
    assert latest["timestamp_ms"] == T0 + 30 * HOUR and latest["value"] == samples[-1].equity_usd
    assert latest["value_24h_ago"] == then.equity_usd
    assert latest["change_24h"] == pytest.approx((samples[-1].equity_usd - then.equity_usd) / then.equity_usd)
    pnl = risk.latest_metric("pnl_usd")
    assert pnl["value"] == pytest.approx(samples[-1].equity_usd - samples[0].equity_usd, abs=1e-9)
    # risk metrics of the trailing hourly returns are recorded at every hour once a day of returns exists
    vol = risk.metric_series("volatility_annual", T0, T0 + 30 * HOUR, "last", 3600)["points"]
    assert [p["timestamp_ms"] for p in vol] == [T0 + h * HOUR for h in range(24, 31)]


def test_bad_ranges_and_unknown_metrics_name_the_field(traded):
    _, risk, _ = traded
    with pytest.raises(InvalidArgument) as reversed_range:
        risk.metric_series("pnl_usd", T0 + HOUR, T0, "avg", 3600)
    assert reversed_range.value.problems[0].path == "$.start_ms"
    with pytest.raises(InvalidArgument) as too_many:
        risk.metric_series("pnl_usd", 0, T0, "avg", 60)
    assert too_many.value.problems[0].path == "$.bucket_seconds"
    with pytest.raises(NotFound):
        risk.latest_metric("sharpe_ratio")  # nothing hourly yet: a day of returns is needed


def test_a_rule_raises_one_alert_per_crossing_stored_and_published_then_acknowledged(traded):
    desk, risk, _ = traded
    fixed = risk.create_rule(name="drawdown 1%", metric="drawdown_pct", operator=">=", threshold=0.01,
                             of_limit=None, limit_fraction=None, severity="critical", message=None)
    relative = risk.create_rule(name="half the drawdown limit", metric="drawdown_pct", operator=">=",
                                threshold=None, of_limit="max_drawdown_pct", limit_fraction=0.5, severity="warning",
                                message="Portfolio drawdown exceeded threshold")
    assert relative["threshold_now"] == pytest.approx(0.01)
    with desk.bus.subscribe(["alert"], name="test") as subscription:
        desk.engine.advance(T0 + 30 * HOUR)
        risk.catch_up()
        published = [e.event.to_dict() for e in subscription.poll()]
    samples = equity_samples(desk)
    crossings = [s.timestamp_ms for prev, s in zip(samples, samples[1:], strict=False)
                 if s.drawdown_pct >= 0.01 > prev.drawdown_pct]
    assert len(crossings) == 2  # the market draws down twice
    stored = risk.alert_history(severity=None, acknowledged=None, rule_id=None, since_ms=None, until_ms=None,
                                limit=100)
    for rule in (fixed, relative):
        mine = sorted(a["timestamp_ms"] for a in stored if a["rule_id"] == rule["rule_id"])
        assert mine == crossings
    assert not any(a["rule_id"] == "rule-0001" for a in stored)  # the default 80 %-of-limit rule never crossed
    assert sorted(e["alert"]["alert_id"] for e in published) == sorted(a["alert_id"] for a in stored)
    assert all(e["change"] == "raised" for e in published)
    critical = [a for a in stored if a["severity"] == "critical"]
    assert critical[0]["value"] >= 0.01 and critical[0]["threshold"] == 0.01

    first = critical[-1]["alert_id"]
    with desk.bus.subscribe(["alert"], name="ack") as subscription:
        acknowledged, already = risk.acknowledge(first, "tester", "seen")
        again, already_again = risk.acknowledge(first, "someone else", None)
        events = [e.event.to_dict() for e in subscription.poll()]
    assert acknowledged["acknowledged"] and not already and already_again
    assert again["acknowledged_by"] == "tester"
    assert [e["change"] for e in events] == ["acknowledged"]
    open_alerts = risk.alert_history(severity=None, acknowledged=False, rule_id=None, since_ms=None, until_ms=None,
                                     limit=100)
    assert first not in {a["alert_id"] for a in open_alerts} and len(open_alerts) == len(stored) - 1
    with pytest.raises(NotFound):
        risk.acknowledge("alert-99999999", "tester", None)


def test_rules_alerts_and_series_survive_a_restart_and_a_damaged_rule_fails_closed_without_losing_points(
        risks, traded):
    desk, risk, path = traded
    risk.create_rule(name="drawdown 1%", metric="drawdown_pct", operator=">=", threshold=0.01, of_limit=None,
                     limit_fraction=None, severity="critical", message=None)
    desk.engine.advance(T0 + 8 * HOUR)
    risk.catch_up()
    alerts_before = risk.alert_history(severity=None, acknowledged=None, rule_id=None, since_ms=None, until_ms=None,
                                       limit=100)
    rules_before = risk.rules()
    assert len(alerts_before) == 1
    store = desk.state.path
    risks.close(risk)

    desk, risk = risks.open(replay=path)
    assert risk.rules() == rules_before
    assert risk.alert_history(severity=None, acknowledged=None, rule_id=None, since_ms=None, until_ms=None,
                              limit=100) == alerts_before
    assert risk.recorder.state.recorded_until_ms == T0 + 8 * HOUR
    risks.close(risk)

    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE risk_alert_rules SET body = '{not json' WHERE rule_id = 'rule-0003'")
    desk, risk = risks.open(replay=path)
    with pytest.raises(Unavailable):
        risk.rules()
    desk.engine.advance(T0 + 20 * HOUR)
    with pytest.raises(Unavailable):
        risk.catch_up()  # recording waits: no crossing may pass unevaluated
    assert risk.recorder.state.recorded_until_ms == T0 + 8 * HOUR
    assert risk.delete_rule("rule-0003") is True
    assert [r["rule_id"] for r in risk.rules()] == ["rule-0001", "rule-0002"]
    assert risk.catch_up() == 12 * 60
    rows = risk.metric_series("portfolio_value_usd", T0, T0 + 20 * HOUR, "count", 86_400)["points"]
    assert rows[0]["value"] == len(equity_samples(desk))


def test_the_default_rules_watch_drawdown_and_daily_loss_at_80_percent_of_their_limits(traded):
    _, risk, _ = traded
    rules = {r["metric"]: r for r in risk.rules()}
    assert rules["drawdown_pct"]["of_limit"] == "max_drawdown_pct" and rules["drawdown_pct"]["limit_fraction"] == 0.8
    assert rules["drawdown_pct"]["threshold_now"] == pytest.approx(0.016)
    assert rules["daily_loss_pct"]["threshold_now"] == pytest.approx(0.08)
    with pytest.raises(InvalidArgument) as both:
        risk.create_rule(name="x", metric="pnl_usd", operator="<", threshold=1.0, of_limit="max_leverage",
                         limit_fraction=None, severity="info", message=None)
    assert both.value.problems[0].path == "$.threshold"
    assert json.dumps(risk.rules())  # JSON-ready
