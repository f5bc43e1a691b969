"""MANTIS (seeds/003): the research-agent API on :8420, served by the agents tools.

Same paths and bodies as the MANTIS HTTP API, with three honest differences its clients can rely
on: strategies run in quantdesk's sandbox (no Docker), the built-in researcher works without an
Anthropic key, and feature reports are computed by the evaluator rather than written by the agent.
`GET /api/agents/<id>/holdout` is new: the one holdout score beside its noise floor.

MANTIS' auth: `Authorization: Bearer`, the `mantis_token` cookie, or `?token=` (remembered in the
cookie, as a browser's first visit did); `/health` is public. Errors are `{"error": "..."}` with
400 for bad arguments. `quantdesk serve --compat mantis:8420` serves it at these paths on its own port.
"""

from __future__ import annotations

from typing import Any

from quantdesk.server.errors import QuantdeskError
from quantdesk.server.rest_rows import Credentials, Profile, Row, result_field

AGENT = "/api/agents/{agent_id}"


def _error_body(status: int, exc: QuantdeskError, request_id: str) -> dict[str, Any]:
    # MANTIS clients read `error`; the request id lets an operator find the server's log line.
    return {"error": exc.message, "request_id": request_id}


_OBJECT = {"type": "object"}

ROWS: tuple[Row, ...] = (
    Row("GET", "/health", "get_agents_health", public=True, summary="Health and running agents"),
    Row("GET", "/api/challenges", "list_challenges", response=result_field("challenges"), response_schema=_OBJECT,
        summary="Challenges by name"),
    Row("GET", "/api/agents", "list_agents", headers={"If-None-Match": "if_none_match"}, etag="etag",
        response=result_field("agents"), response_schema={"type": "array", "items": _OBJECT},
        summary="Agents, newest first (ETag, If-None-Match: 304)"),
    Row("POST", "/api/agents", "create_agent", status_code=201, summary="Create and launch an agent"),
    Row("GET", AGENT, "get_agent", response=result_field("agent"), response_schema=_OBJECT,
        summary="One agent in full"),
    Row("GET", f"{AGENT}/holdout", "get_agent_holdout", summary="The one holdout score, with its noise floor"),
    Row("POST", f"{AGENT}/stop", "stop_agent", summary="Stop an agent"),
    Row("POST", f"{AGENT}/delete", "delete_agent", summary="Delete an agent and its data"),
    Row("POST", f"{AGENT}/pause", "pause_agent", summary="Pause between iterations"),
    Row("POST", f"{AGENT}/resume", "resume_agent", summary="Resume a paused agent"),
    Row("GET", f"{AGENT}/goal", "get_agent_goal", summary="The research goal"),
    Row("POST", f"{AGENT}/goal", "set_agent_goal", summary="Replace the research goal"),
    Row("POST", f"{AGENT}/message", "send_agent_message", summary="Message the agent's inbox"),
    Row("GET", f"{AGENT}/inbox", "get_agent_inbox", summary="The inbox"),
    Row("POST", f"{AGENT}/inbox", "replace_agent_inbox", summary="Replace the inbox"),
    Row("GET", f"{AGENT}/chat", "get_agent_chat", summary="Chat history"),
    Row("POST", f"{AGENT}/ask", "ask_agent", summary="Ask about the agent (answer lands in the chat)"),
    Row("GET", f"{AGENT}/notes", "get_agent_notes", summary="notes.txt"),
    Row("GET", f"{AGENT}/state", "get_agent_state", summary="STATE.md"),
    Row("GET", f"{AGENT}/stdout", "get_agent_stdout", summary="The activity log's last lines"),
    Row("GET", f"{AGENT}/iterations", "list_agent_iterations", summary="Every iteration's results"),
    Row("GET", f"{AGENT}/code/{{iteration}}", "get_agent_code", text="code", summary="An iteration's source"),
    Row("GET", f"{AGENT}/iterations/{{iteration}}/features", "get_iteration_features",
        summary="The evaluator's feature report"),
    Row("GET", f"{AGENT}/iterations/{{iteration}}/metrics", "get_iteration_metrics", summary="Metrics and analysis"),
    Row("GET", "/api/anthropic-key", "get_anthropic_key", summary="Whether the Anthropic key is set (masked)"),
    Row("POST", "/api/anthropic-key", "set_anthropic_key", summary="Store the Anthropic key"),
    Row("DELETE", "/api/anthropic-key", "delete_anthropic_key", summary="Remove the Anthropic key"),
    Row("GET", "/api/coinglass-key", "get_coinglass_key", summary="Whether the CoinGlass key is set (masked)"),
    Row("POST", "/api/coinglass-key", "set_coinglass_key", summary="Store the CoinGlass key"),
    Row("DELETE", "/api/coinglass-key", "delete_coinglass_key", summary="Remove the CoinGlass key"),
    Row("GET", "/api/data-cache", "get_data_cache", response=result_field("entries"), response_schema=_OBJECT,
        summary="Cached lookback windows"),
    Row("POST", "/api/data-cache/prefetch", "prefetch_data", summary="Start a background prefetch (409 if running)"),
    Row("GET", "/api/data-cache/status", "get_data_cache_status", summary="Prefetch progress"),
    Row("POST", "/api/data-cache/delete", "delete_data_cache", summary="Delete one window (409 while prefetching)"),
    Row("GET", "/api/sandbox", "get_sandbox_status", summary="What the strategy sandbox enforces here"),
)

PROFILE = Profile(
    "mantis", "MANTIS", ROWS, error_body=_error_body,
    credentials=Credentials(cookie="mantis_token", query="token", remember_query_in_cookie=True),
    status_by_kind={"invalid_argument": 400},
    rate_limit_per_minute=120, rate_limit_env="QUANTDESK_MANTIS_RATE_LIMIT",
)
