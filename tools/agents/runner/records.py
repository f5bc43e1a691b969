"""Building iteration records (spec §3 fields) and agent summaries from what the loop produced."""

from __future__ import annotations

from typing import Any

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.evaluate.evaluator import Evaluation
from quantdesk.tools.agents.researchers.base import Proposal


def primary(challenge: Challenge, record: dict[str, Any]) -> float | None:
    if record.get("has_error"):
        return None
    value = (record.get("metrics") or {}).get(challenge.metric.primary)
    return float(value) if isinstance(value, int | float) else None


def better(challenge: Challenge, a: float, b: float, margin: float = 0.0) -> bool:
    return a > b + margin if challenge.metric.direction == "higher" else a < b - margin


def best_iteration(challenge: Challenge, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for record in records:
        value = primary(challenge, record)
        if value is not None and (best is None or better(challenge, value, primary(challenge, best) or 0.0)):
            best = record
    return best


def iteration_record(challenge: Challenge, iteration: int, proposal: Proposal | None, evaluation: Evaluation | None,
                     error: str | None, previous: list[dict[str, Any]], *, timestamp: str, elapsed_seconds: float,
                     activity: list[str], min_iterations: int, researcher: str, sandbox_mode: str) -> dict[str, Any]:
    metrics = dict(evaluation.metrics) if evaluation is not None and evaluation.ok else {}
    has_error = error is not None
    if has_error:
        metrics = {"error": error}
    value = primary(challenge, {"metrics": metrics, "has_error": has_error})
    best = best_iteration(challenge, previous)
    best_value = primary(challenge, best) if best else None
    noise = float(metrics.get("noise_sd") or 0.0)
    improved = value is not None and (best_value is None or better(challenge, value, best_value, 2 * noise))
    name = challenge.metric.primary
    if value is None:
        worked, failed = "", error or ""
    elif best_value is None:
        worked, failed = f"first scored strategy: {name} {value:.4f}", ""
    elif improved:
        worked, failed = f"{name} {best_value:.4f} -> {value:.4f}, beyond two noise SDs ({2 * noise:.4f})", ""
    else:
        worked, failed = "", f"{name} {value:.4f} vs best {best_value:.4f}: not beyond two noise SDs ({2 * noise:.4f})"
    done_claim = bool(proposal.done) if proposal else False
    analysis = {
        "feature_report": evaluation.feature_report if evaluation is not None and evaluation.ok else [],
        "feature_report_source": "computed by the evaluator on the development rows",
        "inference_spec": proposal.inference_spec if proposal else {},
        "hypothesis": proposal.hypothesis if proposal else "",
        "what_changed": proposal.what_changed if proposal else "",
        "what_worked": worked, "what_failed": failed,
        "expected_outcome": f"{name} better than the best so far by more than two noise SDs",
        "log": list(proposal.thoughts) if proposal else [], "done": done_claim,
    }
    tokens = proposal.usage.as_tokens() if proposal else {"input": 0, "output": 0, "cost": 0.0}
    return {
        "iteration": iteration, "timestamp": timestamp, "metrics": metrics, "analysis": analysis,
        "activity": activity[-50:], "thoughts": (list(proposal.thoughts) if proposal else [])[-20:],
        "tokens": tokens, "elapsed_s": round(elapsed_seconds, 3),
        "result_text": (proposal.what_changed if proposal else "") if not has_error else f"failed: {error}",
        "code_path": f"iteration_{iteration}.py", "has_error": has_error, "error": error,
        "done_signal": done_claim and iteration >= min_iterations and not has_error,
        "timed_out": bool(evaluation.timed_out) if evaluation else False, "custom_data_used": False,
        "improved": improved, "researcher": researcher, "model": proposal.model if proposal else "",
        "feature_spec": proposal.feature_spec if proposal else [],
        "learner_spec": proposal.learner_spec if proposal else {},
        "sandbox": {"mode": sandbox_mode, "seconds": evaluation.sandbox_seconds if evaluation else 0.0,
                    "output_tail": (evaluation.output_tail[-2000:] if evaluation else "")},
        "embeddings_digest": evaluation.embeddings_digest if evaluation else None,
    }


def history_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What a researcher sees of an iteration: development metrics and computed reports, never the holdout."""
    analysis = record.get("analysis") or {}
    return {"iteration": record["iteration"], "metrics": {k: v for k, v in (record.get("metrics") or {}).items()
                                                          if k != "windows"},
            "feature_report": analysis.get("feature_report") or [], "learner_spec": record.get("learner_spec") or {},
            "feature_spec": record.get("feature_spec") or [], "hypothesis": analysis.get("hypothesis", ""),
            "what_changed": analysis.get("what_changed", ""), "has_error": record.get("has_error", False),
            "error": record.get("error")}
