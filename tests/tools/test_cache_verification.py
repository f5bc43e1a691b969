"""Artifacts are verified when they are used: a truncated or altered file is quarantined, answered with a clear
not-found error (never a 500, never served), dropped from the statistics, and generated again on a cache hit."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

# Seeds no other test uses: these tests damage the files they make on the shared session server.
_SEEDS = itertools.count(70_001)


def rest(server, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers=server.headers(), timeout=120, **kwargs)


def request_for(seed: int) -> dict:
    return {"config": {"seed": seed, "duration_seconds": 240, "trade_rate_per_second": 3.0},
            "driver": {"workers": 1, "multiprocess": False}}


def generate(server, seed: int) -> dict:
    response = rest(server, "POST", "/tools/generate_dataset", json=request_for(seed))
    assert response.status_code == 200, response.text
    return response.json()


def artifact(server, made: dict) -> Path:
    return server.data_dir / "artifacts" / f"{made['cache_key']}.parquet"


def truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size * 2 // 3)


def flip_middle(path: Path) -> None:
    """Change one byte inside a data page so that pyarrow still reads the file (no page checksums).

    Where a flip lands inside a zstd sequence the codec notices, so walk from the middle to the first offset
    whose flip still decodes: the file must look like a dataset and differ only in its digest.
    """
    size = path.stat().st_size
    original = path.read_bytes()
    for offset in range(size // 2, size - 1024, 997):
        with open(path, "r+b") as handle:
            handle.seek(offset)
            handle.write(bytes([original[offset] ^ 0x01]))
        try:
            pq.read_table(path)
            return
        except OSError:
            path.write_bytes(original)
    raise AssertionError("no single-byte change in the second half keeps the file readable")


def quarantined(server, made: dict) -> list[Path]:
    return sorted((server.data_dir / "artifacts" / ".quarantine").glob(f"{made['cache_key']}.*"))


def stats(server) -> dict:
    response = rest(server, "GET", "/mcp/caches/stats")
    assert response.status_code == 200, response.text
    return response.json()


LOOKUPS = {
    "describe_dataset": lambda server, key: rest(server, "POST", "/tools/describe_dataset", json={"cache_key": key}),
    "plot_dataset": lambda server, key: rest(server, "POST", "/tools/plot_dataset", json={"cache_key": key}),
    "get_cache_manifest": lambda server, key: rest(server, "GET", f"/mcp/caches/{key}/manifest"),
    "export_cache": lambda server, key: rest(server, "GET", f"/mcp/caches/export/{key}"),
    "download": lambda server, key: rest(server, "GET", f"/artifacts/{key}.parquet"),
}


@pytest.mark.parametrize("lookup", sorted(LOOKUPS))
def test_a_truncated_artifact_is_quarantined_and_answered_as_not_found(server, lookup):
    made = generate(server, next(_SEEDS))
    truncate(artifact(server, made))
    response = LOOKUPS[lookup](server, made["cache_key"])
    assert response.status_code == 404, (response.status_code, response.text[:300])
    assert made["cache_key"] in response.text
    assert not artifact(server, made).exists()
    names = [p.name for p in quarantined(server, made)]
    assert any(n.endswith(".parquet") for n in names) and any(n.endswith(".reason.json") for n in names)
    again = LOOKUPS[lookup](server, made["cache_key"])
    assert again.status_code == 404 and made["cache_key"] in again.text


def test_statistics_count_only_whole_files(server):
    whole, damaged = generate(server, next(_SEEDS)), generate(server, next(_SEEDS))
    truncate(artifact(server, damaged))
    listed = stats(server)
    keys = {e["cache_key"]: e for e in listed["entries"]}
    assert whole["cache_key"] in keys and damaged["cache_key"] not in keys
    on_disk = sum((server.data_dir / "artifacts" / f"{key}.parquet").stat().st_size for key in keys)
    assert listed["total_bytes"] == on_disk and listed["total_entries"] == len(keys)
    assert keys[whole["cache_key"]]["bytes"] == whole["content_length_bytes"]


@pytest.mark.parametrize("damage", [truncate, flip_middle], ids=["truncated", "altered"])
def test_a_damaged_cache_hit_is_generated_again_not_served(server, damage):
    seed = next(_SEEDS)
    first = generate(server, seed)
    damage(artifact(server, first))
    second = generate(server, seed)
    assert second["cached"] is False
    assert second["file_sha256"] == first["file_sha256"] and second["row_count"] == first["row_count"]
    assert quarantined(server, first)
    again = generate(server, seed)
    assert again["cached"] is True and again["cache_key"] == second["cache_key"]


def test_an_altered_file_is_never_downloaded(server):
    made = generate(server, next(_SEEDS))
    flip_middle(artifact(server, made))
    assert pq.read_table(artifact(server, made)).num_rows == made["row_count"]  # it still looks like a dataset
    response = rest(server, "GET", made["download_url"])
    assert response.status_code == 404, response.status_code
    reason = json.loads(next(p for p in quarantined(server, made) if p.name.endswith(".reason.json")).read_text())
    assert reason["cache_key"] == made["cache_key"] and "sha256" in reason["reason"]


def test_a_whole_file_still_downloads_with_its_sha256(server):
    made = generate(server, next(_SEEDS))
    for _ in range(2):  # the second export is served from the remembered digest
        response = rest(server, "GET", made["download_url"])
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == made["file_sha256"]
    assert pq.read_table(io.BytesIO(response.content)).num_rows == made["row_count"]


def test_a_damaged_entry_can_still_be_deleted(server):
    made = generate(server, next(_SEEDS))
    truncate(artifact(server, made))
    response = rest(server, "DELETE", f"/mcp/caches/{made['cache_key']}")
    assert response.status_code == 200, response.text
    assert made["cache_key"] not in {e["cache_key"] for e in stats(server)["entries"]}
