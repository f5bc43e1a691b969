"""Same manifest, same bytes: whatever the worker count, window size or backend."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.blocks import BlockPlan
from quantdesk.tools.market.pipeline import generate_table, generate_to_parquet


def _generate(manifest: SimulationManifest, directory: Path, name: str, **driver: object) -> bytes:
    out = directory / f"{name}.parquet"
    generate_to_parquet(manifest, DriverConfig.model_validate(driver), out)
    return out.read_bytes()


def test_the_busy_manifest_spans_several_row_groups_and_windows(busy_manifest: SimulationManifest) -> None:
    plan = BlockPlan.for_manifest(busy_manifest)
    assert plan.n_units >= 3
    assert len(plan.windows(60.0)) == plan.n_units
    assert len(plan.windows(3600.0)) == 1


def test_parquet_bytes_are_identical_for_one_two_and_four_workers(busy_manifest: SimulationManifest,
                                                                 tmp_path: Path) -> None:
    one = _generate(busy_manifest, tmp_path, "w1", workers=1, window_seconds=60)
    two = _generate(busy_manifest, tmp_path, "w2", workers=2, window_seconds=60)
    four = _generate(busy_manifest, tmp_path, "w4", workers=4, window_seconds=60)
    in_process = _generate(busy_manifest, tmp_path, "w2i", workers=2, multiprocess=False, window_seconds=60)
    assert one == two == four == in_process
    assert pq.ParquetFile(tmp_path / "w1.parquet").metadata.num_row_groups == BlockPlan.for_manifest(
        busy_manifest).n_units


def test_window_seconds_do_not_change_the_bytes(busy_manifest: SimulationManifest, tmp_path: Path) -> None:
    outputs = {_generate(busy_manifest, tmp_path, f"s{seconds}", workers=2, window_seconds=seconds)
               for seconds in (1.0, 600.0, 86_400.0)}
    assert len(outputs) == 1


def test_the_dask_backend_writes_the_same_bytes(busy_manifest: SimulationManifest, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANTDESK_DASK_ADDRESS", raising=False)
    reference = _generate(busy_manifest, tmp_path, "process", workers=1, window_seconds=60)
    dask = _generate(busy_manifest, tmp_path, "dask", workers=2, window_seconds=60, backend="dask")
    assert dask == reference


def test_another_seed_gives_other_events(short_manifest: SimulationManifest) -> None:
    other = short_manifest.model_copy(update={"seed": short_manifest.seed + 1})
    assert not generate_table(short_manifest).equals(generate_table(other))


def test_the_report_describes_the_file(busy_manifest: SimulationManifest, tmp_path: Path) -> None:
    out = tmp_path / "report.parquet"
    report = generate_to_parquet(busy_manifest, DriverConfig(workers=2, window_seconds=60), out)
    data = out.read_bytes()
    table = pq.read_table(out)
    kinds = table.column("event_type").combine_chunks().indices.to_numpy()
    assert report.sha256 == hashlib.sha256(data).hexdigest() and report.bytes == len(data)
    assert report.row_count == table.num_rows
    assert report.rows_by_event_type == {"trade": int(np.sum(kinds == 0)), "book": int(np.sum(kinds == 1))}
    timestamps = table.column("timestamp_ms").to_numpy()
    assert (report.first_timestamp_ms, report.last_timestamp_ms) == (timestamps[0], timestamps[-1])
    assert report.first_timestamp_ms == busy_manifest.start_time_ms
    assert report.last_timestamp_ms is not None
    assert report.last_timestamp_ms < busy_manifest.start_time_ms + busy_manifest.duration_seconds * 1000
    assert report.windows == len(BlockPlan.for_manifest(busy_manifest).windows(60.0)) and report.retries == 0
    assert report.row_groups == pq.ParquetFile(out).metadata.num_row_groups
    assert not [p for p in tmp_path.iterdir() if p.name != "report.parquet"]
