"""generate_dataset, the caches, the live stream, describe and plot, through real doors."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import resource
import subprocess
import time

import anyio
import httpx
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.events import EVENT_SCHEMA

pytestmark = pytest.mark.anyio
SMALL = {"config": {"seed": 11, "duration_seconds": 300, "trade_rate_per_second": 4.0},
         "driver": {"workers": 1, "multiprocess": False}}


def rest(server, method, path, headers=None, **kwargs):
    return httpx.request(method, f"{server.url}{path}", headers={**server.headers(), **(headers or {})},
                         timeout=120, **kwargs)


@pytest.fixture(scope="module")
def generated(server):
    response = rest(server, "POST", "/tools/generate_dataset", json=SMALL)
    assert response.status_code == 200, response.text
    return response.json()


def test_generation_answers_in_the_aleatoric_shape(generated):
    for field in ("status", "download_url", "row_count", "storage_backend", "content_length_bytes", "job_id",
                  "manifest_hash"):
        assert field in generated
    assert generated["status"] == "completed" and generated["storage_backend"] == "local"
    assert generated["manifest_hash"].startswith("sha256:")
    assert generated["data_source"] == "synthetic"
    assert generated["download_url"] == f"/artifacts/{generated['job_id']}.parquet"


def test_the_download_is_the_parquet_file_with_its_sha256(server, generated, tmp_path):
    response = rest(server, "GET", generated["download_url"])
    assert response.status_code == 200
    assert len(response.content) == generated["content_length_bytes"]
    assert hashlib.sha256(response.content).hexdigest() == generated["file_sha256"]
    table = pq.read_table(io.BytesIO(response.content))
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=False)
    assert table.num_rows == generated["row_count"]
    ranged = rest(server, "GET", generated["download_url"], headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"PAR1"


def test_the_download_needs_a_key(server, generated):
    assert httpx.get(f"{server.url}{generated['download_url']}").status_code == 401


def test_an_identical_request_is_served_from_the_cache(server, generated):
    again = rest(server, "POST", "/data/generate", json={**SMALL, "driver": {"workers": 2}}).json()
    assert again["cached"] is True
    assert again["job_id"] == generated["job_id"] and again["file_sha256"] == generated["file_sha256"]


def test_impossible_manifests_are_refused_before_any_work_with_every_problem(server):
    bad = {"config": {"volatility_annual": -0.2, "num_levels": 0, "tick_size": 100000.0}, "duration_seconds": 10**7}
    response = rest(server, "POST", "/tools/generate_dataset", json=bad)
    assert response.status_code == 422
    locs = {tuple(d["loc"]) for d in response.json()["detail"]}
    assert {("config", "volatility_annual"), ("config", "num_levels"), ("duration_seconds",)} <= locs


def test_cross_field_problems_are_listed_too(server):
    response = rest(server, "POST", "/tools/generate_dataset",
                    json={"config": {"initial_price": 1.0, "tick_size": 2.0, "trade_size_median": 0.0001}})
    assert response.status_code == 422
    messages = " ".join(d["msg"] for d in response.json()["detail"])
    assert "tick_size" in messages and "trade_size_median" in messages


def test_the_cache_tools_describe_export_stream_and_delete(server, generated):
    key = generated["cache_key"]
    stats = rest(server, "GET", "/mcp/caches/stats").json()
    entry = next(e for e in stats["entries"] if e["cache_key"] == key)
    assert entry["rows"] == generated["row_count"] and entry["compression_ratio"] > 1
    manifest = rest(server, "GET", f"/mcp/caches/{key}/manifest").json()["manifest"]
    assert manifest["manifest_hash"] == generated["manifest_hash"]
    assert manifest["file_sha256"] == generated["file_sha256"]
    assert manifest["config"]["seed"] == 11 and manifest["model_version"] == generated["model_version"]
    exported = rest(server, "GET", f"/mcp/caches/export/{key}")
    assert hashlib.sha256(exported.content).hexdigest() == generated["file_sha256"]
    with httpx.stream("GET", f"{server.url}/mcp/caches/stream/{key}", params={"speed": 0, "max_events": 5},
                      headers=server.headers(), timeout=60) as response:
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    assert len(events) == 5
    assert [e["timestamp_ms"] for e in events] == sorted(e["timestamp_ms"] for e in events)


def test_cache_keys_cannot_traverse_paths(server):
    for key in ("..%2F..%2Fetc%2Fpasswd", ".hidden", "a.b", "%2e%2e"):
        response = rest(server, "GET", f"/mcp/caches/{key}/manifest")
        assert response.status_code in (404, 422), (key, response.status_code)
    for key in ("../../etc/passwd", "..", "/etc/passwd"):
        response = rest(server, "POST", "/tools/get_cache_manifest", json={"cache_key": key})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["cache_key"]


def test_clearing_every_cache_needs_confirm_true(server):
    refused = rest(server, "DELETE", "/mcp/caches")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["confirm"]
    refused = rest(server, "DELETE", "/mcp/caches", params={"confirm": "false"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["msg"] == "must be true"
    assert rest(server, "GET", "/mcp/caches/stats").json()["total_entries"] >= 1
    schema = rest(server, "GET", "/openapi.json").json()["paths"]["/tools/clear_caches"]["post"]
    assert schema["requestBody"]["content"]["application/json"]["schema"]["properties"]["confirm"]["const"] is True


def test_deleting_one_entry_removes_its_artifact(server):
    made = rest(server, "POST", "/tools/generate_dataset",
                json={**SMALL, "config": {**SMALL["config"], "seed": 99}}).json()
    assert rest(server, "DELETE", f"/mcp/caches/{made['cache_key']}").json()["deleted"] == 1
    assert rest(server, "GET", made["download_url"]).status_code == 404
    assert not list((server.data_dir / "artifacts").glob(f"{made['cache_key']}*"))


async def test_a_generation_reports_progress_by_the_percent_not_once_per_window_over_mcp(door, server, open_mcp):
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    # six hours in six one-hour windows of one row group each: once per window would be six notifications
    args = {"config": {"seed": 21, "duration_seconds": 6 * 3600, "trade_rate_per_second": 2.0},
            "driver": {"workers": 1, "multiprocess": False, "window_seconds": 3600}, "use_cache": False}
    async with open_mcp(door, server) as client:
        result = await client.call_tool("generate_dataset", args, progress_callback=on_progress)
    assert result.is_error is False, result.content
    assert result.structured_content["windows"] == 6
    done = [p for p, _ in seen]
    (total,) = {t for _, t in seen}
    assert done == sorted(set(done)), "strictly increasing"
    assert done[-1] == total and len(done) >= 60
    steps = [b - a for a, b in zip([0.0, *done[:-1]], done, strict=True)]
    assert max(steps) <= 0.02 * total, "a notification about every 1% of the work"
    assert any(block.type == "resource_link" for block in result.content)


async def test_cancelling_a_generation_stops_it_and_leaves_nothing(server, open_mcp):
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    args = {"config": {"seed": 31, "duration_seconds": 6 * 86_400, "trade_rate_per_second": 5.0},
            "driver": {"workers": 1, "window_seconds": 3600}}
    async with open_mcp("http-legacy", server) as client:
        async with anyio.create_task_group() as tg:
            async def call() -> None:
                await client.call_tool("generate_dataset", args, progress_callback=on_progress)

            tg.start_soon(call)
            with anyio.fail_after(60):
                await started.wait()
            tg.cancel_scope.cancel()
    artifacts = server.data_dir / "artifacts"
    with anyio.fail_after(30):
        while list((artifacts / ".staging").iterdir()):
            await anyio.sleep(0.1)
    expected = httpx.post(f"{server.url}/tools/validate_config", json={"config": args["config"]},
                          headers=server.headers()).json()["manifest_hash"]
    stats = httpx.get(f"{server.url}/mcp/caches/stats", headers=server.headers()).json()
    assert expected not in {e["manifest_hash"] for e in stats["entries"]}, "a cancelled job published a dataset"


def test_a_write_failure_fails_the_job_cleanly(tmp_path, server_factory):
    running = server_factory(tmp_path / "small-disk",
                             preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000)))
    response = httpx.post(f"{running.url}/tools/generate_dataset", headers=running.headers(), timeout=120,
                          json={"config": {"seed": 5, "duration_seconds": 7200}, "driver": {"workers": 1}})
    assert response.status_code == 503, response.text
    assert "could not write" in response.json()["detail"]
    artifacts = running.data_dir / "artifacts"
    assert not list(artifacts.glob("*.parquet")) and not list((artifacts / ".staging").iterdir())
    assert httpx.get(f"{running.url}/health").status_code == 200


def test_the_live_stream_is_reproducible_with_a_seed(server):
    def first_events(seed: int) -> list[dict]:
        with httpx.stream("GET", f"{server.url}/stream/live", params={"symbol": "BTCUSDT", "seed": seed,
                          "speed": 0, "max_events": 40}, headers=server.headers(), timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            return [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]

    def stable(event: dict) -> dict:
        return {k: v for k, v in event.items() if k not in ("timestamp_ms", "capture_time_ms")}

    a, b, c = first_events(7), first_events(7), first_events(8)
    assert len(a) == 40 and {e["symbol"] for e in a} == {"BTCUSDT"}
    assert [stable(e) for e in a] == [stable(e) for e in b]
    assert [stable(e) for e in a] != [stable(e) for e in c]
    assert {e["event_type"] for e in a} == {"trade", "book"}
    assert abs(a[0]["timestamp_ms"] - time.time() * 1000) < 120_000, "live timestamps start now"


def test_a_client_that_disconnects_frees_the_live_stream(server):
    with httpx.stream("GET", f"{server.url}/stream/live", params={"seed": 1, "speed": 1},
                      headers=server.headers(), timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                break

    def open_streams() -> float:
        text = httpx.get(f"{server.url}/metrics", headers=server.headers()).text
        return float(next(line.split()[1] for line in text.splitlines()
                          if line.startswith("quantdesk_active_streams ")))

    deadline = time.monotonic() + 20
    while open_streams() != 0:
        assert time.monotonic() < deadline, "the stream was not released after the client left"
        time.sleep(0.1)


async def test_over_mcp_the_live_stream_is_a_bounded_batch_with_progress(server, open_mcp):
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with open_mcp("http-modern", server) as client:
        result = await client.call_tool("stream_live", {"seed": 3, "speed": 0, "max_events": 25},
                                        progress_callback=on_progress)
    assert result.structured_content["count"] == 25 and len(seen) == 25
    assert json.loads(seen[0] or "{}") == result.structured_content["events"][0]


async def test_describe_and_plot_work_over_mcp(server, generated, open_mcp):
    async with open_mcp("http-legacy", server) as client:
        described = await client.call_tool("describe_dataset", {"cache_key": generated["cache_key"]})
        plotted = await client.call_tool("plot_dataset", {"cache_key": generated["cache_key"], "width_px": 600,
                                                          "height_px": 400})
    facts = {f["name"]: f for f in described.structured_content["facts"]}
    assert facts["spread_never_crossed"]["passed"] is True
    assert described.structured_content["rows"]["trade"] > 0
    image = next(block for block in plotted.content if block.type == "image")
    assert image.mime_type == "image/png"
    assert base64.b64decode(image.data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_reading_a_file_by_path_needs_admin(server, generated):
    path = str(server.data_dir / "artifacts" / f"{generated['job_id']}.parquet")
    response = httpx.post(f"{server.url}/tools/describe_dataset", json={"path": path},
                          headers={"X-API-Key": server.key("read")}, timeout=60)
    assert response.status_code == 403 and "'admin'" in response.json()["detail"]


def test_describe_cli_reads_any_parquet_file(server, generated, quantdesk_bin, tmp_path):
    # The session's server holds other tools' Parquet files (agent data caches) too; describe this one.
    path = server.data_dir / "artifacts" / f"{generated['job_id']}.parquet"
    assert path.is_file()
    result = subprocess.run([quantdesk_bin, "--data-dir", str(tmp_path), "describe", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "trade_count_fano_1s" in result.stdout


def test_a_crashed_worker_is_retried_and_a_failing_window_fails_the_job_cleanly(tmp_path, server_factory):
    faults = tmp_path / "faults"
    faults.mkdir()
    running = server_factory(tmp_path / "crashy", extra_env={"QUANTDESK_MARKET_FAULTS": "exit:0,raise:1",
                                                             "QUANTDESK_MARKET_FAULTS_DIR": str(faults)})
    args = {"config": {"seed": 8, "duration_seconds": 2 * 3600, "trade_rate_per_second": 2.0},
            "driver": {"workers": 2, "window_seconds": 3600, "backoff_seconds": 0.0}}
    response = httpx.post(f"{running.url}/tools/generate_dataset", json=args, headers=running.headers(),
                          timeout=180)
    assert response.status_code == 200, response.text
    assert response.json()["retries"] >= 2, "a dead worker and a raising window were both retried"

    failing = server_factory(tmp_path / "hopeless", extra_env={"QUANTDESK_MARKET_FAULTS": "raise:0"})
    response = httpx.post(f"{failing.url}/tools/generate_dataset", headers=failing.headers(), timeout=180,
                          json={**args, "driver": {**args["driver"], "max_retries": 1}})
    assert response.status_code == 503 and "after 1 retries" in response.json()["detail"]
    artifacts = failing.data_dir / "artifacts"
    assert not list(artifacts.glob("*.parquet")) and not list((artifacts / ".staging").iterdir())


# --- integers a client echoes back, schemas, bounded inputs ----------------------------------------

MAX_SAFE = 2**53 - 1


def _tools(server) -> dict:
    return {t["name"]: t for t in httpx.get(f"{server.url}/mcp/tools/list").json()["tools"]}


def test_seeds_stay_within_what_javascript_reads_back_exactly(server):
    tools = _tools(server)
    config = tools["generate_dataset"]["inputSchema"]["properties"]["config"]
    assert config["properties"]["seed"]["maximum"] == MAX_SAFE
    assert tools["validate_config"]["inputSchema"]["properties"]["config"]["properties"]["seed"]["maximum"] == MAX_SAFE
    assert tools["stream_live"]["inputSchema"]["properties"]["seed"]["maximum"] == MAX_SAFE
    refused = rest(server, "POST", "/tools/generate_dataset", json={"config": {"seed": MAX_SAFE + 1}})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["config", "seed"]
    refused = rest(server, "GET", "/stream/live", params={"seed": 2**63 - 1, "max_events": 1})
    assert refused.status_code == 422
    largest = rest(server, "POST", "/tools/validate_config", json={"config": {"seed": MAX_SAFE}}).json()
    assert largest["valid"] is True and largest["normalized"]["seed"] == MAX_SAFE


def test_validate_config_advertises_the_manifest_and_answers_rules_between_fields_with_valid_false(server):
    config = _tools(server)["validate_config"]["inputSchema"]["properties"]["config"]
    assert config["additionalProperties"] is False
    assert config["properties"]["volatility_annual"]["exclusiveMinimum"] == 0
    assert config["properties"]["initial_mid"]["deprecated"] is True, "legacy names are advertised"
    legacy = rest(server, "POST", "/tools/validate_config", json={"config": {"initial_mid": 100.0, "tick_size": 0.01,
                                                                            "book_depth": 5}}).json()
    assert legacy["valid"] is True and legacy["normalized"]["initial_price"] == 100.0
    crossed = rest(server, "POST", "/tools/validate_config", json={"config": {"initial_price": 1.0, "tick_size": 2.0}})
    assert crossed.status_code == 200 and crossed.json()["valid"] is False
    assert any("tick_size" in p["message"] for p in crossed.json()["problems"])
    out_of_bounds = rest(server, "POST", "/tools/validate_config", json={"config": {"num_levels": 0}})
    assert out_of_bounds.status_code == 422 and out_of_bounds.json()["detail"][0]["loc"] == ["config", "num_levels"]


def _numbers_and_texts(schema: dict, path: str = "$"):
    """Every property schema in a tool's input (through anyOf, items and nested objects), with its path."""
    for name, prop in schema.get("properties", {}).items():
        yield f"{path}.{name}", prop
        yield from _numbers_and_texts(prop, f"{path}.{name}")
        for option in prop.get("anyOf", []):
            yield f"{path}.{name}", option
            yield from _numbers_and_texts(option, f"{path}.{name}")
        if isinstance(prop.get("items"), dict):
            yield f"{path}.{name}[]", prop["items"]


