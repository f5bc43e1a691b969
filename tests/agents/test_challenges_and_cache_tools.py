"""Challenge listing, sandbox status and the data-cache tools through a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXPECTED = {"ETH-1H-BINARY": (2, 60, 1.0), "ETH-HITFIRST-100M": (3, 100, 1.25), "ETH-LBFGS": (17, 60, 3.5),
            "BTC-LBFGS-6H": (17, 360, 2.875), "MULTI-BREAKOUT": (58, 0, 5.0), "XSEC-RANK": (29, 240, 3.0),
            "FUNDING-XSEC": (20, 480, 4.0)}


def test_the_seven_challenges_are_listed_in_the_mantis_shape(server: Any, tool: Any) -> None:
    challenges = tool(server.url, "list_challenges", {}, server.headers()).structured["challenges"]
    assert set(challenges) == set(EXPECTED)
    for name, (dim, horizon, weight) in EXPECTED.items():
        entry = challenges[name]
        assert (entry["dim"], entry["horizon_minutes"], entry["weight"]) == (dim, horizon, weight)
        assert {"type", "short", "desc", "asset", "metric", "metric_info"} <= set(entry)
        assert set(entry["metric_info"]) == {"primary", "all", "direction", "label"}
        assert entry["label_definition"] and entry["embedding_layout"]
    assert challenges["ETH-LBFGS"]["metric_info"]["primary"] == "lbfgs_skill"
    assert "q_mean_auc" in challenges["ETH-LBFGS"]["metric_info"]["all"]
    assert challenges["ETH-HITFIRST-100M"]["metric_info"]["direction"] == "lower"


def test_the_sandbox_status_says_what_is_enforced(server: Any, tool: Any) -> None:
    capabilities = tool(server.url, "get_sandbox_status", {}, server.headers()).structured["capabilities"]
    assert capabilities["ok"] and capabilities["mode"] in ("root", "user", "rlimits")
    assert set(capabilities["limits"]) == {"wall_seconds", "cpu_seconds", "memory_bytes", "file_bytes",
                                           "open_files", "processes"}


def test_prefetch_reports_progress_refuses_a_second_run_and_the_cache_can_be_deleted(
        tmp_path: Path, server_factory: Any, fake_binance: Any, tool: Any, until: Any) -> None:
    fake = fake_binance("serving", listed=("BTC", "ETH"))
    fake.gate.clear()  # hold the first kline request so the prefetch is still running
    running = server_factory(tmp_path / "cache", extra_env={"QUANTDESK_AGENTS_DATA_SOURCE": "binance",
                                                            "QUANTDESK_BINANCE_URLS": fake.url})
    url, headers = running.url, running.headers()
    assert tool(url, "get_data_cache", {}, headers).structured["entries"]["60"] == {"cached": False}
    started = tool(url, "prefetch_data", {"days_back": 60}, headers)
    assert started.structured == {"status": "started", "days_back": 60}
    assert tool(url, "prefetch_data", {"days_back": 90}, headers).kind == "conflict"
    assert tool(url, "delete_data_cache", {"days_back": 60}, headers).kind == "conflict"
    assert tool(url, "get_data_cache_status", {}, headers).structured["running"] is True
    fake.gate.set()
    status = until(lambda: (s := tool(url, "get_data_cache_status", {}, headers).structured)["finished_at"] and s,
                   120, "the prefetch to finish")
    assert status["error"] is None and status["step"] == status["total_steps"] == 29
    cache = tool(url, "get_data_cache", {}, headers).structured
    assert cache["data_source"] == "binance"
    entry = cache["entries"]["60"]
    assert entry["cached"] and entry["assets"] == 2 and entry["has_coinglass"] is False
    assert (running.data_dir / "artifacts" / f"{entry['cache_key']}.parquet").exists()
    assert tool(url, "delete_data_cache", {"days_back": 60}, headers).structured == {"status": "deleted",
                                                                                     "days_back": 60}
    assert tool(url, "get_data_cache", {}, headers).structured["entries"]["60"] == {"cached": False}
