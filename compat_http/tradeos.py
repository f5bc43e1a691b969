"""TRADEOS (seeds/004): the trading OS API on :18000, served by the signals, desk and risk tools.

TRADEOS's runtime was never published; its API document is the spec. `/trading/halt` is the control plane's
kill switch (the document's "Redis kill switch"; one latch for every door), `/trading/resume` resets it and
resumes. `/trades` and `/signals` answer lists, `since` is an ISO timestamp. Bearer auth when a key is
configured (or `?token=`, as the WebSocket takes it); with none, quantdesk serves loopback callers only. The
metrics API (port 18003) is the `tradeos-metrics` profile (compat_http/tradeos_metrics.py).
`quantdesk serve --compat tradeos:18000 --compat tradeos-metrics:18003`.
"""

from __future__ import annotations

from typing import Any

from quantdesk.server.rest_rows import Credentials, Profile, Row, WsRow, iso_to_ms, iso_utc, result_field

_LIST = {"type": "array", "items": {"type": "object"}}
_ISO = {"type": "string", "format": "date-time", "description": "ISO-8601 timestamp (UTC when no offset)."}


def _since(args: dict[str, Any]) -> dict[str, Any]:
    """TRADEOS's `since` (ISO) as the trades tool's since_ms."""
    value = args.pop("since", None)
    return args if value is None else {**args, "since_ms": iso_to_ms(value, "since")}


def _message(event: dict[str, Any]) -> dict[str, Any] | None:
    """A bus event as a TRADEOS message: `{"type", "data", "timestamp"}`."""
    data = event["data"]
    kind = {"portfolio": "portfolio_update", "strategy_profile": "profile_change"}.get(event["topic"], event["topic"])
    stamp = iso_utc(event.get("timestamp_ms"))
    body = {k: v for k, v in data.items() if k != "event_type"}
    if kind == "portfolio_update":
        p = data["portfolio"]
        body = {"total_value": p["total_value_usd"], "cash": p["cash_usd"],
                "unrealized_pnl": p["unrealized_pnl_usd"], "positions": p["positions"]}
    elif kind == "signal":
        body = data["signal"]
    return {"type": kind, "data": body, "timestamp": stamp}


ROWS: tuple[Row, ...] = (
    Row("GET", "/healthz", "get_trading_health", summary="System health and dependency status"),
    Row("GET", "/portfolio", "get_trading_portfolio", summary="Current portfolio state"),
    Row("GET", "/positions", "get_positions", response=result_field("positions"), response_schema=_LIST,
        summary="All open positions"),
    Row("GET", "/trades", "list_trades", request=_since, defaults={"limit": 50}, response=result_field("trades"),
        response_schema=_LIST, params={"since": _ISO, "since_ms": None, "until_ms": None},
        summary="Recent trade history (limit, symbol, since)"),
    Row("GET", "/signals", "list_signals", response=result_field("signals"), response_schema=_LIST,
        summary="Recent signals from the pipeline (limit, signal_type, symbol)"),
    Row("POST", "/trading/halt", "halt_trading", summary="Halt all trading: the control plane's kill switch"),
    Row("POST", "/trading/resume", "resume_halted_trading", summary="Resume trading after a halt"),
    Row("GET", "/profile", "get_strategy_profile", summary="The active strategy profile"),
    Row("POST", "/profile", "set_strategy_profile", summary="Set the active strategy profile"),
)

WEBSOCKETS: tuple[WsRow, ...] = (
    # one socket, every message type, from the one event bus; a month is the stream tool's longest duration
    WsRow("/ws", "stream_trading_events", {"max_events": 10**9, "duration_seconds": 30 * 86_400,
                                           "max_queue": 20_000}, _message, auth="query"),
)

PROFILE = Profile("tradeos", "TRADEOS", ROWS, credentials=Credentials(query="token"), websockets=WEBSOCKETS)
