"""Generation jobs through real doors: wait=false, get_job, cancel_job, and a job that outlives its server."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.pipeline import generate_to_parquet

pytestmark = pytest.mark.anyio
SIX_HOURS = {"seed": 61, "duration_seconds": 6 * 3600, "trade_rate_per_second": 3.0}


def rest(server: Any, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers=server.headers(key), timeout=120, **kwargs)


def poll(server: Any, job_id: str, until: set[str], seconds: float = 120.0, key: str | None = None) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        response = rest(server, "GET", f"/jobs/{job_id}", key)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in until:
            return job
        assert time.monotonic() < deadline, f"job stayed {job['status']}"
        time.sleep(0.05)


def checkpoint_of(data_dir: Path, job_id: str) -> dict | None:
    with sqlite3.connect(data_dir / "quantdesk.sqlite3") as conn:
        row = conn.execute("SELECT checkpoint FROM job_runs WHERE job_id = ?", (job_id,)).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def test_wait_false_answers_at_once_with_a_job_whose_result_is_what_a_waiting_call_gets(server: Any) -> None:
    args = {"config": {**SIX_HOURS, "seed": 62}, "driver": {"workers": 1}, "wait": False}
    started = rest(server, "POST", "/tools/generate_dataset", json=args)
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["status"] == "queued" and body["row_count"] is None
    assert body["status_url"] == f"/jobs/{body['job_id']}"
    job = poll(server, body["job_id"], {"completed", "failed", "cancelled"})
    assert job["status"] == "completed" and job["owner"] == "server" and job["error"] is None
    assert job["progress"]["done"] == job["progress"]["total"]
    result = job["result"]
    download = rest(server, "GET", result["download_url"])
    assert hashlib.sha256(download.content).hexdigest() == result["file_sha256"]
    waited = rest(server, "POST", "/tools/generate_dataset", json={**args, "wait": True}).json()
    assert waited["cached"] is True and waited["file_sha256"] == result["file_sha256"]
    assert waited["job_id"] == body["job_id"], "the cache answers with the job that made the file"
    listed = rest(server, "GET", "/jobs", params={"status": "completed", "kind": "generate_dataset"}).json()
    assert body["job_id"] in {j["job_id"] for j in listed["jobs"]}


def test_a_job_is_visible_to_the_key_that_started_it_and_to_admins_only(server: Any) -> None:
    owner, other = server.key("generate", "read"), server.key("read")
    body = rest(server, "POST", "/tools/generate_dataset", owner,
                json={"config": {**SIX_HOURS, "seed": 63, "duration_seconds": 600}, "wait": False}).json()
    assert rest(server, "GET", f"/jobs/{body['job_id']}", owner).status_code == 200
    assert rest(server, "GET", f"/jobs/{body['job_id']}").status_code == 200  # the admin key
    assert rest(server, "GET", f"/jobs/{body['job_id']}", other).status_code == 404
    assert rest(server, "DELETE", f"/jobs/{body['job_id']}", other).status_code == 404
    assert body["job_id"] not in {j["job_id"] for j in rest(server, "GET", "/jobs", other).json()["jobs"]}
    assert rest(server, "GET", "/jobs/..%2F..%2Fetc").status_code in (404, 422)
    assert rest(server, "GET", "/jobs", params={"limit": 0}).status_code == 422


def test_cancelling_a_running_job_stops_it_and_publishes_nothing(server: Any) -> None:
    args = {"config": {**SIX_HOURS, "seed": 64, "duration_seconds": 6 * 86_400},
            "driver": {"workers": 1, "window_seconds": 3600}, "wait": False}
    body = rest(server, "POST", "/tools/generate_dataset", json=args).json()
    running = poll(server, body["job_id"], {"running"})
    assert running["status"] == "running"
    cancelled = rest(server, "DELETE", f"/jobs/{body['job_id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"]["kind"] == "unavailable"
    stats = rest(server, "GET", "/mcp/caches/stats").json()
    assert body["job_id"] not in {e["cache_key"] for e in stats["entries"]}
    assert not (server.data_dir / "jobs" / body["job_id"]).exists()


def test_a_server_job_survives_a_killed_server_and_resumes_from_its_written_windows(
        tmp_path: Path, server_factory: Any) -> None:
    data = tmp_path / "restarted"
    faults = tmp_path / "faults"
    faults.mkdir()
    # window 3 hangs in its worker, so the first three are written and checkpointed when the server dies
    first = server_factory(data, extra_env={"QUANTDESK_MARKET_FAULTS": "hang:3",
                                            "QUANTDESK_MARKET_FAULTS_DIR": str(faults)})
    args = {"config": SIX_HOURS, "driver": {"workers": 2, "window_seconds": 3600}, "wait": False}
    body = rest(first, "POST", "/tools/generate_dataset", json=args).json()
    deadline = time.monotonic() + 60
    while (checkpoint_of(data, body["job_id"]) or {}).get("windows_written", 0) < 3:
        assert time.monotonic() < deadline, "no checkpoint of the first windows"
        time.sleep(0.05)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)
    assert first.proc.returncode == -signal.SIGKILL

    second = server_factory(data)
    job = poll(second, body["job_id"], {"completed", "failed", "cancelled"})
    assert job["status"] == "completed", job["error"]
    assert job["resumes"] == 1 and job["result"]["resumed_windows"] == 3, (job, second.log()[-3000:])
    reference = tmp_path / "reference.parquet"
    expected = generate_to_parquet(SimulationManifest.model_validate(SIX_HOURS), DriverConfig(workers=1), reference)
    assert job["result"]["file_sha256"] == expected.sha256, (job, second.log()[-3000:])
    assert job["result"]["manifest_hash"] == SimulationManifest.model_validate(SIX_HOURS).manifest_hash()


def test_a_waiting_call_cut_off_by_a_killed_server_is_failed_with_its_reason_at_the_next_start(
        tmp_path: Path, server_factory: Any) -> None:
    import threading

    data = tmp_path / "cut"
    first = server_factory(data, extra_env={"QUANTDESK_MARKET_FAULTS": "hang:1"})
    args = {"config": {**SIX_HOURS, "seed": 65}, "driver": {"workers": 2, "window_seconds": 3600}}

    def call() -> None:
        try:
            rest(first, "POST", "/tools/generate_dataset", json=args)
        except httpx.HTTPError:
            pass  # the server dies under it

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 60
    while True:
        jobs = rest(first, "GET", "/jobs", params={"status": "running"}).json()["jobs"]
        if jobs:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)
    caller.join(timeout=60)
    second = server_factory(data)
    job = rest(second, "GET", f"/jobs/{jobs[0]['job_id']}").json()
    assert job["status"] == "failed" and job["owner"] == "request"
    assert job["error"]["message"].startswith("interrupted:")
    assert not (data / "jobs" / jobs[0]["job_id"]).exists()


async def test_over_mcp_wait_false_gives_a_job_and_get_job_follows_it(server: Any, open_mcp: Any) -> None:
    async with open_mcp("http-modern", server) as client:
        started = await client.call_tool("generate_dataset", {"config": {**SIX_HOURS, "seed": 66,
                                                                         "duration_seconds": 900}, "wait": False})
        assert started.is_error is False
        job_id = started.structured_content["job_id"]
        deadline = time.monotonic() + 60
        while True:
            job = (await client.call_tool("get_job", {"job_id": job_id})).structured_content
            if job["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline
        assert job["status"] == "completed" and job["result"]["row_count"] > 0
        missing = await client.call_tool("get_job", {"job_id": "qd_gen_0000000000000000"})
        assert missing.is_error is True


def test_a_rest_client_that_hangs_up_on_a_waiting_call_cancels_its_job(server: Any) -> None:
    args = {"config": {**SIX_HOURS, "seed": 67, "duration_seconds": 6 * 86_400},
            "driver": {"workers": 1, "window_seconds": 3600}}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/tools/generate_dataset", json=args, headers=server.headers(),
                   timeout=httpx.Timeout(30.0, read=2.0))
    deadline = time.monotonic() + 60
    while True:
        jobs = rest(server, "GET", "/jobs", params={"kind": "generate_dataset", "limit": 200}).json()["jobs"]
        mine = [j for j in jobs if j["arguments"]["config"]["seed"] == 67]
        if mine and mine[0]["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, mine
        time.sleep(0.05)
    assert mine[0]["status"] == "cancelled" and mine[0]["owner"] == "request"
    assert "the call that waited for it ended" in mine[0]["error"]["message"]
    assert not (server.data_dir / "jobs" / mine[0]["job_id"]).exists()
