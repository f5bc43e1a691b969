"""The MANTIS document's curl examples, replayed against `quantdesk serve --compat mantis:PORT`.

MANTIS without a token trusted localhost; quantdesk always wants a key, so each command gets the
document's own Bearer header and nothing else changes but the base URL and the agent id.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Any

import httpx
import pytest

DOC_ID = "a1b2c3d4e5f6"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mantis(tmp_path_factory: pytest.TempPathFactory, module_server_factory: Any) -> Any:
    port = free_port()
    server = module_server_factory(tmp_path_factory.mktemp("mantis"), args=("--compat", f"mantis:{port}"),
                                   extra_env={"QUANTDESK_MANTIS_RATE_LIMIT": "0"})
    server.mantis_url = f"http://127.0.0.1:{port}"
    return server


def run(mantis: Any, command: str, agent_id: str = DOC_ID, auth: bool = True) -> subprocess.CompletedProcess[str]:
    shell = command.replace("http://localhost:8420", mantis.mantis_url).replace(DOC_ID, agent_id)
    if auth:
        shell = shell.replace("curl ", 'curl -s -H "Authorization: Bearer $MANTIS_AUTH_TOKEN" ', 1)
    env = {**os.environ, "MANTIS_AUTH_TOKEN": mantis.admin_key}
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def curl(mantis: Any, command: str, agent_id: str = DOC_ID) -> Any:
    return json.loads(run(mantis, command, agent_id).stdout)


def status_of(mantis: Any, command: str, agent_id: str = DOC_ID) -> int:
    done = run(mantis, command.replace("curl ", "curl -o /dev/null -w '%{http_code}' ", 1), agent_id)
    return int(done.stdout)


def test_health_is_public(mantis):
    body = json.loads(run(mantis, "curl -s http://localhost:8420/health", auth=False).stdout)
    assert body["status"] == "healthy" and body["agents_running"] == 0 and body["max_agents"] >= 1
    assert body["uptime_s"] >= 0


def test_the_api_wants_a_token_in_a_header_a_cookie_or_the_query(mantis):
    assert httpx.get(f"{mantis.mantis_url}/api/challenges", timeout=30).status_code == 401
    by_query = httpx.get(f"{mantis.mantis_url}/api/challenges", params={"token": mantis.admin_key}, timeout=30)
    assert by_query.status_code == 200
    assert by_query.cookies.get("mantis_token") == mantis.admin_key, "a browser's first visit remembers the token"
    by_cookie = httpx.get(f"{mantis.mantis_url}/api/challenges", cookies={"mantis_token": mantis.admin_key},
                          timeout=30)
    assert by_cookie.status_code == 200
    wrong = httpx.get(f"{mantis.mantis_url}/api/challenges", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401 and "error" in wrong.json()


def test_challenges_are_listed_by_name_in_the_documented_shape(mantis):
    challenges = curl(mantis, "curl http://localhost:8420/api/challenges")
    assert {"ETH-1H-BINARY", "ETH-HITFIRST-100M", "ETH-LBFGS", "BTC-LBFGS-6H", "MULTI-BREAKOUT", "XSEC-RANK",
            "FUNDING-XSEC"} <= set(challenges)
    eth = challenges["ETH-1H-BINARY"]
    assert eth["type"] == "binary" and eth["asset"] == "ETH" and eth["metric"] == "AUC"
    assert eth["metric_info"]["primary"] == "mean_auc" and eth["metric_info"]["direction"] == "higher"


def test_bad_requests_get_the_documented_error_shape_and_status(mantis):
    unknown = run(mantis, """curl -X POST http://localhost:8420/api/agents \\
      -H "Content-Type: application/json" \\
      -d '{"challenge": "NOPE", "goal": "x"}' -w '\\n%{http_code}'""").stdout.rsplit("\n", 1)
    assert unknown[1] == "400" and "NOPE" in json.loads(unknown[0])["error"]
    missing = run(mantis, """curl -X POST http://localhost:8420/api/agents \\
      -H "Content-Type: application/json" -d '{"challenge": "ETH-1H-BINARY"}' -w '\\n%{http_code}'""")
    body, status = missing.stdout.rsplit("\n", 1)
    assert status == "400" and "goal" in json.loads(body)["error"]
    assert status_of(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6") == 404
    assert "error" in curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6")


def test_keys_are_set_masked_and_removed(mantis):
    stored = curl(mantis, """curl -X POST http://localhost:8420/api/anthropic-key \\
      -H "Content-Type: application/json" \\
      -d '{"key": "sk-ant-api03-abcdefghijklmnopxY9z"}'""")
    assert stored == {"set": True, "masked": "sk-ant-a...xY9z"}
    assert curl(mantis, "curl http://localhost:8420/api/anthropic-key") == stored
    assert curl(mantis, "curl -X DELETE http://localhost:8420/api/anthropic-key")["set"] is False
    coinglass = curl(mantis, """curl -X POST http://localhost:8420/api/coinglass-key \\
      -H "Content-Type: application/json" \\
      -d '{"key": "your-coinglass-key"}'""")
    assert coinglass == {"set": True, "masked": "your-c...-key"}
    assert curl(mantis, "curl -X DELETE http://localhost:8420/api/coinglass-key")["set"] is False
    refused = run(mantis, """curl -X POST http://localhost:8420/api/anthropic-key -H "Content-Type: application/json" \\
      -d '{"key": "not-a-key"}' -w '\\n%{http_code}'""").stdout.rsplit("\n", 1)
    assert refused[1] == "400" and "not-a-key" not in refused[0]


def test_an_agent_through_the_documented_routes(mantis):
    created_raw = run(mantis, """curl -X POST http://localhost:8420/api/agents \\
      -H "Content-Type: application/json" \\
      -d '{
        "challenge": "ETH-1H-BINARY",
        "goal": "Explore momentum and mean-reversion signals using RSI and Bollinger bands",
        "max_iterations": 10
      }' -w '\\n%{http_code}'""").stdout.rsplit("\n", 1)
    created = json.loads(created_raw[0])
    assert created_raw[1] == "201" and created["status"] == "starting"
    agent = created["id"]

    assert curl(mantis, "curl -X POST http://localhost:8420/api/agents/a1b2c3d4e5f6/pause", agent) == {"paused": True}
    assert curl(mantis, """curl -X POST http://localhost:8420/api/agents/a1b2c3d4e5f6/goal \\
      -H "Content-Type: application/json" \\
      -d '{"goal": "Focus on volume-weighted momentum features"}'""", agent) == {"status": "updated"}
    goal = curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/goal", agent)
    assert goal["content"] == "# Research Goal\n\nFocus on volume-weighted momentum features\n"
    assert curl(mantis, """curl -X POST http://localhost:8420/api/agents/a1b2c3d4e5f6/message \\
      -H "Content-Type: application/json" \\
      -d '{"text": "Try adding RSI divergence as a feature"}'""", agent) == {"status": "sent"}
    inbox = curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/inbox", agent)
    assert inbox["content"].endswith("Operator: Try adding RSI divergence as a feature")
    assert curl(mantis, """curl -X POST http://localhost:8420/api/agents/a1b2c3d4e5f6/inbox \\
      -H "Content-Type: application/json" \\
      -d '{"content": "New instructions here"}'""", agent) == {"status": "ok"}
    assert curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/inbox", agent) == \
        {"content": "New instructions here"}
    chat = curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/chat", agent)
    assert chat["paused"] is True and chat["messages"][-1]["role"] == "user"

    summaries = httpx.get(f"{mantis.mantis_url}/api/agents", headers=mantis.headers(), timeout=30)
    assert summaries.status_code == 200 and summaries.json()[0]["id"] == agent
    assert summaries.json()[0]["config"]["challenge"] == "ETH-1H-BINARY"
    tag = summaries.headers["ETag"]
    unchanged = httpx.get(f"{mantis.mantis_url}/api/agents", headers={**mantis.headers(), "If-None-Match": tag},
                          timeout=30)
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == tag and unchanged.content == b""
    full = curl(mantis, "curl http://localhost:8420/api/agents?full=1")
    assert "iterations" in full[0]

    # One iteration is enough to see every observability route; the agent stops when asked.
    assert curl(mantis, "curl -X POST http://localhost:8420/api/agents/a1b2c3d4e5f6/resume", agent) == \
        {"paused": False}
    deadline = time.monotonic() + 400
    while curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/iterations", agent)["count"] < 1:
        assert time.monotonic() < deadline, "no iteration finished"
        time.sleep(1)
    iterations = curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/iterations", agent)
    first = iterations["iterations"][0]
    assert first["iteration"] == 1 and "mean_auc" in first["metrics"]
    assert httpx.get(f"{mantis.mantis_url}/api/agents", headers={**mantis.headers(), "If-None-Match": tag},
                     timeout=30).status_code == 200, "an iteration changed the list"

    code = run(mantis, "curl -i http://localhost:8420/api/agents/a1b2c3d4e5f6/code/1", agent).stdout
    assert "content-type: text/plain" in code.lower() and "(Predictor):" in code
    features = curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/iterations/1/features", agent)
    assert features["iteration"] == 1 and features["feature_report"]
    assert features["feature_report"][0]["predictive_power"]["method"].startswith("spearman")
    metrics = curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/iterations/1/metrics", agent)
    assert metrics["iteration"] == 1 and metrics["metrics"]["windows"]
    stdout = curl(mantis, 'curl "http://localhost:8420/api/agents/a1b2c3d4e5f6/stdout?tail=50"', agent)
    assert stdout["showing"] <= 50 and stdout["lines"] >= stdout["showing"] and stdout["content"]
    assert "content" in curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/notes", agent)
    assert "content" in curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/state", agent)
    assert status_of(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6/code/400", agent) == 404

    assert curl(mantis, "curl -X POST http://localhost:8420/api/agents/a1b2c3d4e5f6/stop", agent) == \
        {"status": "stopped"}
    assert curl(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6", agent)["status"] == "stopped"
    assert curl(mantis, "curl -X POST http://localhost:8420/api/agents/a1b2c3d4e5f6/delete", agent) == \
        {"status": "deleted"}
    assert status_of(mantis, "curl http://localhost:8420/api/agents/a1b2c3d4e5f6", agent) == 404


def test_the_data_cache_routes(mantis):
    cache = curl(mantis, "curl http://localhost:8420/api/data-cache")
    assert {"60", "90", "120", "180"} <= set(cache)
    status = curl(mantis, "curl http://localhost:8420/api/data-cache/status")
    assert {"running", "progress", "step", "total_steps", "error", "finished_at"} <= set(status)
    assert curl(mantis, """curl -X POST http://localhost:8420/api/data-cache/delete \\
      -H "Content-Type: application/json" \\
      -d '{"days_back": 90}'""") == {"status": "deleted", "days_back": 90}


def test_the_openapi_document_says_what_mantis_answers(mantis):
    paths = httpx.get(f"{mantis.mantis_url}/openapi.json", timeout=30).json()["paths"]
    listing = paths["/api/agents"]["get"]
    assert "304" in listing["responses"] and "400" in listing["responses"] and "422" not in listing["responses"]
    assert {"name": "If-None-Match", "in": "header"}.items() <= next(
        p for p in listing["parameters"] if p["in"] == "header").items()
    assert "text/plain" in paths["/api/agents/{agent_id}/code/{iteration}"]["get"]["responses"]["200"]["content"]
