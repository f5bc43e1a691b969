"""Progress moves within windows (chunks of blocks generated, row groups encoded), and chunking changes no byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.pipeline import generate_to_parquet, progress_total


@pytest.mark.parametrize("workers", [1, 2])
def test_a_one_window_hour_reports_progress_many_times_with_a_fixed_total(tmp_path: Path, workers: int) -> None:
    manifest = SimulationManifest(duration_seconds=3600, seed=4)  # one row group, one window
    seen: list[tuple[float, float]] = []
    plain, chunked = tmp_path / "plain.parquet", tmp_path / "chunked.parquet"
    generate_to_parquet(manifest, DriverConfig(workers=1), plain)
    report = generate_to_parquet(manifest, DriverConfig(workers=workers), chunked,
                                 on_progress=lambda done, total: seen.append((done, total)))
    assert report.windows == 1
    assert chunked.read_bytes() == plain.read_bytes(), "generating in chunks changes no byte"
    done = [d for d, _ in seen]
    assert {t for _, t in seen} == {progress_total(manifest)}
    assert done == sorted(set(done)), "strictly increasing"
    assert done[-1] == progress_total(manifest)
    if workers == 1:  # in-process: every chunk of blocks is heard (a pool is read as the parent polls it)
        assert len(done) >= 30


def test_a_day_reports_progress_at_least_every_percent_of_it(tmp_path: Path) -> None:
    manifest = SimulationManifest(duration_seconds=86_400, seed=2, book_interval_ms=1000, num_levels=2)
    seen: list[float] = []
    generate_to_parquet(manifest, DriverConfig(workers=1), tmp_path / "day.parquet",
                        on_progress=lambda done, total: seen.append(done))
    total = progress_total(manifest)
    steps = np.diff([0.0, *seen])
    # generation is heard per chunk of 1/100 of the blocks (half the work), encoding column by column
    assert steps.max() <= total / 100 and len(seen) >= 100


def test_encoding_a_row_group_is_heard_column_by_column() -> None:
    from quantdesk.tools.market.coarse import CoarsePath
    from quantdesk.tools.market.encode import COLUMN_CHUNKS, encode_events
    from quantdesk.tools.market.pipeline import generate_table  # noqa: F401 - the engine, as the worker loads it
    from quantdesk.tools.market.window import generate_events, window_inputs
    from quantdesk.tools.market.worker import cached_params

    params = cached_params(SimulationManifest(duration_seconds=120, seed=1))
    events = generate_events(params, window_inputs(CoarsePath(params), params, 0, 2))
    shares: list[float] = []
    part = encode_events(params, events.books, events.trades, shares.append)
    assert len(part.chunks) == COLUMN_CHUNKS == len(shares)
    assert shares == sorted(set(shares)) and shares[-1] == 1.0
