"""The kill switch and the control store through a real server: under concurrent load, across kill -9 and
restarts, with a tampered or missing control store, and the reset that goes to paused."""

from __future__ import annotations

import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

SIMULATED = {"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_DESK_SEED": "11"}
PERP = "BTC-USDT-PERP"


def call(server: Any, tool: str, args: dict[str, Any] | None = None, key: str | None = None,
         client: httpx.Client | None = None) -> httpx.Response:
    http = client or httpx
    return http.post(f"{server.url}/tools/{tool}", json=args or {}, headers=server.headers(key), timeout=60)


def ok(server: Any, tool: str, args: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
    response = call(server, tool, args, key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def mid(server: Any) -> float:
    return float(ok(server, "get_quote", {"symbol": PERP})["mid_price"])


def test_once_the_kill_is_acknowledged_no_order_is_accepted_and_no_fill_happens(server_factory, tmp_path):
    server = server_factory(tmp_path / "load", extra_env=SIMULATED)
    ok(server, "set_risk_limits", {"disable": ["max_orders_per_second"]})
    price = round(mid(server) - 500.0, 1)
    acked = threading.Event()
    placed = threading.Semaphore(0)
    results: list[tuple[bool, dict[str, Any]]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        after_ack = 0
        with httpx.Client() as http:
            i = 0
            while after_ack < 15:
                sent_after_ack = acked.is_set()
                args = ({"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.002, "price": price}
                        if i % 2 else {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.002})
                response = call(server, "place_order", args, client=http)
                assert response.status_code == 200, response.text
                with lock:
                    results.append((sent_after_ack, response.json()))
                placed.release()
                after_ack += sent_after_ack
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(40):
        assert placed.acquire(timeout=60)
    kill = ok(server, "trigger_kill_switch", {"reason": "load test"})
    fills_at_ack = ok(server, "list_fills", {"limit": 1})["fills"]
    acked.set()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()

    assert kill["action"] == "killed" and kill["latched_durably"] is True
    after = [body for sent_after, body in results if sent_after]
    assert len(after) >= 60
    assert all(not body["accepted"] for body in after)
    assert all(body["order"]["reasons"][0]["code"] == "TRADING_HALTED" for body in after)
    assert ok(server, "list_fills", {"limit": 1})["fills"] == fills_at_ack
    assert ok(server, "list_orders", {"status": "open"})["orders"] == []
    resting = {body["order"]["order_id"] for _, body in results if body["order"]["status"] == "open"}
    cancelled = {c["order_id"] for c in kill["cancelled"]}
    assert resting and resting == cancelled
    assert all(c["ok"] and c["status"] == "cancelled" for c in kill["cancelled"])
    # the decision log agrees: after the kill's entry, no intent passed
    decisions = ok(server, "list_decisions", {"limit": 1000})["decisions"][::-1]
    kill_index = next(i for i, d in enumerate(decisions) if d["source"] == "control:kill_switch")
    later = [d for d in decisions[kill_index + 1:] if d["decision_type"] == "order_intent"]
    assert later and not any(d["risk_passed"] for d in later)


def test_a_killed_desk_stays_killed_after_kill_9_and_a_restart(server_factory, tmp_path):
    data = tmp_path / "crash"
    server = server_factory(data, extra_env=SIMULATED)
    resting = ok(server, "place_order", {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01,
                                         "price": round(mid(server) - 300.0, 1)})["order"]
    kill = ok(server, "trigger_kill_switch", {"reason": "before the crash"})
    assert [c["order_id"] for c in kill["cancelled"]] == [resting["order_id"]]
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)

    again = server_factory(data, extra_env=SIMULATED)
    status = ok(again, "get_control_status")
    assert (status["state"], status["control_store_ok"], status["kill_reason"]) == ("killed", True,
                                                                                    "before the crash")
    refused = ok(again, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.01})
    assert refused["accepted"] is False and refused["order"]["reasons"][0]["code"] == "TRADING_HALTED"
    assert ok(again, "resume_trading")["action"] == "refused"
    again_kill = ok(again, "trigger_kill_switch", {"reason": "again"})
    assert again_kill["already_killed"] is True and again_kill["cancelled"] == []


def _tamper(data: Path, sql: str) -> None:
    with sqlite3.connect(data / "quantdesk.sqlite3") as conn:
        conn.execute(sql)


@pytest.mark.parametrize("damage", [
    "UPDATE control_rows SET body = replace(body, '\"running\"', '\"paused\"') WHERE name = 'trading_state'",
    "DELETE FROM control_rows WHERE name = 'trading_state'",
    "UPDATE control_rows SET checksum = 'x' WHERE name = 'risk_limits'",
], ids=["edited", "missing", "limits-corrupt"])
def test_an_unreadable_control_store_fails_closed_until_an_admin_resets_it_to_paused(server_factory, tmp_path,
                                                                                    damage):
    data = tmp_path / "store"
    server = server_factory(data, extra_env=SIMULATED)
    assert ok(server, "get_control_status")["state"] == "running"
    assert server.proc is not None
    server.proc.terminate()
    server.proc.wait(timeout=30)
    _tamper(data, damage)

    again = server_factory(data, extra_env=SIMULATED)
    status = ok(again, "get_control_status")
    assert (status["state"], status["control_store_ok"], status["is_trading_allowed"]) == ("unknown", False, False)
    refused = ok(again, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.01})
    assert refused["accepted"] is False
    assert [r["code"] for r in refused["order"]["reasons"]] == ["CONTROL_STATE_UNKNOWN"]
    assert ok(again, "resume_trading")["action"] == "refused"
    assert ok(again, "get_desk_health")["control_store_ok"] is False

    reset = ok(again, "reset_kill_switch", {"reason": "store checked by hand", "confirm": True})
    assert (reset["previous_state"], reset["state"]) == ("unknown", "paused")
    assert ok(again, "resume_trading")["action"] == "resumed"
    assert ok(again, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market",
                                     "quantity": 0.01})["accepted"] is True


