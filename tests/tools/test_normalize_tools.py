"""normalize_events, normalize_file (CLI) and get_venue_details through real doors."""

from __future__ import annotations

import gzip
import io
import json
import subprocess

import httpx
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
