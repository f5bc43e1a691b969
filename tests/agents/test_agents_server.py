"""Agents through a real `quantdesk serve`: the whole lifecycle, bad input, the concurrency cap, a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

FINISHED = ("completed", "max_iterations_reached", "stopped", "crashed")


def agent_of(tool: Any, server: Any, agent_id: str) -> dict[str, Any]:
    answer = tool(server.url, "get_agent", {"agent_id": agent_id}, server.headers())
    assert not answer.is_error, answer.text
    return dict(answer.structured["agent"])


def finished_with_holdout(tool: Any, server: Any, agent_id: str) -> dict[str, Any] | None:
    agent = agent_of(tool, server, agent_id)
    holdout = agent.get("holdout_result") or {}
    if agent["status"] in FINISHED and holdout.get("status") in ("done", "failed", "skipped"):
        return agent
    return None


def test_an_agent_runs_its_whole_lifecycle_through_the_tools(server: Any, tool: Any, until: Any) -> None:
    url, headers = server.url, server.headers()

    def call(name: str, **arguments: Any) -> dict[str, Any]:
        answer = tool(url, name, arguments, headers)
        assert not answer.is_error, (name, answer.text)
        return dict(answer.structured)

    created = call("create_agent", challenge="ETH-1H-BINARY", goal="Explore momentum signals",
                   min_iterations=1, max_iterations=2)
    agent_id = created["id"]
    assert created["status"] == "starting"
    assert call("pause_agent", agent_id=agent_id) == {"paused": True}
    until(lambda: agent_of(tool, server, agent_id)["status"] == "paused", 120, "the agent to pause")
    paused_at = agent_of(tool, server, agent_id)["iteration_count"]
    assert call("get_agent_chat", agent_id=agent_id)["paused"] is True

    assert call("set_agent_goal", agent_id=agent_id, goal="Focus on mean reversion") == {"status": "updated"}
    assert "Focus on mean reversion" in call("get_agent_goal", agent_id=agent_id)["content"]
    assert call("send_agent_message", agent_id=agent_id, text="try rsi") == {"status": "sent"}
    assert "Operator: try rsi" in call("get_agent_inbox", agent_id=agent_id)["content"]
    assert agent_of(tool, server, agent_id)["iteration_count"] == paused_at

    assert call("resume_agent", agent_id=agent_id) == {"paused": False}
    agent = until(lambda: finished_with_holdout(tool, server, agent_id), 400, "the agent to finish")
    assert agent["status"] in ("completed", "max_iterations_reached")
    assert agent["holdout_runs"] == 1
    assert call("get_agent_inbox", agent_id=agent_id)["content"] == ""  # delivered, then cleared

    iterations = call("list_agent_iterations", agent_id=agent_id)
    assert iterations["count"] == agent["iteration_count"] >= 1
    first = iterations["iterations"][0]
    assert first["tokens"] == {"input": 0, "output": 0, "cost": 0.0}
    assert first["metrics"]["segment"] == "development" and first["metrics"]["windows"]
    assert all(w["end"] <= first["metrics"]["rows"] for w in first["metrics"]["windows"])
    assert "class" in call("get_agent_code", agent_id=agent_id, iteration=1)["code"]
    features = call("get_iteration_features", agent_id=agent_id, iteration=1)["feature_report"]
    assert features and features[0]["importance_rank"] == 1 and "p_value" in features[0]["predictive_power"]
    metrics = call("get_iteration_metrics", agent_id=agent_id, iteration=1)
    assert metrics["metrics"]["mean_auc"] == first["metrics"]["mean_auc"]

    holdout = call("get_agent_holdout", agent_id=agent_id)
    assert holdout["holdout_runs"] == 1 and holdout["holdout"]["status"] == "done"
    scored = holdout["holdout"]["metrics"]
    assert scored["segment"] == "holdout" and scored["noise_floor"]["available"]
    assert scored["confidence_interval"]["low"] <= scored["mean_auc"] <= scored["confidence_interval"]["high"]
    assert scored["causality_audit"]["passed"]
    # the researcher never saw the holdout: nothing of it is in what an iteration records
    assert "holdout" not in str(iterations["iterations"][-1]["metrics"])

    assert "Current State" in call("get_agent_state", agent_id=agent_id)["content"]
    assert call("get_agent_notes", agent_id=agent_id)["content"]
    stdout = call("get_agent_stdout", agent_id=agent_id, tail=3)
    assert stdout["showing"] == 3 and stdout["lines"] > 3 and "[holdout]" in stdout["content"]

    answer = call("ask_agent", agent_id=agent_id, text="How is the AUC trending?", wait=True)
    assert answer["status"] == "answered" and "iterations so far" in answer["answer"]
    chat = call("get_agent_chat", agent_id=agent_id)["messages"]
    assert [m["type"] for m in chat] == ["message", "ask", "ask"]
    assert call("replace_agent_inbox", agent_id=agent_id, content="New instructions") == {"status": "ok"}
    assert call("get_agent_inbox", agent_id=agent_id)["content"] == "New instructions"

    listing = call("list_agents")
    mine = next(a for a in listing["agents"] if a["id"] == agent_id)
    assert mine["holdout"]["status"] == "done" and mine["best"]["segment"] == "development"
    again = call("list_agents", if_none_match=listing["etag"])
    assert again["not_modified"] and again["agents"] == [] and again["etag"] == listing["etag"]
    full = call("list_agents", full=True)
    assert "iterations" in next(a for a in full["agents"] if a["id"] == agent_id)

    assert call("stop_agent", agent_id=agent_id) == {"status": "stopped"}  # finished: nothing changes
    assert agent_of(tool, server, agent_id)["holdout_runs"] == 1
    assert call("delete_agent", agent_id=agent_id) == {"status": "deleted"}
    assert tool(url, "get_agent", {"agent_id": agent_id}, headers).kind == "not_found"


@pytest.mark.parametrize(("arguments", "field"), [
    ({"challenge": "ETH-2H-BINARY", "goal": "x"}, "$.challenge"),
    ({"challenge": "ETH-1H-BINARY", "goal": ""}, "$.goal"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x" * 10_001}, "$.goal"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x", "days_back": 59}, "$.days_back"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x", "days_back": 366}, "$.days_back"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x", "max_iterations": 501}, "$.max_iterations"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x", "min_iterations": 0}, "$.min_iterations"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x", "min_iterations": 9, "max_iterations": 3}, "$.min_iterations"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x", "model": "gpt"}, "$.model"),
    ({"challenge": "ETH-1H-BINARY", "goal": "x", "researcher": "anthropic"}, "$.researcher"),
], ids=["unknown-challenge", "empty-goal", "long-goal", "days-low", "days-high", "max-high", "min-low",
        "min-above-max", "model", "no-anthropic-key"])
def test_bad_create_arguments_are_clear_errors_naming_the_field(
        server: Any, tool: Any, arguments: dict[str, Any], field: str) -> None:
    answer = tool(server.url, "create_agent", arguments, server.headers())
    assert answer.is_error and answer.kind == "invalid_argument"
    assert field in answer.text


@pytest.mark.parametrize(("name", "arguments", "kind"), [
    ("get_agent", {"agent_id": "0123456789ab"}, "not_found"),
    ("get_agent", {"agent_id": "../etc"}, "invalid_argument"),
    ("get_agent_stdout", {"agent_id": "0123456789ab", "tail": 5001}, "invalid_argument"),
    ("send_agent_message", {"agent_id": "0123456789ab", "text": ""}, "invalid_argument"),
    ("get_agent_code", {"agent_id": "0123456789ab", "iteration": 0}, "invalid_argument"),
    ("delete_data_cache", {"days_back": 30}, "invalid_argument"),
], ids=["unknown-agent", "bad-id", "tail", "empty-message", "iteration-zero", "cache-days"])
def test_bad_agent_requests_are_clear_errors(server: Any, tool: Any, name: str, arguments: dict[str, Any],
                                             kind: str) -> None:
    answer = tool(server.url, name, arguments, server.headers())
    assert answer.is_error and answer.kind == kind


def test_agents_beyond_the_concurrency_cap_are_rate_limited(tmp_path: Path, server_factory: Any, tool: Any,
                                                            until: Any) -> None:
    running = server_factory(tmp_path / "capped", extra_env={"QUANTDESK_AGENTS_MAX": "1"})
    headers = running.headers()
    first = tool(running.url, "create_agent", {"challenge": "ETH-1H-BINARY", "goal": "x", "max_iterations": 1},
                 headers)
    assert not first.is_error
    second = tool(running.url, "create_agent", {"challenge": "ETH-1H-BINARY", "goal": "y"}, headers)
    assert second.is_error and second.kind == "rate_limited"
    health = tool(running.url, "get_agents_health", {}, headers).structured
    assert health["agents_running"] == 1 and health["max_agents"] == 1
    tool(running.url, "stop_agent", {"agent_id": first.structured["id"]}, headers)
    third = tool(running.url, "create_agent", {"challenge": "ETH-1H-BINARY", "goal": "z", "max_iterations": 1},
                 headers)
    assert not third.is_error
    tool(running.url, "stop_agent", {"agent_id": third.structured["id"]}, headers)


def test_a_running_agent_resumes_after_the_server_is_killed(tmp_path: Path, server_factory: Any, tool: Any,
                                                             until: Any) -> None:
    data_dir = tmp_path / "restart"
    first = server_factory(data_dir)
    created = tool(first.url, "create_agent", {"challenge": "ETH-1H-BINARY", "goal": "momentum",
                                               "min_iterations": 2, "max_iterations": 2}, first.headers())
    agent_id = created.structured["id"]
    until(lambda: agent_of(tool, first, agent_id)["iteration_count"] >= 1, 300, "a first finished iteration")
    before = agent_of(tool, first, agent_id)["iteration_count"]
    first.proc.kill()  # SIGKILL: no shutdown hooks; an iteration in flight is lost
    first.proc.wait()

    second = server_factory(data_dir)
    agent = until(lambda: finished_with_holdout(tool, second, agent_id), 400, "the resumed agent to finish")
    assert agent["status"] == "max_iterations_reached"
    numbers = [r["iteration"] for r in tool(second.url, "list_agent_iterations", {"agent_id": agent_id},
                                            second.headers()).structured["iterations"]]
    assert numbers == [1, 2] and before >= 1
    assert agent["holdout_runs"] == 1
    stdout = tool(second.url, "get_agent_stdout", {"agent_id": agent_id, "tail": 5000}, second.headers())
    assert "[resume]" in stdout.structured["content"]
