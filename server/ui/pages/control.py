"""Control: the desk's state, pause, resume, the kill switch with a reason, reset (admin), the decision log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantdesk.server.ui.forms import FormSpec
from quantdesk.server.ui.site import Page, Panel, Visit

FORMS = (
    FormSpec("control.pause", "pause_trading", submit="Pause", result="brief"),
    FormSpec("control.resume", "resume_trading", submit="Resume", result="brief"),
    FormSpec("control.kill", "trigger_kill_switch", submit="Trip the kill switch", danger=True, result="brief",
             confirm="Trip the kill switch? Every open order is cancelled and the desk stays killed until an "
                     "admin resets it."),
    FormSpec("control.reset", "reset_kill_switch", submit="Reset the kill switch", result="brief",
             labels={"confirm": "I understand: the desk re-opens, paused"}),
)
_FILTERS = ("symbol", "decision_type", "risk_passed", "limit")


async def _status(visit: Visit) -> Mapping[str, Any]:
    return {"status": await visit.call("get_control_status")}


def decision_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """The log's filters from the page's query string, typed as list_decisions takes them."""
    args: dict[str, Any] = {}
    for name in _FILTERS:
        value = query.get(name, "").strip()
        if not value:
            continue
        if name == "risk_passed":
            args[name] = value == "true"
        elif name == "limit":
            args[name] = int(value) if value.isdigit() else value
        else:
            args[name] = value
    args.setdefault("limit", 50)
    return args


async def _decisions(visit: Visit) -> Mapping[str, Any]:
    args = decision_filters(visit.request.query_params)
    return {"filters": args, "log": await visit.call("list_decisions", args)}


def page() -> Page:
    return Page(slug="control", title="Control", template="control.html", order=20, forms=FORMS, panels=(
        Panel("status", "control_status.html", _status, topics=("state_change", "risk_event"), title="State"),
        Panel("decisions", "control_decisions.html", _decisions, topics=("decision",), title="Decision log"),
    ))
