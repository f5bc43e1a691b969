"""Data sources and the data cache: generated bars, a Binance klines client against a local fake, Parquet cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from quantdesk.server.errors import Conflict
from quantdesk.tools.agents.data.binance import BinanceKlinesSource
from quantdesk.tools.agents.data.cache import DataCache
from quantdesk.tools.agents.data.synthetic import PlantedReversal, SyntheticSource
from quantdesk.tools.caches.store import LocalArtifactStore

MINUTE = 60_000
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00Z


def test_generated_bars_are_deterministic_and_consistent() -> None:
    first = SyntheticSource(5).generate(("BTC", "ETH", "SOL"), 2 * 1440)
    second = SyntheticSource(5).generate(("ETH", "BTC"), 2 * 1440)
    other = SyntheticSource(6).generate(("BTC", "ETH", "SOL"), 2 * 1440)
    assert np.array_equal(first.select(("BTC", "ETH")).ohlcv, second.select(("BTC", "ETH")).ohlcv)
    assert not np.array_equal(first.ohlcv, other.ohlcv)
    o, h, low, c = (first.ohlcv[:, :, k] for k in range(4))
    assert (h >= np.maximum(o, c)).all() and (low <= np.minimum(o, c)).all()
    assert np.array_equal(o[1:], c[:-1])
    assert first.data_source == "synthetic"
    assert np.all(np.diff(first.timestamps_ms) == MINUTE)


def test_generated_funding_is_visible_only_after_its_period_settles() -> None:
    data = SyntheticSource(5).generate(("BTC", "ETH", "ONDO"), 3 * 1440)
    funding = data.funding[:, data.assets.index("ETH")]
    assert np.isfinite(funding).all()
    assert np.isnan(data.funding[:, data.assets.index("ONDO")]).all()  # not a FUNDING-XSEC perpetual
    changes = np.flatnonzero(np.diff(funding) != 0) + 1
    closes_ms = data.timestamps_ms[changes] + MINUTE
    assert np.all(closes_ms % (8 * 3600 * 1000) == 0)


def test_a_planted_reversal_is_recorded_and_makes_hourly_returns_revert() -> None:
    plain = SyntheticSource(5).generate(("ETH",), 10 * 1440)
    planted = SyntheticSource(5, planted=PlantedReversal(0.5)).generate(("ETH",), 10 * 1440)
    assert planted.details["planted_reversal"]["strength"] == 0.5
    assert "planted_reversal" not in plain.details

    def lag_correlation(close: np.ndarray[Any, Any]) -> float:
        hourly = np.diff(np.log(close[::60]))
        return float(np.corrcoef(hourly[:-1], hourly[1:])[0, 1])

    assert lag_correlation(planted.close("ETH")) < lag_correlation(plain.close("ETH")) - 0.1


# --- Binance ----------------------------------------------------------------------------------------

@pytest.fixture
def fakes(fake_binance: Any) -> dict[str, Any]:
    return {name: fake_binance(name) for name in ("broken", "serving", "limited")}


def dead_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_binance_client_fails_over_to_the_next_endpoint(fakes: dict[str, Any]) -> None:
    source = BinanceKlinesSource([dead_url(), fakes["broken"].url, fakes["serving"].url], now_ms=lambda: NOW_MS)
    steps: list[str] = []
    data = source.fetch(["ETH", "NOPE", "BTC"], 1, lambda step, total, text: steps.append(text))
    assert source.last_endpoint == fakes["serving"].url
    assert fakes["broken"].requests and fakes["serving"].requests
    assert data.assets == ("ETH", "BTC") and data.details["missing_assets"] == ["NOPE"]
    assert data.rows == 1440 and data.data_source == "binance"
    assert np.isfinite(data.ohlcv).all()
    gap = int(np.flatnonzero(data.ohlcv[:, 0, 4] == 0)[0])  # a missing minute: previous close, no volume
    assert data.ohlcv[gap, 0, 3] == data.ohlcv[gap - 1, 0, 3]
    assert steps[-1] == "Fetching OHLCV: 3/3 assets"
    # pages of at most 1000 klines
    assert all(int(r["limit"]) == 1000 for r in fakes["serving"].requests)


def test_the_binance_client_waits_out_a_rate_limit(fakes: dict[str, Any]) -> None:
    waits: list[float] = []
    source = BinanceKlinesSource([fakes["limited"].url], now_ms=lambda: NOW_MS, sleep=waits.append)
    data = source.fetch(["ETH"], 1, lambda *_: None)
    assert waits == [0.0]
    assert data.rows == 1440


def test_no_endpoint_answering_is_unavailable(fakes: dict[str, Any]) -> None:
    from quantdesk.server.errors import Unavailable

    source = BinanceKlinesSource([dead_url(), fakes["broken"].url], now_ms=lambda: NOW_MS)
    with pytest.raises(Unavailable):
        source.fetch(["ETH"], 1, lambda *_: None)


# --- cache ------------------------------------------------------------------------------------------

def test_the_cache_prefetches_to_parquet_reports_progress_and_deletes(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    cache = DataCache(store, SyntheticSource(5), ("BTC", "ETH", "SOL"))
    assert cache.entry(2) == {"cached": False}
    cache.start_prefetch(2)
    cache.wait(60)
    status = cache.status()
    assert not status["running"] and status["error"] is None and status["finished_at"]
    assert status["step"] == status["total_steps"] == 4
    entry = cache.entry(2)
    assert entry["cached"] and entry["assets"] == 3 and entry["data_source"] == "synthetic"
    table = pq.read_table(store.get(cache.name(2)).path)
    assert table.num_rows == 3 * 2 * 1440
    assert set(table.column_names) >= {"timestamp_ms", "asset", "open", "high", "low", "close", "volume",
                                       "funding_rate"}
    loaded = cache.load(2)
    fresh = SyntheticSource(5).generate(("BTC", "ETH", "SOL"), 2 * 1440)
    assert np.array_equal(loaded.ohlcv, fresh.ohlcv)
    assert np.array_equal(np.isnan(loaded.funding), np.isnan(fresh.funding))
    assert cache.delete(2)
    assert cache.entry(2) == {"cached": False}


def test_a_second_prefetch_or_a_delete_while_one_runs_is_a_conflict(
        tmp_path: Path, fakes: dict[str, Any]) -> None:
    fake = fakes["serving"]
    fake.gate.clear()
    cache = DataCache(LocalArtifactStore(tmp_path / "artifacts"),
                      BinanceKlinesSource([fake.url], now_ms=lambda: NOW_MS), ("ETH",))
    cache.start_prefetch(1)
    try:
        with pytest.raises(Conflict):
            cache.start_prefetch(1)
        with pytest.raises(Conflict):
            cache.delete(1)
    finally:
        fake.gate.set()
        cache.wait(60)
    assert cache.status()["error"] is None
    assert cache.entry(1)["cached"]
