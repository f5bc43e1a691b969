"""The Anthropic researcher against a local fake of the Messages API, and the key store, through a real server."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

KEY = "sk-ant-api03-test-0123456789abcdefXY9z"

GOOD_STRATEGY = '''
import numpy as np
from quantdesk_strategy import Featurizer, Predictor

class Momentum(Featurizer):
    warmup = 61
    def compute(self, view):
        p = view.prices("ETH", lookback=61)
        return {"ret_60": np.array([np.log(p[-1] / p[0])])}

class Squash(Predictor):
    def predict(self, features):
        p = 1.0 / (1.0 + np.exp(-200.0 * features["ret_60"][0]))
        return np.array([p, 1.0 - p])
'''
NETWORK_STRATEGY = GOOD_STRATEGY.replace("class Momentum", "import socket\nsocket.create_connection(('1.1.1.1', 443), "
                                                            "timeout=2)\n\nclass Momentum")


class FakeMessagesApi:
    """POST /v1/messages: checks the key in x-api-key or Authorization: Bearer, answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.proposals = [NETWORK_STRATEGY, GOOD_STRATEGY]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.headers.append(headers)
                authorised = headers.get("x-api-key") == KEY or headers.get("authorization") == f"Bearer {KEY}"
                if self.path != "/v1/messages" or not authorised:
                    return self._send(401, {"type": "error", "error": {"type": "authentication_error",
                                                                       "message": "invalid x-api-key"}})
                fake.requests.append(body)
                if body.get("tools"):
                    code = fake.proposals.pop(0) if len(fake.proposals) > 1 else fake.proposals[0]
                    content = [{"type": "text", "text": "Trying 60-minute momentum."},
                               {"type": "tool_use", "id": "toolu_1", "name": "propose_iteration",
                                "input": {"hypothesis": "60-minute momentum predicts the next hour",
                                          "what_changed": "first momentum strategy", "code": code, "done": True,
                                          "notes": "momentum tried", "state": "# Current State\nmomentum\n",
                                          "features": [{"name": "ret_60", "description": "60-minute log return",
                                                        "signal": "momentum"}]}}]
                    stop = "tool_use"
                else:
                    content = [{"type": "text", "text": "AUC is flat; momentum carries little signal."}]
                    stop = "end_turn"
                self._send(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                                 "content": content, "stop_reason": stop, "stop_sequence": None,
                                 "usage": {"input_tokens": 1200, "output_tokens": 300}})

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesApi]:
    fake = FakeMessagesApi()
    yield fake
    fake.close()


def test_the_anthropic_researcher_runs_full_iterations_against_a_fake_messages_api(
        tmp_path: Path, server_factory: Any, fake_api: FakeMessagesApi, tool: Any, until: Any) -> None:
    running = server_factory(tmp_path / "anthropic", extra_env={
        "QUANTDESK_ANTHROPIC_BASE_URL": fake_api.url,
        "QUANTDESK_ANTHROPIC_MODELS": json.dumps({"haiku": "claude-test-haiku"}),
        "ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": ""})
    url, headers = running.url, running.headers()
    stored = tool(url, "set_anthropic_key", {"key": KEY}, headers)
    assert stored.structured == {"set": True, "masked": "sk-ant-a...XY9z"}
    created = tool(url, "create_agent", {"challenge": "ETH-1H-BINARY", "goal": "momentum", "researcher": "anthropic",
                                         "model": "haiku", "min_iterations": 2, "max_iterations": 3}, headers)
    agent_id = created.structured["id"]

    def finished() -> dict[str, Any] | None:
        agent = tool(url, "get_agent", {"agent_id": agent_id}, headers).structured["agent"]
        done = agent["status"] in ("completed", "max_iterations_reached")
        return agent if done and (agent.get("holdout_result") or {}).get("status") == "done" else None

    agent = until(finished, 400, "the anthropic agent to finish")
    iterations = agent["iterations"]
    # the first proposal reached for the network: a failed iteration with its reason, and the agent went on
    assert iterations[0]["has_error"] and "unreachable" in iterations[0]["error"].lower()
    assert not iterations[1]["has_error"] and iterations[1]["done_signal"]
    assert agent["status"] == "completed" and len(iterations) == 2
    assert iterations[1]["tokens"] == {"input": 1200, "output": 300, "cost": pytest.approx(0.0027)}
    assert iterations[1]["model"] == "claude-test-haiku" and iterations[1]["researcher"] == "anthropic"
    assert iterations[1]["analysis"]["feature_report"][0]["name"] == "ret_60"
    request = fake_api.requests[0]
    assert request["model"] == "claude-test-haiku"
    assert request["tool_choice"] == {"type": "tool", "name": "propose_iteration"}
    assert request["tools"][0]["name"] == "propose_iteration"
    # the second request carried the failure of the first, and never a holdout score
    assert "FAILED" in request_text(fake_api.requests[1]) and "holdout_" not in request_text(fake_api.requests[1])
    assert all(h.get("x-api-key") == KEY or h.get("authorization") == f"Bearer {KEY}" for h in fake_api.headers)

    answer = tool(url, "ask_agent", {"agent_id": agent_id, "text": "Is AUC improving?", "wait": True}, headers)
    assert answer.structured == {"status": "answered", "answer": "AUC is flat; momentum carries little signal."}
    assert KEY not in running.log()


def request_text(body: dict[str, Any]) -> str:
    return json.dumps(body["messages"])


def test_keys_are_stored_0600_shown_masked_and_never_echoed(server: Any, tool: Any) -> None:
    url, headers = server.url, server.headers()
    coinglass = "cg-live-abcdef0123456789"
    assert tool(url, "set_coinglass_key", {"key": coinglass}, headers).structured == {"set": True,
                                                                                        "masked": "cg-liv...6789"}
    path = server.data_dir / "keys" / "coinglass.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    shown = tool(url, "get_coinglass_key", {}, headers)
    assert coinglass not in shown.text and shown.structured["set"]
    rejected = tool(url, "set_anthropic_key", {"key": "not-an-anthropic-key-4242"}, headers)
    assert rejected.kind == "invalid_argument" and "4242" not in rejected.text and "sk-ant-" in rejected.text
    assert tool(url, "set_anthropic_key", {"key": "sk-ant-short"}, headers).structured == {"set": True,
                                                                                          "masked": "***"}
    assert tool(url, "delete_anthropic_key", {}, headers).structured == {"set": False, "masked": None}
    assert tool(url, "get_anthropic_key", {}, headers).structured == {"set": False, "masked": None}
    assert tool(url, "delete_coinglass_key", {}, headers).structured["set"] is False
    assert coinglass not in server.log()
