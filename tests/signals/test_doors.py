"""The signals tools through a real server's REST door (POST /tools/<name>) on a simulated clock: the background
loop runs on the desk clock once started, and bad input gets a clear error that names its field and changes
nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

SCOPES = {"list_signals": "read", "generate_signals": "trade", "run_strategy_cycle": "trade", "run_strategy": "trade",
          "start_strategy_loop": "control", "stop_strategy_loop": "control", "get_strategy_status": "read",
          "get_strategy_profile": "read", "set_strategy_profile": "control", "halt_trading": "control",
          "resume_halted_trading": "admin", "get_signal_metrics": "read", "get_performance_metrics": "read",
          "get_system_metrics": "read", "get_trading_health": "read", "get_trading_portfolio": "read",
          "stream_trading_events": "stream"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, module_server_factory: Any) -> Any:
    return module_server_factory(tmp_path_factory.mktemp("signals"),
                                 extra_env={"QUANTDESK_DESK_CLOCK": "simulated", "QUANTDESK_DESK_SEED": "3"})


def call(server: Any, name: str, args: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/tools/{name}", json=args or {}, headers=server.headers(), timeout=300)


def ok(server: Any, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    response = call(server, name, args)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_loop_runs_on_the_desk_clock_once_started(served):
    status = ok(served, "get_strategy_status")
    assert status["enabled"] is False and status["clock"] == "simulated" and status["profile"] == "balanced"
    assert status["generators"]["momentum"]["ttl_seconds"] == 1800
    started = ok(served, "start_strategy_loop", {"cycle_seconds": 60})
    assert started["enabled"] is True
    # the first cycle at once, then one at each desk time an advance passes a boundary to
    for n, seconds in ((1, 0), (2, 600), (3, 600), (4, 600)):
        if seconds:
            ok(served, "advance_clock", {"seconds": seconds})
        deadline = time.monotonic() + 30
        while ok(served, "get_strategy_status")["cycles"] < n and time.monotonic() < deadline:
            time.sleep(0.05)
        status = ok(served, "get_strategy_status")
        assert status["cycles"] == n and status["last_cycle_ms"] == status["desk_time_ms"]
    assert ok(served, "stop_strategy_loop")["enabled"] is False
    ok(served, "advance_clock", {"seconds": 600})
    time.sleep(0.5)
    assert ok(served, "get_strategy_status")["cycles"] == 4  # stopped: no more cycles


@pytest.mark.parametrize(("tool", "args", "field"), [
    ("run_strategy", {"cycles": 0}, "cycles"),
    ("run_strategy", {"cycles": 10, "extra": 1}, "extra"),
    ("set_strategy_profile", {"profile": "reckless"}, "profile"),
    ("list_signals", {"since": "last tuesday"}, "since"),
    ("list_signals", {"limit": -1}, "limit"),
    ("list_signals", {"signal_type": "astrology"}, "signal_type"),
    ("list_signals", {"symbol": "NOT-A-SYMBOL"}, "symbol"),
    ("get_signal_metrics", {"block": 1}, "block"),
    ("start_strategy_loop", {"cycle_seconds": 1}, "cycle_seconds"),
])
def test_bad_input_names_its_field_and_changes_nothing(served, tool, args, field):
    before = ok(served, "get_strategy_status")
    response = call(served, tool, args)
    assert response.status_code == 422, response.text
    assert field in response.text
    after = ok(served, "get_strategy_status")
    assert (after["profile"], after["enabled"], after["cycle_seconds"]) == \
        (before["profile"], before["enabled"], before["cycle_seconds"])


def test_resume_without_a_halt_does_nothing_and_halt_is_idempotent(served):
    assert ok(served, "resume_halted_trading")["status"] == "already_running"
    first = ok(served, "halt_trading", {"reason": "door test"})
    again = ok(served, "halt_trading", {"reason": "door test again"})
    assert first["already_halted"] is False and again["already_halted"] is True
    assert ok(served, "get_control_status")["state"] == "killed"
    assert ok(served, "resume_halted_trading")["state"] == "running"


@pytest.mark.anyio
async def test_the_signals_tools_over_mcp_carry_their_scopes_and_structured_results(served, open_mcp):
    async with open_mcp("http-modern", served) as client:
        listed: dict[str, Any] = {}
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed.update({t.name: t for t in page.tools})
            if (cursor := page.next_cursor) is None:
                break
        assert set(SCOPES) <= set(listed)
        assert listed["halt_trading"].annotations.destructive_hint is True
        assert listed["get_signal_metrics"].annotations.read_only_hint is True
        cycle = await client.call_tool("run_strategy_cycle", {"generate": True})
        assert cycle.is_error is False and cycle.structured_content["signals_made"] >= 0
        bad = await client.call_tool("set_strategy_profile", {"profile": "reckless"})
        assert bad.is_error is True and "profile" in bad.content[0].text
    described = httpx.get(f"{served.url}/mcp/tools/list", timeout=30).json()
    tools = {t["name"]: t for t in (described["tools"] if isinstance(described, dict) else described)}
    for name, scope in SCOPES.items():
        assert tools[name]["scope"] == scope, name


def test_the_decision_log_reads_back_the_loops_votes(served):
    # The loop's votes carry weight, vote, counted and why a signal did not count; list_decisions must serve them
    # (the fuzzer found it answering 500 once such entries existed).
    ran = ok(served, "run_strategy", {"cycles": 240})
    decisions = ok(served, "list_decisions", {"limit": 500})["decisions"]
    voted = [d for d in decisions if d["agent_votes"] and d["source"] == "signals:strategy"]
    assert voted, (ran, [d["source"] for d in decisions][:10])
    vote = voted[0]["agent_votes"][0]
    assert {"agent_id", "signal_id", "weight", "vote", "counted"} <= set(vote)
