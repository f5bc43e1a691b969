"""describe_dataset with a reference: a generated dataset's one-minute facts beside real-like candles."""

from __future__ import annotations

import httpx
import pyarrow.csv as pv
import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.compare import compare, minute_facts
from quantdesk.tools.market.pipeline import generate_table, generate_to_parquet
from tests.market.test_calibrate import LIGHT, _candles


def test_a_dataset_and_its_own_candles_give_the_same_minute_facts(tmp_path) -> None:
    manifest = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 6 * 3600, "seed": 3})
    candles = tmp_path / "candles.csv"
    pv.write_csv(_candles(manifest), candles)
    rows = {row["fact"]: row for row in compare(generate_table(manifest), candles)}
    for fact in ("acf_abs_r_lag_1", "hill_tail_index", "corr_volume_abs_r", "volume_per_minute"):
        assert rows[fact]["data"] is not None and abs(rows[fact]["data"] - rows[fact]["reference"]) < 1e-6, fact
    assert set(minute_facts(candles)) == set(rows)


def test_describe_dataset_compares_with_a_reference_through_the_rest_door(server) -> None:
    manifest = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 6 * 3600, "seed": 4})
    dataset = server.data_dir / "imports-compare.parquet"
    generate_to_parquet(manifest, DriverConfig(workers=1), dataset)
    other = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 6 * 3600, "seed": 5,
                                               "volatility_annual": 1.2})
    reference = server.data_dir / "imports-reference.csv"
    pv.write_csv(_candles(other), reference)
    response = httpx.post(f"{server.url}/tools/describe_dataset",
                          json={"path": str(dataset), "reference_path": str(reference)},
                          headers=server.headers(), timeout=120)
    assert response.status_code == 200, response.text
    rows = {row["fact"]: row for row in response.json()["comparison"]}
    vol = rows["realized_vol_annual"]
    assert vol["reference"] > 1.3 * vol["data"]  # the reference is the more volatile market
    assert response.json()["facts"]  # the dataset's own bands are still there


def test_a_dataset_and_its_own_candles_give_the_same_abs_return_acf_curve(tmp_path) -> None:
    from quantdesk.tools.market.compare import abs_return_acf

    manifest = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 12 * 3600, "seed": 9})
    dataset = tmp_path / "events.parquet"
    generate_to_parquet(manifest, DriverConfig(workers=1), dataset)
    candles = tmp_path / "candles.csv"
    pv.write_csv(_candles(manifest), candles)
    lags, mine = abs_return_acf(str(dataset))
    their_lags, theirs = abs_return_acf(str(candles))
    assert list(lags) == list(their_lags) and lags[0] == 1 and lags[-1] < 360
    assert abs(mine - theirs).max() < 0.05
    assert mine[0] > 0.05  # volatility clusters: |r| remembers the last minute


@pytest.mark.anyio
async def test_plot_dataset_overlays_the_reference_acf_and_names_a_bad_reference(server, open_mcp) -> None:
    import base64

    manifest = SimulationManifest.model_validate({**LIGHT, "duration_seconds": 6 * 3600, "seed": 4})
    dataset = server.data_dir / "imports-plot.parquet"
    generate_to_parquet(manifest, DriverConfig(workers=1), dataset)
    reference = server.data_dir / "imports-plot-reference.csv"
    pv.write_csv(_candles(SimulationManifest.model_validate({**LIGHT, "duration_seconds": 6 * 3600, "seed": 5})),
                 reference)
    images = []
    async with open_mcp("http-legacy", server) as client:
        for extra in ({}, {"reference_path": str(reference)}):
            result = await client.call_tool("plot_dataset", {"path": str(dataset), "width_px": 600, "height_px": 500,
                                                             **extra})
            assert not result.is_error, result.content
            image = next(block for block in result.content if block.type == "image")
            images.append(base64.b64decode(image.data))
    plain, overlaid = images
    assert plain[:8] == overlaid[:8] == b"\x89PNG\r\n\x1a\n" and plain != overlaid
    bad = httpx.post(f"{server.url}/tools/plot_dataset", headers=server.headers(), timeout=120,
                     json={"path": str(dataset), "reference_path": str(dataset.with_name("imports-missing.csv"))})
    assert bad.status_code in (404, 422) and "reference_path" in bad.text
