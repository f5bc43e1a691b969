"""Agents: the list and a create form; per agent (`?agent=<id>`) its score per iteration, the holdout beside its
noise floor, one iteration's code and computed feature report (`&iteration=<n>`), the inbox, the chat and the
lifecycle buttons.

The panels re-render on the bus's `agent` topic, which the agents domain publishes after each committed change
(created, status or phase, iteration, chat, deleted): nothing asks on a timer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantdesk.server.errors import NotFound
from quantdesk.server.ui.forms import FormSpec
from quantdesk.server.ui.site import Page, Panel, Visit

TOPICS = ("agent",)
ACTIVE = ("starting", "running", "paused")
_AGENT = ("agent_id",)

FORMS = (
    FormSpec("agents.create", "create_agent", submit="Create agent", result="brief",
             fields=("challenge", "goal", "researcher", "model", "min_iterations", "max_iterations", "days_back"),
             defaults={"challenge": "ETH-1H-BINARY", "researcher": "builtin"},
             labels={"days_back": "days of history", "min_iterations": "min iterations",
                     "max_iterations": "max iterations"}),
    FormSpec("agents.pause", "pause_agent", hidden=_AGENT, fields=(), submit="Pause", inline=True, result="brief"),
    FormSpec("agents.resume", "resume_agent", hidden=_AGENT, fields=(), submit="Resume", inline=True,
             result="brief"),
    FormSpec("agents.stop", "stop_agent", hidden=_AGENT, fields=(), submit="Stop", inline=True, result="brief",
             danger=True, confirm="Stop this agent? The running evaluation is killed and its best strategy so far "
                                  "is scored once on the holdout."),
    FormSpec("agents.delete", "delete_agent", hidden=_AGENT, fields=(), submit="Delete", inline=True,
             result="brief", danger=True,
             confirm="Delete this agent with its iterations, code, chat and files? This cannot be undone."),
    FormSpec("agents.message", "send_agent_message", hidden=_AGENT, fields=("text",), submit="Send to inbox",
             result="brief", labels={"text": "message"}),
    FormSpec("agents.ask", "ask_agent", hidden=_AGENT, fields=("text",), fixed={"wait": True}, submit="Ask",
             result="brief", labels={"text": "question"}),
)


def chosen(visit: Visit) -> tuple[str, int | None]:
    """The agent (`?agent=`) and iteration (`?iteration=`) the page shows; a bad id reaches the tools as typed."""
    query = visit.request.query_params
    raw = query.get("iteration", "").strip()
    return query.get("agent", "").strip(), int(raw) if raw.isdigit() and int(raw) > 0 else None


async def _challenges(visit: Visit) -> dict[str, dict[str, Any]]:
    return dict((await visit.call("list_challenges"))["challenges"])


async def summary_of(visit: Visit, agent_id: str) -> dict[str, Any]:
    """The agent's list_agents summary; an unknown or malformed id fails with get_agent_goal's own error."""
    for agent in (await visit.call("list_agents"))["agents"]:
        if agent["id"] == agent_id:
            return dict(agent)
    await visit.call("get_agent_goal", {"agent_id": agent_id})
    raise NotFound(f"no agent {agent_id!r}")


def is_live(agent: Mapping[str, Any]) -> bool:
    """Still changing by itself: iterating, paused, or its holdout being scored."""
    return agent["status"] in ACTIVE or (agent.get("holdout") or {}).get("status") == "running"


def metric_of(challenges: Mapping[str, Any], agent: Mapping[str, Any]) -> dict[str, Any]:
    challenge = challenges.get(agent["config"]["challenge"], {})
    info = challenge.get("metric_info", {})
    return {"primary": info.get("primary", ""), "label": info.get("label", ""), "all": info.get("all", []),
            "direction": info.get("direction", ""), "no_skill": challenge.get("no_skill_value"),
            "short": challenge.get("short", ""), "desc": challenge.get("desc", "")}


async def _list(visit: Visit) -> Mapping[str, Any]:
    agent_id, _ = chosen(visit)
    if agent_id:
        return {"agents": [], "challenges": {}, "selected": agent_id}
    listing = await visit.call("list_agents")
    challenges = await _challenges(visit)
    return {"agents": listing["agents"], "challenges": challenges, "selected": "",
            "metrics": {a["id"]: metric_of(challenges, a) for a in listing["agents"]}}


async def _challenge_list(visit: Visit) -> Mapping[str, Any]:
    agent_id, _ = chosen(visit)
    return {"challenges": {} if agent_id else await _challenges(visit)}


async def _status(visit: Visit) -> Mapping[str, Any]:
    agent_id, _ = chosen(visit)
    if not agent_id:
        return {"agent": None, "missing": ""}
    try:
        agent = await summary_of(visit, agent_id)
    except NotFound as exc:  # deleted, or a link to an agent of another server
        return {"agent": None, "missing": exc.message}
    return {"agent": agent, "metric": metric_of(await _challenges(visit), agent), "missing": ""}


async def _iterations(visit: Visit) -> Mapping[str, Any]:
    agent_id, picked = chosen(visit)
    if not agent_id:
        return {"agent": None}
    agent = await summary_of(visit, agent_id)
    listing = await visit.call("list_agent_iterations", {"agent_id": agent_id})
    metric = metric_of(await _challenges(visit), agent)
    rows = listing["iterations"]
    scored = [r for r in rows if (r.get("metrics") or {}).get(metric["primary"]) is not None]
    return {"agent": agent, "metric": metric, "iterations": rows, "picked": picked or len(rows),
            "xs": [r["iteration"] for r in scored],
            "scores": [r["metrics"][metric["primary"]] for r in scored],
            "no_skill": [metric["no_skill"]] * len(scored) if metric["no_skill"] is not None else [],
            "others": [m for m in metric["all"] if m != metric["primary"]],
            "live": is_live(agent)}


async def _holdout(visit: Visit) -> Mapping[str, Any]:
    agent_id, _ = chosen(visit)
    if not agent_id:
        return {"agent": None}
    agent = await summary_of(visit, agent_id)
    result = await visit.call("get_agent_holdout", {"agent_id": agent_id})
    scored = (result["holdout"] or {}).get("metrics") or {}
    noise = scored.get("noise_floor") or {}
    windows = [value for w in scored.get("windows", []) if (value := _window_value(w)) is not None]
    # the floor and its band drawn as flat lines across the windows the holdout was scored on
    lines = {name: [noise[key]] * len(windows) for name, key in (("floor", "floor"), ("low", "band_low"),
                                                                   ("high", "band_high"))
             if isinstance(noise.get(key), int | float)}
    return {"agent": agent, "metric": metric_of(await _challenges(visit), agent), "result": result,
            "scored": scored, "noise": noise, "ci": scored.get("confidence_interval") or {},
            "audit": scored.get("causality_audit") or {}, "split": scored.get("split") or {},
            "window_x": list(range(1, len(windows) + 1)), "window_values": windows, "lines": lines}


def _window_value(window: Mapping[str, Any]) -> float | None:
    """A walk-forward window's score: its one value besides the row bounds (auc, log_loss, ... by challenge)."""
    values = [v for k, v in window.items() if k not in ("start", "end") and isinstance(v, int | float)]
    return float(values[0]) if values else None


