"""calibrate: fitting a manifest to minute candles, on candle files made here from the generator."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.calibrate import calibrate, read_candles
from quantdesk.tools.market.pipeline import generate_table


def _candles(manifest: SimulationManifest) -> pa.Table:
    """One-minute OHLCV candles of the manifest's trade prints, as an exchange would publish them."""
    table = generate_table(manifest)
    trades = table.filter(pc.equal(table.column("event_type").cast(pa.string()), "trade"))
    n = manifest.duration_seconds // 60
    bar = (trades.column("timestamp_ms").to_numpy() - manifest.start_time_ms) // 60_000
    price = trades.column("price").to_numpy()
    close = np.full(n, np.nan)
    close[bar] = price
    index = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(n), 0))
    volume = np.bincount(bar, weights=trades.column("size").to_numpy(), minlength=n)[:n]
    ts = pa.array(manifest.start_time_ms + 60_000 * np.arange(n), pa.timestamp("ms", tz="UTC"))
    return pa.table({"timestamp": ts, "close": close[index], "volume": volume})


DEFAULT_SD = SimulationManifest().vol_factor_stdevs
LIGHT = {"book_interval_ms": 5000, "num_levels": 2, "trade_rate_per_second": 2.0, "trade_size_median": 0.15}


@pytest.mark.slow
def test_calibration_recovers_known_parameters(tmp_path: Path) -> None:
    truth = SimulationManifest.model_validate({
        **LIGHT, "duration_seconds": 4 * 86_400, "seed": 8, "volatility_annual": 0.45,
        "vol_factor_stdevs": [DEFAULT_SD[0] * 0.8, DEFAULT_SD[1] * 0.8, *DEFAULT_SD[2:]], "volume_shock_weight": 0.25})
    path = tmp_path / "candles.parquet"
    pq.write_table(_candles(truth), path)
    result = calibrate(read_candles(path), SimulationManifest.model_validate(LIGHT))
    fitted = result["manifest"]
    # stated tolerances: the level reproduces the file's realized volatility within 15%, and the truth
    # within the spread of one run's realized level (0.7-1.4, stylized.py); the fast factors' scale (truth
    # x0.8) within two grid steps (four days identify it loosely); the hour profile's shape; volume within 10%
    facts = {row["fact"]: row for row in result["facts"]}
    assert abs(facts["realized_vol_annual"]["model"] / facts["realized_vol_annual"]["data"] - 1.0) < 0.15
    assert 0.7 < fitted["volatility_annual"] / 0.45 < 1.4
    assert 0.6 <= fitted["vol_factor_stdevs"][0] / DEFAULT_SD[0] <= 1.25
    hours = np.asarray(fitted["volatility_profile"]).reshape(-1, 24).mean(axis=0)
    from quantdesk.schemas.manifest import BTC_HOUR_VOLATILITY

    assert np.corrcoef(hours, BTC_HOUR_VOLATILITY)[0, 1] > 0.6
    assert abs(facts["volume_per_minute"]["model"] / facts["volume_per_minute"]["data"] - 1.0) < 0.10
    assert fitted["volume_shock_weight"] in (0.1, 0.25, 0.5)


def test_calibration_on_a_short_file_gives_a_model_inside_the_file_bands(tmp_path: Path) -> None:
    # a "real-like" file: two days of the volatile preset, written as an exchange CSV with ISO times
    source = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 2 * 86_400, "seed": 4,
                                                "volatility_annual": 0.9, "return_tail_dof": 6.0})
    path = tmp_path / "candles.csv"
    pv.write_csv(_candles(source), path)
    result = calibrate(read_candles(path), SimulationManifest.model_validate(LIGHT))
    failed = [row for row in result["facts"] if not row["passed"]]
    assert not failed, failed
    SimulationManifest.model_validate(result["manifest"])


def test_a_file_too_short_or_without_the_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("timestamp,close,volume\n2025-01-01T00:00:00Z,100,1\n2025-01-01T00:01:00Z,101,2\n")
    with pytest.raises(ValueError, match="at least"):
        calibrate(read_candles(path))
    bad = tmp_path / "bad.csv"
    bad.write_text("when,price\n1,2\n")
    with pytest.raises(ValueError, match="timestamp"):
        read_candles(bad)


def test_calibrate_manifest_through_the_rest_door_needs_admin_and_returns_a_usable_manifest(server) -> None:
    source = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 86_400, "seed": 12})
    path = server.data_dir / "imports-candles.csv"
    pv.write_csv(_candles(source), path)
    refused = httpx.post(f"{server.url}/tools/calibrate_manifest", json={"path": str(path)},
                         headers={"X-API-Key": server.key("read")}, timeout=120)
    assert refused.status_code == 403
    response = httpx.post(f"{server.url}/tools/calibrate_manifest", json={"path": str(path)},
                          headers=server.headers(), timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["minutes"] == 1439 and {row["fact"] for row in body["facts"]} >= {
        "acf_abs_r_lag_1", "hill_tail_index", "corr_volume_abs_r", "volume_per_minute"}
    checked = httpx.post(f"{server.url}/tools/validate_config", json={"config": body["manifest"]},
                         headers=server.headers(), timeout=60).json()
    assert checked["valid"] is True and checked["manifest_hash"] == body["manifest_hash"]


def test_quantdesk_calibrate_prints_the_facts_and_the_manifest(tmp_path: Path, quantdesk_bin: str) -> None:
    import json
    import subprocess

    source = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 86_400, "seed": 21})
    path = tmp_path / "candles.parquet"
    pq.write_table(_candles(source), path)
    done = subprocess.run([quantdesk_bin, "--data-dir", str(tmp_path / "data"), "calibrate", str(path), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["minutes"] >= 1_400 and {row["fact"] for row in result["facts"]} >= {"hill_tail_index",
                                                                                        "corr_volume_abs_r"}
    SimulationManifest.model_validate(result["manifest"])
    bad = subprocess.run([quantdesk_bin, "--data-dir", str(tmp_path / "data"), "calibrate", str(tmp_path / "no.csv")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no.csv" in bad.stderr