def test_the_generation_input_schema_is_compact_and_keeps_every_bound(server):
    tools = _tools(server)
    schema = tools["generate_dataset"]["inputSchema"]
    assert len(json.dumps(schema, separators=(",", ":"))) < 6500, "it was 10.6 KB, the manifest's prose twice over"
    config = schema["properties"]["config"]["properties"]
    assert "duration_seconds" in config and "volatility_annual" in config and "spread_bps" not in config
    mine = ("generate_dataset", "validate_config", "get_presets", "describe_dataset", "plot_dataset", "stream_live",
            "get_job", "list_jobs", "cancel_job")
    for tool in mine:
        for path, prop in _numbers_and_texts(tools[tool]["inputSchema"]):
            kind = prop.get("type")
            if kind in ("integer", "number"):
                assert ("maximum" in prop or "exclusiveMaximum" in prop) and (
                    "minimum" in prop or "exclusiveMinimum" in prop), (tool, path)
            if kind == "string" and "enum" not in prop:
                assert "maxLength" in prop, (tool, path)
            if kind == "array":
                assert "maxItems" in prop, (tool, path)


def test_huge_strings_are_refused_by_their_bound(server):
    huge = "B" * 60_000
    for tool, args, field in (("stream_live", {"symbol": huge, "max_events": 1}, "symbol"),
                              ("describe_dataset", {"path": "/" + huge}, "path"),
                              ("get_presets", {"name": huge}, "name"),
                              ("get_job", {"job_id": huge}, "job_id")):
        refused = rest(server, "POST", f"/tools/{tool}", json=args)
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == [field], tool


@pytest.mark.parametrize("content", [b"ts,price\n1,SECRET-ROW-42\n" * 50, b"PAR1" + b"\x00" * 64 + b"PAR1",
                                     "truncated"])
def test_describing_a_file_that_is_not_a_readable_dataset_is_a_clear_error_that_quotes_nothing(server, generated,
                                                                                               content):
    target = server.data_dir / "not-a-dataset.parquet"
    if content == "truncated":
        artifact = next((server.data_dir / "artifacts").glob("*.parquet")).read_bytes()
        target.write_bytes(artifact[: len(artifact) // 2])
    else:
        target.write_bytes(content)
    for tool in ("describe_dataset", "plot_dataset"):
        response = rest(server, "POST", f"/tools/{tool}", json={"path": str(target)})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["path"]
        assert "SECRET" not in response.text


def test_paths_outside_the_data_and_import_directories_are_refused(server, tmp_path):
    outside = tmp_path / "elsewhere.parquet"
    outside.write_bytes(b"PAR1")
    response = rest(server, "POST", "/tools/describe_dataset", json={"path": str(outside)})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path"]
    assert rest(server, "POST", "/tools/describe_dataset", json={"path": "missing.parquet"}).status_code == 404