async def _iteration(visit: Visit) -> Mapping[str, Any]:
    agent_id, picked = chosen(visit)
    if not agent_id:
        return {"agent_id": ""}
    agent = await summary_of(visit, agent_id)
    number = picked or agent["iteration_count"]
    if not number:
        return {"agent_id": agent_id, "number": 0, "agent": agent}
    args = {"agent_id": agent_id, "iteration": number}
    metrics = await visit.call("get_iteration_metrics", args)
    features = await visit.call("get_iteration_features", args)
    try:
        code: str | None = (await visit.call("get_agent_code", args))["code"]
    except NotFound as exc:  # an iteration whose researcher failed before writing code
        code, missing = None, exc.message
    else:
        missing = ""
    return {"agent_id": agent_id, "agent": agent, "number": number, "following": picked is None,
            "analysis": metrics["analysis"], "features": features["feature_report"], "code": code,
            "missing": missing, "metric": metric_of(await _challenges(visit), agent), "metrics": metrics["metrics"]}


async def _inbox(visit: Visit) -> Mapping[str, Any]:
    agent_id, _ = chosen(visit)
    if not agent_id:
        return {"inbox": None}
    inbox = (await visit.call("get_agent_inbox", {"agent_id": agent_id}))["content"]
    return {"inbox": inbox, "active": bool(inbox) and (await summary_of(visit, agent_id))["status"] in ACTIVE}


async def _chat(visit: Visit) -> Mapping[str, Any]:
    agent_id, _ = chosen(visit)
    if not agent_id:
        return {"chat": None}
    return {"chat": await visit.call("get_agent_chat", {"agent_id": agent_id})}


def page() -> Page:
    return Page(slug="agents", title="Agents", template="agents.html", order=40, forms=FORMS,
                panels=(
                    Panel("agents", "agents_list.html", _list, topics=TOPICS, title="Agents"),
                    Panel("challenges", "agents_challenges.html", _challenge_list, title="Challenges"),
                    Panel("status", "agents_status.html", _status, topics=TOPICS, title="Agent"),
                    Panel("iterations", "agents_iterations.html", _iterations, topics=TOPICS,
                          title="Development score per iteration"),
                    Panel("holdout", "agents_holdout.html", _holdout, topics=TOPICS,
                          title="Final holdout beside its noise floor"),
                    Panel("iteration", "agents_iteration.html", _iteration, topics=TOPICS,
                          title="Code and computed feature report"),
                    Panel("inbox", "agents_inbox.html", _inbox, topics=TOPICS, title="Inbox"),
                    Panel("chat", "agents_chat.html", _chat, title="Chat"),
                ))
