"""Market feeds through a real server: a desk replaying a cached generated dataset, a desk with a broken
set-up that still serves (and says why), and the real-clock runner that moves the market without calls."""

from __future__ import annotations

import time
from typing import Any

import httpx

PERP = "BTC-USDT-PERP"


def call(server: Any, tool: str, args: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/tools/{tool}", json=args or {}, headers=server.headers(), timeout=120)


def test_a_desk_replays_a_cached_dataset_named_by_its_cache_key(server_factory, tmp_path):
    data = tmp_path / "replay"
    generate = {"config": {"symbol": PERP, "initial_price": 95000.0, "tick_size": 0.1, "lot_size": 0.001,
                           "duration_seconds": 600, "seed": 5, "start_time_ms": 1_735_689_600_000},
                "driver": {"workers": 1, "multiprocess": False}}
    first = server_factory(data, extra_env={"QUANTDESK_DESK_CLOCK": "simulated"})
    response = call(first, "generate_dataset", generate)
    assert response.status_code == 200, response.text
    cache_key = response.json()["cache_key"]
    assert first.proc is not None
    first.proc.terminate()
    first.proc.wait(timeout=30)
    # a fresh desk (its state store moved aside) in the same folder, whose cache holds the dataset
    (data / "quantdesk.sqlite3").rename(data / "first.sqlite3")
    for suffix in ("-wal", "-shm"):
        (data / f"quantdesk.sqlite3{suffix}").unlink(missing_ok=True)
    second = server_factory(data, extra_env={"QUANTDESK_DESK_CLOCK": "simulated",
                                             "QUANTDESK_DESK_FEED": f"replay:cache:{cache_key}"})
    health = call(second, "get_desk_health").json()
    assert health["engine_ok"], health["error"]
    status = call(second, "get_desk_status").json()
    assert status["data_source"] == "replay" and status["feed"]["symbols"] == [PERP]
    assert status["desk_time_ms"] == 1_735_689_600_000, "a simulated replay starts at the file's first event"
    quote = call(second, "get_quote", {"symbol": PERP}).json()
    assert quote["data_source"] == "replay" and quote["best_bid"] < quote["best_ask"]
    placed = call(second, "place_order", {"symbol": PERP, "side": "buy", "order_type": "limit", "quantity": 0.01,
                                          "price": round(quote["best_bid"] - 20, 1)}).json()
    advanced = call(second, "advance_clock", {"seconds": 600}).json()
    assert advanced["market_events"] > 1000
    assert call(second, "get_order", {"order_id": placed["order"]["order_id"]}).status_code == 200


def test_a_desk_with_a_bad_set_up_serves_unavailable_with_the_reason(server_factory, tmp_path):
    server = server_factory(tmp_path / "broken", extra_env={"QUANTDESK_DESK_FEED": "replay:missing.parquet"})
    health = call(server, "get_desk_health").json()
    assert health["status"] == "degraded" and health["engine_ok"] is False
    assert "missing.parquet" in health["error"]
    refused = call(server, "place_order", {"symbol": PERP, "side": "buy", "order_type": "market", "quantity": 0.01})
    assert refused.status_code == 503 and "missing.parquet" in refused.json()["detail"]
    assert call(server, "get_health").status_code == 200, "the rest of the server is unaffected"


def test_on_the_real_clock_the_runner_moves_the_market_without_calls(server):
    status = call(server, "get_desk_status").json()
    assert status["clock"] == "real" and status["data_source"] == "synthetic"
    health = call(server, "get_desk_health").json()
    assert health["status"] == "ok" and health["runner_ok"] is True
    before = call(server, "get_event_bus_stats").json()["published"]
    start = status["desk_time_ms"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        later = call(server, "get_desk_status").json()["desk_time_ms"]
        if later > start + 500:
            break
        time.sleep(0.2)
    assert later > start + 500
    assert abs(later - time.time() * 1000) < 60_000
    assert call(server, "get_event_bus_stats").json()["published"] >= before
