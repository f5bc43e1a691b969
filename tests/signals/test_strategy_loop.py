"""The strategy loop on a real desk (DeskService, control plane, ledger on SQLite) replaying planted markets on a
simulated clock: it makes money on a planted trend and logs its decisions, never trades an expired signal, stops
at once on a halt, sizes by the active profile, and its per-signal contributions add up to its P&L."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from quantdesk.tools.desk.model import OrderRequest
from quantdesk.tools.signals.service import SOURCE, SignalService

T0 = 1_735_689_600_000
MINUTE = 60_000


def trend(symbol: str, m: int) -> float:
    base = 50_000.0 if symbol.startswith("BTC") else 3_000.0
    return base * (1 + 0.0005 * m)


def zigzag(symbol: str, m: int) -> float:
    """Up 1.2 % over 60 minutes, down over the next 60, and again: the trend turns every hour."""
    base = 50_000.0 if symbol.startswith("BTC") else 3_000.0
    phase = m % 120
    return base * (1 + 0.0002 * (phase if phase <= 60 else 120 - phase))


def strategy_orders(desk: Any) -> list[Any]:
    return desk.state.query("SELECT * FROM desk_orders WHERE source = ? ORDER BY seq", (SOURCE,))


def test_a_loop_trading_a_planted_momentum_series_makes_money_and_records_its_decisions(strategies, plant):
    desk, sig = strategies.open(replay=plant(trend, 200))
    out = sig.run(cycles=120)
    assert out["cycles"] == 120 and out["to_ms"] == T0 + 120 * MINUTE
    assert out["equity_usd"] > 100_000.0 * 1.01  # the trend paid over 1 %

    orders = strategy_orders(desk)
    assert {o["symbol"] for o in orders} == {"BTC-USDT-PERP", "ETH-USDT-PERP"}
    assert all(o["status"] == "filled" and o["signal_id"] for o in orders)
    # long entries on the way up; the exits are the take-profits their sizing set
    assert all(o["side"] == ("sell" if o["reduce_only"] else "buy") for o in orders)
    decisions = desk.control.log.entries(decision_type="strategy", limit=1000)
    assert len(decisions) == len(orders)
    for d in decisions:
        order = next(o for o in orders if o["order_id"] == d.selected_order_id)
        assert d.selected_signal_id == order["signal_id"]
        assert d.details["verdict"] in ("APPROVED", "SIZED_DOWN") and d.risk_passed
        if d.details["action"] == "close":
            assert d.risk_reasons == ["take_profit"]
            continue
        counted = [v for v in d.agent_votes if v["counted"]]
        assert any(v["agent_id"] == "momentum" and v["direction"] == "long" for v in counted)
        chosen = sig.list_signals(limit=10_000, signal_type=None, symbol=d.symbol, since_ms=None, live_only=False)
        assert any(s["signal_id"] == d.selected_signal_id and s["signal_type"] == "momentum"
                   for s in chosen["signals"])
    # the gate's own entry carries the same signal_id (one order, one signal)
    intents = desk.control.log.entries(decision_type="order_intent", source=SOURCE, limit=1000)
    assert sorted(i.selected_signal_id for i in intents) == sorted(o["signal_id"] for o in orders)


def test_a_signal_past_its_ttl_is_never_traded(strategies, plant):
    desk, sig = strategies.open(replay=plant(trend, 200))
    engine = desk.engine
    for m in range(1, 26):  # signals only, no cycle: the history fills and momentum fires
        engine.advance(T0 + m * MINUTE)
        sig.generate()
    live = sig.list_signals(limit=100, signal_type="momentum", symbol="BTC-USDT-PERP", since_ms=None, live_only=True)
    assert live["count"] >= 1
    newest = live["signals"][0]
    assert newest["ttl_seconds"] == 1800 and newest["direction"] == "long"

    engine.advance(newest["expires_ms"])  # exactly at expiry: no longer live
    out = sig.cycle(generate=False)
    assert out["orders_placed"] == 0 and not strategy_orders(desk)
    refused = [d for d in out["decisions"] if d["symbol"] == "BTC-USDT-PERP"]
    assert refused and refused[0]["verdict"] == "REJECTED" and refused[0]["order_id"] is None
    assert [r["code"] for r in refused[0]["reasons"]] == ["signal_ttl_expired"]
    assert all(v["excluded_reason"] == "signal_ttl_expired" for v in refused[0]["votes"]
               if v["agent_id"] == "momentum")
    logged = desk.control.log.entries(decision_type="strategy", symbol="BTC-USDT-PERP", limit=5)
    assert logged[0].risk_reasons == ["signal_ttl_expired"] and not logged[0].risk_passed

    # a second look refuses nothing new (logged once) and still trades nothing
    again = sig.cycle(generate=False)
    assert again["decisions"] == [] and not strategy_orders(desk)
    # fresh signals trade at once: the TTL was the only thing in the way
    assert sig.cycle(generate=True)["orders_placed"] == 2


def test_a_halt_in_the_middle_of_a_loop_stops_orders_at_once(strategies, plant):
    desk, sig = strategies.open(replay=plant(zigzag, 1500))
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(sig.run(cycles=1400)))
    runner.start()
    deadline = time.monotonic() + 60
    while not strategy_orders(desk) and time.monotonic() < deadline:
        time.sleep(0.005)
    halted = sig.halt("test halt", "test")
    orders_at_halt = len(strategy_orders(desk))
    runner.join(timeout=60)
    assert orders_at_halt >= 1
    assert result["stopped"] is not None and result["cycles"] < 1400, result
    assert len(strategy_orders(desk)) == orders_at_halt  # not one more, not even a refused one
    assert halted["status"] == "halted" and desk.control.view().state == "killed"

    # the loop keeps refusing while halted, and a cycle that would trade logs why
    desk.engine.advance(desk.engine.now_ms + 120 * MINUTE)
    for _ in range(3):
        out = sig.cycle()
        assert out["orders_placed"] == 0
    assert len(strategy_orders(desk)) == orders_at_halt
    # resume is the control plane's reset then resume, both logged
    resumed = sig.resume("test over", "test")
    assert resumed["steps"] == ["reset_kill_switch", "resume_trading"] and resumed["state"] == "running"
    commands = [d.source for d in desk.control.log.entries(decision_type="control", limit=10)]
    assert {"control:kill_switch", "control:reset_kill_switch", "control:resume"} <= set(commands)


def test_paused_means_no_new_exposure_but_the_loop_may_still_exit(strategies, plant):
    desk, sig = strategies.open(replay=plant(zigzag, 400))
    while not any(desk.engine.peek_position(s).size for s in ("BTC-USDT-PERP", "ETH-USDT-PERP")):
        sig.run(cycles=1)
    before = len(strategy_orders(desk))
    desk.control.pause("test pause", "test")
    sig.run(cycles=150)  # the trend turns: exits go, no new entry
    after = strategy_orders(desk)[before:]
    assert after and all(o["reduce_only"] and o["status"] == "filled" for o in after)
    assert not any(desk.engine.peek_position(s).size for s in ("BTC-USDT-PERP", "ETH-USDT-PERP"))
    refusals = [d for d in desk.control.log.entries(decision_type="strategy", limit=1000) if not d.risk_passed]
    assert refusals and all(d.risk_reasons == ["kill_switch_entry_freeze"] for d in refusals)


def first_order_quantity(strategies: Any, name: str, path: Any, profile: str) -> tuple[float, Any, SignalService]:
    desk, sig = strategies.open(name, replay=path)
    sig.run(cycles=10)  # warming up: no trade yet
    assert not strategy_orders(desk)
    switched = sig.set_profile(profile, "test")
    assert switched["profile"] == profile
    sig.run(cycles=20)
    orders = strategy_orders(desk)
    assert orders
    return float(orders[0]["quantity"]), desk, sig


def test_a_profile_switch_changes_the_size_of_the_next_order(strategies, plant):
    path = plant(trend, 200)
    small, desk, sig = first_order_quantity(strategies, "conservative", path, "conservative")
    large, _, _ = first_order_quantity(strategies, "aggressive", path, "aggressive")
    # the profiles' position caps (25 % and 100 % of equity) bind on this smooth series
    assert large == pytest.approx(4 * small, rel=0.01)
    logged = desk.control.log.entries(source="signals:set_profile", limit=5)
    assert logged[0].details["previous_profile"] == "balanced" and logged[0].details["profile"] == "conservative"
    # persisted: a service opened again on the same store reads it back
    again = SignalService(desk, None, desk.bus, desk.state, background=False)
    assert again.profile_name == "conservative"
    again.close()
    with pytest.raises(Exception, match="unknown profile"):
        sig.set_profile("reckless", "test")
    assert sig.profile_name == "conservative"


def test_contributions_sum_to_the_strategy_pnl_and_to_the_equity_change(strategies, plant):
    desk, sig = strategies.open(replay=plant(zigzag, 700))
    sig.run(cycles=650)
    orders = strategy_orders(desk)
    assert len(orders) >= 6 and any(o["reduce_only"] for o in orders)
    c = sig.contributions()
    rows = c["by_signal"]
    assert [abs(r["pnl_usd"]) for r in rows] == sorted((abs(r["pnl_usd"]) for r in rows), reverse=True)
    assert sum(r["pnl_usd"] for r in rows) == pytest.approx(c["strategy_pnl_usd"], abs=1e-6)
    equity_change = desk.engine.account().equity_usd - 100_000.0
    assert c["strategy_pnl_usd"] + c["funding_usd"] == pytest.approx(equity_change, abs=1e-6)
    assert {r["signal_type"] for r in rows} <= {"momentum", "mean_reversion", "funding_carry", "regime"}
    perf = sig.performance_metrics("1h")
    assert perf["closed_trades"] >= 2 and perf["win_rate"] is not None
    assert perf["avg_trade_duration_seconds"] and perf["avg_trade_duration_seconds"] > 0


def test_a_manual_order_does_not_count_as_the_strategy(strategies, plant):
    desk, sig = strategies.open(replay=plant(trend, 60))
    desk.engine.advance(T0 + MINUTE)
    desk.engine.place_order(OrderRequest("BTC-USDT-PERP", "buy", "market", 0.1))
    assert sig.contributions()["by_signal"] == []


def test_kelly_caps_the_risk_once_a_signal_type_has_30_closed_trades(strategies, plant):
    desk, sig = strategies.open(replay=plant(zigzag, 1300))
    sig.run(cycles=60)
    early = [d for d in desk.control.log.entries(decision_type="strategy", limit=10) if d.details["sizing"]]
    assert early and all(not d.details["sizing"]["kelly"]["applied"] for d in early)
    assert "needed" in early[0].details["sizing"]["kelly"]["source"] or "no closed" in \
        early[0].details["sizing"]["kelly"]["source"]
    sig.run(cycles=1200)
    closed = [r for r in sig.contributions()["by_signal"] if not r["open"] and r["signal_type"] == "momentum"]
    assert len(closed) >= 30
    late = [d for d in desk.control.log.entries(decision_type="strategy", limit=20) if d.details["sizing"]
            and d.details["sizing"]["kelly"]["applied"]]
    assert late, "no opening sized with Kelly after 30 closed momentum trades"
    kelly = late[0].details["sizing"]["kelly"]
    wins = [r for r in closed if r["pnl_usd"] > 0]
    assert kelly["win_rate"] == pytest.approx(len(wins) / len(closed), abs=0.05)
    assert kelly["cap"] == pytest.approx(0.5 * max(kelly["f_star"], 0.0))  # balanced: half Kelly


def test_a_restarted_service_knows_the_open_trade_and_its_bracket(strategies, plant):
    desk, sig = strategies.open(replay=plant(zigzag, 200))
    while not desk.engine.peek_position("BTC-USDT-PERP").size:
        sig.run(cycles=1)
    again = SignalService(desk, None, desk.bus, desk.state, background=False)
    try:
        assert again.entries == sig.entries and again.brackets == sig.brackets
        assert set(again.entries) == {"BTC-USDT-PERP", "ETH-USDT-PERP"}
        assert again.latest == sig.latest  # the newest signal of each (symbol, type) is read back
    finally:
        again.close()


def test_system_metrics_count_breaker_trips_and_rejections(strategies, plant):
    desk, sig = strategies.open(replay=plant(trend, 60))
    desk.engine.advance(T0 + MINUTE)
    desk.control.set_limits({"max_drawdown_pct": 0.0001}, "test")
    desk.engine.place_order(OrderRequest("BTC-USDT-PERP", "buy", "market", 1.0))  # fees alone: a 0.03 % drawdown
    assert desk.control.view().state == "killed"
    refused = desk.engine.place_order(OrderRequest("BTC-USDT-PERP", "buy", "market", 1.0))
    assert refused.order.status == "rejected"
    m = sig.system_metrics()
    assert m["circuit_breaker_activations"] == 1 and m["circuit_breaker_activations_logged"] == {"DRAWDOWN_LIMIT": 1}
    assert m["order_rejections_by_reason"]["TRADING_HALTED"] == 1
    assert m["order_rejection_rates_by_reason"]["TRADING_HALTED"] == pytest.approx(1 / m["orders_submitted"])
    assert m["control_state"] == "killed"