def test_a_control_store_damaged_while_serving_is_noticed_at_the_next_order(server_factory, tmp_path):
    data = tmp_path / "live"
    server = server_factory(data, extra_env=SIMULATED)
    assert ok(server, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market",
                                      "quantity": 0.01})["accepted"] is True
    _tamper(data, "UPDATE control_rows SET body = body || ' ' WHERE name = 'trading_state'")
    refused = ok(server, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.01})
    assert [r["code"] for r in refused["order"]["reasons"]] == ["CONTROL_STATE_UNKNOWN"]
    assert ok(server, "get_control_status")["state"] == "unknown"


def test_reset_needs_the_admin_scope_a_reason_and_goes_to_paused_never_running(server_factory, tmp_path):
    server = server_factory(tmp_path / "reset", extra_env=SIMULATED)
    control = server.key("control", "read")
    ok(server, "trigger_kill_switch", {"reason": "drill"}, key=control)
    assert call(server, "reset_kill_switch", {"reason": "done", "confirm": True}, key=control).status_code == 403
    missing_reason = call(server, "reset_kill_switch", {"confirm": True})
    assert missing_reason.status_code == 422
    reset = ok(server, "reset_kill_switch", {"reason": "drill over", "confirm": True})
    assert reset["state"] == "paused"
    status = ok(server, "get_control_status", key=control)
    assert status["state"] == "paused" and status["is_trading_allowed"] is False
    paused = ok(server, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.01})
    assert paused["order"]["reasons"][0]["code"] == "TRADING_PAUSED"
    assert call(server, "reset_kill_switch", {"reason": "again", "confirm": True}).status_code == 409
    assert ok(server, "resume_trading", {"reason": "back"}, key=control)["state"] == "running"


def test_a_restart_restores_open_orders_positions_balances_and_the_clock(server_factory, tmp_path):
    data = tmp_path / "restart"
    server = server_factory(data, extra_env=SIMULATED)
    here = mid(server)
    ok(server, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.2})
    ok(server, "place_order", {"symbol": "ETH-USDT", "side": "buy", "order_type": "market", "quantity": 2.0})
    ok(server, "place_order", {"symbol": PERP, "side": "sell", "order_type": "limit", "quantity": 0.05,
                               "price": round(here + 5_000.0, 1), "client_order_id": "tp-1"})
    ok(server, "place_order", {"symbol": PERP, "side": "sell", "order_type": "stop_market", "quantity": 0.2,
                               "stop_price": round(here - 5_000.0, 1), "reduce_only": True})
    ok(server, "set_margin_mode", {"symbol": "ETH-USDT-PERP", "margin_mode": "isolated"})
    ok(server, "advance_clock", {"seconds": 9 * 3600})

    def snapshot(s: Any) -> dict[str, Any]:
        return {tool: ok(s, tool, args) for tool, args in (
            ("list_orders", {"status": "open"}), ("get_positions", {"include_flat": True}), ("get_balances", {}),
            ("get_account_summary", {}), ("get_desk_status", {}), ("list_funding_payments", {}),
            ("get_equity_series", {"limit": 5}), ("get_order", {"client_order_id": "tp-1"}))}

    before = snapshot(server)
    assert len(before["list_orders"]["orders"]) == 2 and before["list_funding_payments"]["count"] >= 1
    assert server.proc is not None
    server.proc.terminate()
    server.proc.wait(timeout=30)
    after = snapshot(server_factory(data, extra_env=SIMULATED))
    assert after == before
