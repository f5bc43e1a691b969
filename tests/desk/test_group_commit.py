"""Group commit: orders placed through a door are written in groups, and no caller hears back before its
order is committed. In process: a deferred order is invisible to another connection until its group
commits, a failed group commit reverts the desk and tells every waiting caller. Through a server: every
answered order and fill survives a kill -9 in the middle of concurrent placements."""

from __future__ import annotations

import signal
import sqlite3
import threading
from typing import Any

import httpx
import pytest

from quantdesk.tools.desk.model import OrderRequest

PERP = "BTC-USDT-PERP"
SIMULATED = {"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_DESK_SEED": "5"}


def _stored_orders(path: Any) -> list[str]:
    with sqlite3.connect(path) as conn:  # another connection: sees only what is committed
        return [row[0] for row in conn.execute("SELECT order_id FROM desk_orders ORDER BY seq")]


def test_deferred_orders_are_written_together_and_their_callers_hear_after_the_commit(desks: Any) -> None:
    desk = desks.open()
    engine, path = desk.engine, desk.state.path
    heard: list[BaseException | None] = []
    first = engine.place_order(OrderRequest(PERP, "buy", "market", 0.01), defer=True)
    generation = engine.pending_generation
    assert generation is not None and engine.on_commit(generation, heard.append)
    second = engine.place_order(OrderRequest(PERP, "sell", "market", 0.01), defer=True)
    assert engine.pending_generation == generation, "the second order joins the same group"
    assert _stored_orders(path) == [] and heard == []

    engine.commit_pending()
    assert heard == [None]
    assert _stored_orders(path) == [first.order.order_id, second.order.order_id]
    assert engine.pending_generation is None and engine.on_commit(generation, heard.append) is False


def test_reads_and_other_steps_write_the_pending_group_first(desks: Any) -> None:
    desk = desks.open()
    engine, path = desk.engine, desk.state.path
    placed = engine.place_order(OrderRequest(PERP, "buy", "market", 0.01, client_order_id="g-1"), defer=True)
    again = engine.place_order(OrderRequest(PERP, "buy", "market", 0.01, client_order_id="g-1"), defer=True)
    assert again.replayed is True and [f.fill_id for f in again.fills] == [f.fill_id for f in placed.fills]
    assert _stored_orders(path) == [placed.order.order_id], "the replay had to read the first order back"

    engine.place_order(OrderRequest(PERP, "sell", "market", 0.01), defer=True)
    desk.control.pause("review", "tester")  # a control-plane write comes after the pending orders
    assert len(_stored_orders(path)) == 2 and engine.pending_generation is None


def test_a_failed_group_commit_reverts_the_desk_and_tells_every_waiting_caller(desks: Any) -> None:
    desk = desks.open()
    engine, path = desk.engine, desk.state.path
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.01))
    before = (dict(engine.balances), {s: p.key() for s, p in engine.positions.items()}, engine._order_seq)
    heard: list[BaseException | None] = []
    engine.place_order(OrderRequest(PERP, "buy", "market", 0.02), defer=True)
    generation = engine.pending_generation
    assert generation is not None and engine.on_commit(generation, heard.append)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TRIGGER fail_once BEFORE INSERT ON desk_orders "
                     "BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END")

    with pytest.raises(sqlite3.DatabaseError, match="simulated storage failure"):
        engine.commit_pending()
    assert len(heard) == 1 and "simulated storage failure" in str(heard[0])
    assert (dict(engine.balances), {s: p.key() for s, p in engine.positions.items()}, engine._order_seq) == before
    with pytest.raises(sqlite3.DatabaseError):
        engine.on_commit(generation, heard.append)  # a late caller of that group gets the error too
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER fail_once")
    assert engine.place_order(OrderRequest(PERP, "buy", "market", 0.02)).order.order_id == "ord-00000002"


def test_every_answered_order_and_fill_survives_a_kill_9_during_concurrent_placements(
        server_factory: Any, tmp_path: Any) -> None:
    data = tmp_path / "crash"
    server = server_factory(data, extra_env=SIMULATED)
    headers = server.headers()
    httpx.post(f"{server.url}/tools/set_risk_limits", json={"disable": ["max_orders_per_second"]}, headers=headers,
               timeout=60).raise_for_status()
    best_bid = httpx.post(f"{server.url}/tools/get_quote", json={"symbol": PERP}, headers=headers,
                          timeout=60).json()["best_bid"]
    answered: list[dict[str, Any]] = []
    lock = threading.Lock()
    enough = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(headers=headers, timeout=60) as http:
            for i in range(1000):
                args = ({"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.002,
                         "price": round(best_bid - 300.0 - n, 1)} if i % 2 else
                        {"symbol": PERP, "side": "buy" if n % 2 else "sell", "order_type": "market",
                         "quantity": 0.002})
                try:
                    response = http.post(f"{server.url}/tools/place_order", json=args)
                except httpx.HTTPError:
                    return  # the server is gone: this call was not answered
                assert response.status_code == 200, response.text
                with lock:
                    answered.append(response.json())
                    if len(answered) >= 120:
                        enough.set()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=120)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()

    again = server_factory(data, extra_env=SIMULATED)
    orders = httpx.post(f"{again.url}/tools/list_orders", json={"status": "all", "limit": 1000},
                        headers=again.headers(), timeout=60).json()["orders"]
    fills = httpx.post(f"{again.url}/tools/list_fills", json={"limit": 1000}, headers=again.headers(),
                       timeout=60).json()["fills"]
    stored = {o["order_id"]: o for o in orders}
    stored_fills = {f["fill_id"] for f in fills}
    for body in answered:
        order = body["order"]
        assert order["order_id"] in stored, order["order_id"]
        assert stored[order["order_id"]]["filled_quantity"] >= order["filled_quantity"]
        assert {f["fill_id"] for f in body["fills"]} <= stored_fills
