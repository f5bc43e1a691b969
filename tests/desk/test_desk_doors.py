"""The desk through real doors: REST bad input (422 naming the field, never a 500, nothing changed), MCP on
every transport, and the event stream over MCP and over SSE."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio
PERP = "BTC-USDT-PERP"


def post(server: Any, tool: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}/tools/{tool}", content=content, timeout=60,
                      headers={**server.headers(), "content-type": "application/json"}, **kwargs)


def state_of(server: Any) -> Any:
    orders = post(server, "list_orders", {"status": "all", "limit": 1000}).json()["orders"]
    balances = post(server, "get_balances", {}).json()["balances"]
    positions = post(server, "get_positions", {"include_flat": True}).json()["positions"]
    return orders, [(b["asset"], b["total"]) for b in balances], [(p["symbol"], p["size"]) for p in positions]


BAD = [
    ({"symbol": "DOGE-USDT", "side": "buy", "order_type": "market", "quantity": 1.0}, ("symbol",), None),
    ({"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01, "price": 10.05}, ("price",),
     "PRICE_NOT_ON_TICK"),
    ({"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.0001}, ("quantity",),
     "QUANTITY_NOT_ON_LOT"),
    ({"symbol": PERP, "side": "buy", "order_type": "market", "quantity": -1}, ("quantity",), None),
    ({"symbol": PERP, "side": "buy", "order_type": "market", "quantity": "NaN"}, ("quantity",), None),
    ({"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 1e400}, None, None),
    ({"symbol": PERP, "side": "up", "order_type": "market", "quantity": 0.01}, ("side",), None),
    ({"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.01, "leverage": 5}, ("leverage",), None),
    ({"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01}, ("price",), None),
    ({"symbol": PERP * 3, "side": "buy", "order_type": "market", "quantity": 0.01}, ("symbol",), None),
    (b'{"symbol": "BTC-USDT-PERP", "side": "buy", "order_type": "market", "quantity": NaN}', None, None),
]


def test_bad_orders_get_422_naming_the_field_and_change_nothing(server):
    before = state_of(server)
    for body, loc, code in BAD:
        response = post(server, "place_order", body)
        assert response.status_code == 422, (body, response.text)
        detail = response.json()["detail"]
        if loc is not None:
            assert any(tuple(d["loc"]) == loc for d in detail), (body, detail)
        if code is not None:
            assert any(d["msg"].startswith(code) for d in detail), detail
    assert state_of(server) == before


def test_cancels_of_unknown_or_finished_orders_are_404_and_409(server):
    assert post(server, "cancel_order", {"order_id": "ord-99999999"}).status_code == 404
    assert post(server, "cancel_order", {}).status_code == 422
    assert post(server, "cancel_order", {"order_id": "ord-1", "client_order_id": "x"}).status_code == 422
    placed = post(server, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.01,
                                          "client_order_id": "doors-filled"})
    assert placed.json()["order"]["status"] == "filled"
    refused = post(server, "cancel_order", {"client_order_id": "doors-filled"})
    assert refused.status_code == 409 and "client_order_id" in refused.json()["detail"]
    post(server, "place_order", {"symbol": PERP, "side": "sell", "order_type": "market", "quantity": 0.01,
                                 "reduce_only": True})


def test_limits_refuse_nan_unknown_names_and_empty_changes(server):
    assert post(server, "set_risk_limits", {}).status_code == 422
    assert post(server, "set_risk_limits", {"max_leverage": "NaN"}).status_code == 422
    both = post(server, "set_risk_limits", {"max_leverage": 3, "disable": ["max_leverage"]})
    assert both.status_code == 422 and both.json()["detail"][0]["loc"] == ["max_leverage"]
    assert post(server, "deleverage_position", {"symbol": PERP, "reduce_pct": 0}).status_code == 422
    assert post(server, "deleverage_position", {"symbol": PERP, "reduce_pct": 1.5}).status_code == 422
    assert post(server, "advance_clock", {"seconds": 10}).status_code == 409, "the shared server runs in real time"


async def test_place_order_and_a_refusal_over_every_mcp_door(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        status = await client.call_tool("get_control_status", {})
        assert status.is_error is False and status.structured_content["control_store_ok"] is True
        quote = await client.call_tool("get_quote", {"symbol": PERP})
        assert quote.structured_content["data_source"] == "synthetic"
        placed = await client.call_tool("place_order", {"symbol": PERP, "side": "buy", "order_type": "limit",
                                                        "quantity": 0.01,
                                                        "price": round(quote.structured_content["best_bid"] - 1000, 1)})
        assert placed.is_error is False
        order = placed.structured_content["order"]
        assert order["status"] == "open" and placed.structured_content["execution_mode"] == "paper"
        cancelled = await client.call_tool("cancel_order", {"order_id": order["order_id"]})
        assert cancelled.structured_content["order"]["status"] == "cancelled"
        bad = await client.call_tool("place_order", {"symbol": PERP, "side": "buy", "order_type": "market",
                                                     "quantity": 0.0105})
        assert bad.is_error is True and "$.quantity" in bad.content[0].text


async def test_stream_events_returns_the_events_an_action_caused_over_mcp(server, open_mcp):
    async with open_mcp("http-modern", server) as client:
        since = (await client.call_tool("get_event_bus_stats", {})).structured_content["last_seq"]
        quote = (await client.call_tool("get_quote", {"symbol": PERP})).structured_content
        placed = await client.call_tool("place_order", {"symbol": PERP, "side": "buy", "order_type": "limit",
                                                        "quantity": 0.01, "price": round(quote["best_bid"] - 900, 1)})
        order_id = placed.structured_content["order"]["order_id"]
        await client.call_tool("cancel_order", {"order_id": order_id})
        seen: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(message or "")

        streamed = await client.call_tool("stream_events", {"since_seq": since, "symbol": PERP, "max_events": 3,
                                                            "topics": ["decision", "order_accepted",
                                                                       "order_cancelled"],
                                                            "duration_seconds": 10},
                                          progress_callback=on_progress)
    events = streamed.structured_content["events"]
    assert [e["topic"] for e in events] == ["decision", "order_accepted", "order_cancelled"]
    assert events[1]["data"]["order"]["order_id"] == order_id and events[2]["dropped_so_far"] == 0
    assert len(seen) == 3


def test_stream_events_over_sse_delivers_events_as_they_happen(server):
    since = post(server, "get_event_bus_stats", {}).json()["last_seq"]
    best_bid = post(server, "get_quote", {"symbol": PERP}).json()["best_bid"]
    placed = post(server, "place_order", {"symbol": PERP, "side": "sell", "order_type": "limit", "quantity": 0.01,
                                          "price": round(best_bid + 5000, 1)}).json()["order"]
    post(server, "cancel_order", {"order_id": placed["order_id"]})
    body = {"since_seq": since, "topics": ["order_accepted", "order_cancelled"], "max_events": 2,
            "duration_seconds": 10}
    events = []
    with httpx.stream("POST", f"{server.url}/tools/stream_events", json=body, timeout=30,
                      headers={**server.headers(), "accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line.removeprefix("data:").strip()))
    assert [(e["topic"], e["data"]["order"]["order_id"]) for e in events] == [
        ("order_accepted", placed["order_id"]), ("order_cancelled", placed["order_id"])]


def test_place_orders_answers_each_order_and_names_the_field_of_a_bad_one_over_rest(server):
    best_bid = post(server, "get_quote", {"symbol": PERP}).json()["best_bid"]
    far = round(best_bid - 2000, 1)
    body = {"orders": [
        {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01, "price": far,
         "client_order_id": "batch-rest-1"},
        {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01, "price": far + 0.05},
        {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.02, "price": far - 1.0,
         "client_order_id": "batch-rest-1"},
        {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01, "price": far - 2.0},
    ]}
    response = post(server, "place_orders", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    results = answer["results"]
    assert [(r["index"], r["ok"], r["accepted"], r["idempotent_replay"]) for r in results] == [
        (0, True, True, False), (1, False, False, False), (2, True, True, True), (3, True, True, False)]
    assert results[1]["error"]["problems"][0]["path"] == "$.orders[1].price"
    assert "PRICE_NOT_ON_TICK" in results[1]["error"]["problems"][0]["message"]
    assert results[2]["order"]["order_id"] == results[0]["order"]["order_id"]
    assert (answer["accepted"], answer["rejected"], answer["errors"]) == (3, 0, 1)
    assert {r["order"]["source"] for r in results if r["ok"]} == {"tool:place_orders"}
    for order_id in {r["order"]["order_id"] for r in results if r["ok"]}:
        assert post(server, "cancel_order", {"order_id": order_id}).status_code == 200
    too_many = post(server, "place_orders", {"orders": [body["orders"][0]] * 101})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"][0] == "orders"


async def test_place_orders_over_every_mcp_door(door, server, open_mcp):
    async with open_mcp(door, server) as client:
        quote = (await client.call_tool("get_quote", {"symbol": PERP})).structured_content
        price = round(quote["best_bid"] - 1500, 1)
        placed = await client.call_tool("place_orders", {"orders": [
            {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01, "price": price},
            {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01, "price": price - 1.0}]})
        assert placed.is_error is False
        orders = [r["order"] for r in placed.structured_content["results"]]
        assert [o["status"] for o in orders] == ["open", "open"]
        for order in orders:
            cancelled = await client.call_tool("cancel_order", {"order_id": order["order_id"]})
            assert cancelled.structured_content["order"]["status"] == "cancelled"
