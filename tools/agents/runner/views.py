"""Agents as the API shows them: the list summary, the full state, the ETag of a list."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from quantdesk.tools.agents.challenges import get_challenge
from quantdesk.tools.agents.runner.records import best_iteration, primary
from quantdesk.tools.agents.runner.store import AgentRow, AgentStore


def _metrics_head(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "windows"}


def _holdout_summary(row: AgentRow) -> dict[str, Any] | None:
    if row.holdout is None:
        return None
    metrics = row.holdout.get("metrics") or {}
    primary_name = get_challenge(row.config["challenge"]).metric.primary
    noise = metrics.get("noise_floor") or {}
    return {"status": row.holdout.get("status"), "iteration": row.holdout.get("iteration"),
            primary_name: metrics.get(primary_name), "noise_floor": noise.get("floor"),
            "beats_noise_floor": noise.get("beats_noise_floor"), "p_value": noise.get("p_value"),
            "confidence_interval": [(metrics.get("confidence_interval") or {}).get("low"),
                                    (metrics.get("confidence_interval") or {}).get("high")]}


def summary(row: AgentRow, records: list[dict[str, Any]]) -> dict[str, Any]:
    challenge = get_challenge(row.config["challenge"])
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "config": row.config, "created_at": row.created_at,
        "iteration_count": len(records), "paused": row.paused, "phase": row.phase,
    }
    if records:
        out["last_metrics"] = _metrics_head(records[-1].get("metrics") or {})
        out["has_error"] = bool(records[-1].get("has_error"))
    best = best_iteration(challenge, records)
    if best is not None:
        out["best"] = {"iteration": best["iteration"], challenge.metric.primary: primary(challenge, best),
                       "segment": "development"}
    holdout = _holdout_summary(row)
    if holdout is not None:
        out["holdout"] = holdout
    if row.error:
        out["error"] = row.error
    return out


def full(row: AgentRow, store: AgentStore, records: list[dict[str, Any]], live: list[str]) -> dict[str, Any]:
    out = summary(row, records)
    out.update({
        "goal": row.goal, "inbox": row.inbox, "iterations": records, "agent_notes": row.notes[-2000:],
        "state_md": row.state_md[-2000:], "chat": store.chat(row.id, 50), "live_activity": live[-30:],
        "updated_at": row.updated_at, "holdout_result": row.holdout, "holdout_runs": row.holdout_runs,
        "iteration": len(records),
    })
    return out


def etag(agents: list[dict[str, Any]]) -> str:
    """First 16 hex digits of the sha256 of the list's JSON (as MANTIS computes it)."""
    return hashlib.sha256(orjson.dumps(agents, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
