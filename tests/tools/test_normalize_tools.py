"""normalize_events, normalize_file (CLI) and get_venue_details through real doors."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.events import EVENT_SCHEMA

pytestmark = pytest.mark.anyio


def trade(i: int, maker: bool = True) -> dict:
    return {"e": "trade", "E": 1672515782136 + i, "s": "BTCUSDT", "t": 1000 + i, "p": "50000.1", "q": "0.01",
            "T": 1672515782136 + i, "m": maker, "M": True}


SNAPSHOT = {"lastUpdateId": 100, "bids": [["49999.9", "1.5"], ["49999.8", "2"]], "asks": [["50000.1", "1"]]}
DIFF = {"e": "depthUpdate", "E": 1672515783000, "s": "BTCUSDT", "U": 101, "u": 102, "b": [["49999.9", "0"]],
        "a": [["50000.2", "3"]]}
GAPPED = {**DIFF, "U": 110, "u": 111, "E": 1672515784000}


def body(payloads: list, **extra) -> dict:
    return {"source": "binance", "symbol": "BTCUSDT", "events": [{"payload": p} for p in payloads], **extra}


def post(server, path: str, json_body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=json_body, headers=server.headers(), timeout=60, **kwargs)


def test_every_input_is_accounted_for_in_the_aleatoric_shape(server):
    payloads = [trade(0), trade(1, maker=False), "not json", {"e": "kline"}, SNAPSHOT, DIFF, GAPPED,
                {"stream": "btcusdt@trade", "data": trade(2)}]
    response = post(server, "/mcp/normalize", body(payloads, market="spot"))
    assert response.status_code == 200, response.text
    out = response.json()
    counts = out["counts"]
    assert counts["inputs"] == len(payloads)
    assert counts["accepted"] + counts["rejected"] + counts["non_event"] + counts["pending"] == len(payloads)
    sides = [e["side"] for e in out["events"] if e["event_type"] == "trade"]
    assert sides == ["sell", "buy", "sell"], "binance m=true means the buyer was maker: a sell aggressor"
    assert {r["index"] for r in out["rejected"]} >= {2, 3}
    assert all(e["symbol"] == "BTC-USDT" and e["raw_symbol"] == "BTCUSDT" for e in out["events"])
    book = [e for e in out["events"] if e["event_type"] == "book"]
    assert book[0]["is_snapshot"] is True and book[0]["best_bid"] == 49999.9
    assert book[-1]["gap"] is True, "U=110 after u=102 breaks continuity"
    assert out["counts"]["gaps"] == 1 and out["data_source"] == "normalized"


def test_a_stream_request_is_answered_with_sse(server):
    payloads = [trade(i) for i in range(5)] + ["oops"]
    with httpx.stream("POST", f"{server.url}/mcp/normalize", json=body(payloads, market="spot", stream=True),
                      headers=server.headers(), timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    data = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    events, result = data[:-1], data[-1]
    assert [e["trade_id"] for e in events] == [str(1000 + i) for i in range(5)]
    assert "event: result" in lines
    assert result["streamed"] is True and result["events"] == [] and result["counts"]["rejected"] == 1


def test_a_stream_request_with_bad_arguments_gets_422_before_any_event(server):
    request = {**body([trade(0)], market="spot", stream=True), "session": "not-a-session"}
    response = httpx.post(f"{server.url}/mcp/normalize", json=request, headers=server.headers(), timeout=60)
    assert response.status_code == 422, "the status must say it, not a 200 with an error event"
    assert response.json()["detail"][0]["loc"] == ["session"]


async def test_over_mcp_streamed_events_arrive_as_progress(server, open_mcp):
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with open_mcp("http-legacy", server) as client:
        result = await client.call_tool("normalize_events", body([trade(i) for i in range(3)], market="spot",
                                                                 stream=True), progress_callback=on_progress)
    assert result.structured_content["counts"]["accepted"] == 3
    assert [json.loads(m or "{}")["trade_id"] for m in seen] == ["1000", "1001", "1002"]


def test_cached_normalized_events_can_be_exported_and_replayed(server):
    out = post(server, "/tools/normalize_events", body([trade(i) for i in range(20)], market="spot",
                                                        enable_cache=True)).json()
    key = out["cache_key"]
    assert key.startswith("qd_norm_")
    download = httpx.get(f"{server.url}/artifacts/{key}.parquet", headers=server.headers())
    table = pq.read_table(io.BytesIO(download.content))
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=False) and table.num_rows == 20
    stats = httpx.get(f"{server.url}/mcp/caches/stats", headers=server.headers()).json()
    entry = next(e for e in stats["entries"] if e["cache_key"] == key)
    assert entry["kind"] == "normalized" and entry["source"] == "binance"


def test_an_unknown_source_names_the_field(server):
    response = post(server, "/mcp/normalize", {"source": "mtgox", "events": []})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["source"]


def test_a_bad_market_names_the_field(server):
    response = post(server, "/mcp/normalize", body([trade(0)], market="moon"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["market"]


def test_the_cli_normalizes_a_gzip_file_with_progress(tmp_path, quantdesk_bin):
    source = tmp_path / "trades.jsonl.gz"
    with gzip.open(source, "wt") as handle:
        for i in range(20_000):
            handle.write(json.dumps(trade(i)) + "\n")
        handle.write("{broken\n")
    target = tmp_path / "out.parquet"
    result = subprocess.run([quantdesk_bin, "--data-dir", str(tmp_path / "data"), "normalize", "--source", "binance",
                             "--market", "spot", str(source), "-o", str(target)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows_written"] == 20_000 and summary["counts"]["rejected"] == 1
    assert summary["rejections"][0]["line"] == 20_001
    assert pq.read_table(target).schema.equals(EVENT_SCHEMA, check_metadata=False)


def test_normalizing_server_files_needs_admin(server, tmp_path):
    response = httpx.post(f"{server.url}/tools/normalize_file", headers={"X-API-Key": server.key("read")},
                          timeout=30, json={"source": "binance", "input_path": "/etc/hostname",
                                            "output_path": str(tmp_path / "x.parquet")})
    assert response.status_code == 403


def test_venue_details_list_the_messages_normalize_accepts(server):
    okx = httpx.get(f"{server.url}/mcp/venues/okx", headers=server.headers()).json()
    assert "books5" in " ".join(okx["normalize_messages"])
    assert okx["tick_size_usd"]["verified"] in (True, False) and okx["tick_size_usd"]["as_of"]
    dydx = httpx.get(f"{server.url}/mcp/venues/dydx", headers=server.headers()).json()
    assert dydx["normalize_messages"] == []
    unknown = httpx.get(f"{server.url}/mcp/venues/mtgox", headers=server.headers())
    assert unknown.status_code == 404 and "binance" in unknown.json()["detail"]


# -- issue 7: paths, overwrite, annotations, schemas, contract sizes, sessions --------------------------------------

DOGE = {"arg": {"channel": "trades", "instId": "DOGE-USDT-SWAP"},
        "data": [{"instId": "DOGE-USDT-SWAP", "tradeId": "310552001", "px": "0.06712", "sz": "12", "side": "buy",
                  "ts": "1690848000123"}]}
SPOT_TICKER = {"u": 400900217, "s": "BTCUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000",
               "A": "40.66000000"}


def feed_file(server, name: str, lines: list) -> Path:
    folder = server.data_dir / "feeds"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def call(server, tool: str, arguments: dict, key: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key} if key else server.headers()
    return httpx.post(f"{server.url}/tools/{tool}", json=arguments, headers=headers, timeout=60)


def test_normalize_file_refuses_to_replace_an_existing_output_unless_told(server):
    source = feed_file(server, "overwrite.jsonl", [trade(i) for i in range(5)])
    target = source.with_suffix(".parquet")
    target.write_bytes(b"keep me")
    arguments = {"source": "binance", "market": "spot", "input_path": str(source), "output_path": str(target)}
    refused = call(server, "normalize_file", arguments)
    assert refused.status_code == 409, refused.text
    assert target.read_bytes() == b"keep me"
    replaced = call(server, "normalize_file", arguments | {"overwrite": True})
    assert replaced.status_code == 200, replaced.text
    assert pq.read_table(target).num_rows == 5


@pytest.mark.parametrize("field", ["input_path", "output_path"])
def test_normalize_file_paths_outside_the_data_and_import_directories_are_refused(server, tmp_path, field):
    inside = feed_file(server, f"confined-{field}.jsonl", [trade(0)])
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_bytes(orjson.dumps(trade(0)) + b"\n")
    arguments = {"source": "binance", "market": "spot", "input_path": str(inside),
                 "output_path": str(inside.with_suffix(".parquet"))}
    arguments[field] = str(outside if field == "input_path" else tmp_path / "out.parquet")
    response = call(server, "normalize_file", arguments)
    assert response.status_code == 422, response.text
    assert field in response.text and not (tmp_path / "out.parquet").exists()


def test_relative_paths_start_at_the_data_directory(server):
    feed_file(server, "relative.jsonl", [trade(i) for i in range(3)])
    response = call(server, "normalize_file", {"source": "binance", "market": "spot",
                                               "input_path": "feeds/relative.jsonl",
                                               "output_path": "feeds/relative.parquet"})
    assert response.status_code == 200, response.text
    assert (server.data_dir / "feeds" / "relative.parquet").exists()


def test_a_file_that_is_not_a_feed_is_reported_by_line_without_its_content(server):
    secret = "hunter2-correct-horse"
    folder = server.data_dir / "feeds"
    folder.mkdir(exist_ok=True)
    (folder / "shadow").write_text(f"root:{secret}:19000:0:99999:7:::\n")
    response = call(server, "normalize_file", {"source": "binance", "input_path": "feeds/shadow",
                                               "output_path": "feeds/shadow.parquet"})
    assert response.status_code == 200 and secret not in response.text
    assert response.json()["rejections"] == [{"line": 1, "kind": "malformed_json",
                                              "reason": "the input is not JSON (error at character 0)"}]


def test_annotations_tell_what_the_tools_write(server):
    listed = {t["name"]: t for t in httpx.get(f"{server.url}/mcp/tools/list").json()["tools"]}
    events, file = listed["normalize_events"]["annotations"], listed["normalize_file"]["annotations"]
    assert (events["readOnlyHint"], events["destructiveHint"]) == (False, False), "enable_cache writes a cache entry"
    assert (file["readOnlyHint"], file["destructiveHint"]) == (False, True), "it can replace a file"


def untyped_nodes(schema: dict, path: str = "$") -> list[str]:
    """Schema nodes that say nothing about the value's type (the Inspector's --strict warns on them)."""
    found = []
    typed = {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"}
    if not typed & set(schema):
        found.append(path)
    for key in ("properties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            found += untyped_nodes(sub, f"{path}.{name}")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            found += untyped_nodes(sub, f"{path}[{i}]")
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(key), dict):
            found += untyped_nodes(schema[key], f"{path}.{key}")
    return found


def test_every_node_of_the_normalize_input_schemas_has_a_type(server):
    listed = {t["name"]: t for t in httpx.get(f"{server.url}/mcp/tools/list").json()["tools"]}
    for name in ("normalize_events", "normalize_file"):
        assert untyped_nodes(listed[name]["inputSchema"]) == [], name


@pytest.mark.parametrize(("field", "value"), [("symbol", "B" * 15_000_000), ("session", "n" * 100),
                                              ("contract_sizes", {"K" * 65: 1.0})])
def test_oversized_strings_are_refused_by_the_schema(server, field, value):
    response = post(server, "/mcp/normalize", body([trade(0)], **{field: value}))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == field


def test_every_string_and_list_of_the_normalize_inputs_is_bounded(server):
    listed = {t["name"]: t for t in httpx.get(f"{server.url}/mcp/tools/list").json()["tools"]}
    for name in ("normalize_events", "normalize_file"):
        assert unbounded_nodes(listed[name]["inputSchema"]) == [], name


def unbounded_nodes(schema: dict, path: str = "$", defs: dict | None = None) -> list[str]:
    defs = schema.get("$defs", {}) if defs is None else defs
    found = []
    if schema.get("type") == "string" and "maxLength" not in schema and "enum" not in schema \
            and "pattern" not in schema:
        found.append(path)
    if schema.get("type") == "array" and "maxItems" not in schema:
        found.append(path)
    for name, sub in schema.get("properties", {}).items():
        found += unbounded_nodes(sub, f"{path}.{name}", defs)
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            found += unbounded_nodes(sub, f"{path}[{i}]", defs)
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(key), dict):
            found += unbounded_nodes(schema[key], f"{path}.{key}", defs)
    if "$ref" in schema:
        found += unbounded_nodes(defs[schema["$ref"].rsplit("/", 1)[1]], path, defs)
    return found


def test_okx_contract_sizes_are_accepted_and_the_error_says_how_to_pass_them(server):
    missing = post(server, "/mcp/normalize", {"source": "okx", "events": [{"payload": DOGE}]}).json()
    reason = missing["rejected"][0]["reason"]
    assert missing["rejected"][0]["kind"] == "unknown_instrument"
    assert "contract_sizes" in reason and '"DOGE-USDT-SWAP"' in reason and "--contract-size" in reason
    given = post(server, "/mcp/normalize", {"source": "okx", "contract_sizes": {"DOGE-USDT-SWAP": 1000},
                                            "events": [{"payload": DOGE}]}).json()
    assert given["rejected"] == [] and given["events"][0]["size"] == 12_000


def test_normalize_file_takes_contract_sizes(server):
    source = feed_file(server, "okx.jsonl", [DOGE])
    response = call(server, "normalize_file", {"source": "okx", "input_path": str(source),
                                               "output_path": str(source.with_suffix(".parquet")),
                                               "contract_sizes": {"DOGE-USDT-SWAP": 1000}})
    assert response.status_code == 200, response.text
    assert pq.read_table(source.with_suffix(".parquet")).column("size").to_pylist() == [12_000.0]


def test_a_session_keeps_books_across_calls(server):
    first = post(server, "/tools/normalize_events", body([SNAPSHOT], market="spot", session="new")).json()
    session = first["session_id"]
    assert session.startswith("ns_") and first["first_index"] == 0
    second = post(server, "/tools/normalize_events", body([DIFF], session=session)).json()
    assert second["rejected"] == [] and second["first_index"] == 1 and second["event_index"] == [1]
    assert second["events"][0]["best_bid"] == 49999.8, "the diff deleted 49999.9 from the kept book"
    assert second["counts"]["inputs"] == 2
    held = post(server, "/tools/normalize_events", body([GAPPED], session=session, end_session=True)).json()
    assert held["session_id"] is None and held["events"][0]["gap"] is True
    gone = post(server, "/tools/normalize_events", body([DIFF], session=session))
    assert gone.status_code == 404 and "session" in gone.text


def test_a_session_diff_waits_for_a_snapshot_in_a_later_call(server):
    opened = post(server, "/tools/normalize_events", body([DIFF], market="spot", session="new")).json()
    assert opened["counts"]["pending"] == 1 and opened["rejected"] == []
    later = post(server, "/tools/normalize_events", body([SNAPSHOT], session=opened["session_id"],
                                                         end_session=True)).json()
    assert later["event_index"] == [1, 0], "the snapshot, then the held diff replayed on it"
    assert later["counts"]["pending"] == 0 and later["counts"]["accepted"] == 2


def test_an_unknown_session_is_not_found_and_a_changed_option_is_refused(server):
    unknown = post(server, "/tools/normalize_events", body([trade(0)], session="ns_" + "0" * 24))
    assert unknown.status_code == 404
    session = post(server, "/tools/normalize_events", body([], market="spot", session="new")).json()["session_id"]
    changed = post(server, "/tools/normalize_events", {"source": "okx", "events": [], "session": session})
    assert changed.status_code == 422 and "source" in changed.text
    other = httpx.post(f"{server.url}/tools/normalize_events", json=body([], session=session), timeout=30,
                       headers={"X-API-Key": server.key("read")})
    assert other.status_code == 404, "another caller's session is not theirs to continue"


def test_normalizing_a_file_twice_gives_identical_bytes(server):
    source = feed_file(server, "untimed.jsonl", [SPOT_TICKER, SNAPSHOT, trade(1)])
    target = source.with_suffix(".parquet")
    arguments = {"source": "binance", "symbol": "BTCUSDT", "input_path": str(source), "output_path": str(target),
                 "overwrite": True}
    outputs = []
    for _ in range(2):
        response = call(server, "normalize_file", arguments)
        assert response.status_code == 200, response.text
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]
    assert any("null" in w for w in response.json()["warnings"])
    assert pq.read_table(target).column("timestamp_ms").to_pylist()[:2] == [None, None]
