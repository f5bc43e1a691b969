"""AIS (seeds/002): the control plane on :8000, served by the desk's control tools.

AIS documented these routes but its kill switch, cancel-all and deleverage only returned
instructions for an operator; here they act and return what they did, plus the documented
`cancel_instructions` shape. `GET /reports/decisions`, documented and never built, reads the
decision log. Bearer auth (a quantdesk key), `{"detail"}` errors, 401 for a missing or wrong token.
`quantdesk serve --compat ais:8000` serves it at these paths on its own port.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quantdesk.server.registry import CallOutcome
from quantdesk.server.rest_rows import Profile, Row

# AIS's pause and kill bodies may omit the reason; the desk logs one, so say where the request came from.
_DEFAULT_REASON = {"reason": "requested through the AIS control API"}


def _mode(outcome: CallOutcome) -> dict[str, Any]:
    return {"default_mode": outcome.structured["execution_mode"]}


def _decisions(outcome: CallOutcome) -> Any:
    # AIS's DecisionLog carries an ISO `timestamp`; the decision log keeps milliseconds.
    return [{**entry, "timestamp": datetime.fromtimestamp(entry["timestamp_ms"] / 1000, UTC).isoformat()}
            for entry in outcome.structured["decisions"]]


ROWS: tuple[Row, ...] = (
    # AIS named its components after its own stack (Aster, Postgres, Redis); the desk's are reported as they are.
    Row("GET", "/health", "get_desk_health", public=True, summary="Health with component status"),
    Row("GET", "/control/mode", "get_control_status", response=_mode,
        response_schema={"type": "object", "properties": {"default_mode": {"type": "string", "enum": ["paper"]}}},
        summary="The execution mode (paper)"),
    Row("GET", "/control/status", "get_control_status", summary="Control state"),
    Row("POST", "/control/pause", "pause_trading", defaults=_DEFAULT_REASON, summary="Pause: no new exposure"),
    Row("POST", "/control/resume", "resume_trading", summary="Resume a paused desk (refused when killed)"),
    Row("POST", "/control/kill-switch", "trigger_kill_switch", defaults=_DEFAULT_REASON,
        summary="Kill switch: latch killed and cancel every open order"),
    Row("POST", "/control/cancel-all", "cancel_all_orders", summary="Cancel every open order (of the symbols)"),
    Row("POST", "/control/deleverage", "deleverage_position", summary="Reduce a position with a reduce-only order"),
    Row("GET", "/reports/decisions", "list_decisions", response=_decisions,
        response_schema={"type": "array", "items": {"type": "object"}}, summary="Decision log entries"),
)

PROFILE = Profile("ais", "AIS", ROWS, metrics_path="/metrics")
