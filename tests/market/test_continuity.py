"""One path, however it is cut: windows concatenate to the run, shorter runs are prefixes, blocks join up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.blocks import BLOCK_MS
from quantdesk.tools.market.coarse import CoarsePath
from quantdesk.tools.market.params import derive_params
from quantdesk.tools.market.pipeline import generate_table, generate_to_parquet, iter_event_tables

Invariants = Callable[[pa.Table, SimulationManifest], None]


def test_the_run_equals_the_concatenation_of_its_windows(short_manifest: SimulationManifest, tmp_path: Path) -> None:
    whole = generate_table(short_manifest)
    for size in (1, 3, 7):
        parts = list(iter_event_tables(short_manifest, blocks_per_table=size, stop_block=10))
        assert pa.concat_tables(parts).equals(whole)
    out = tmp_path / "run.parquet"
    generate_to_parquet(short_manifest, DriverConfig(workers=2, window_seconds=60), out)
    assert pq.read_table(out).equals(whole)


def test_a_window_made_alone_equals_the_same_window_inside_the_run(short_manifest: SimulationManifest) -> None:
    whole = generate_table(short_manifest)
    ts = whole.column("timestamp_ms").to_numpy()
    start = short_manifest.start_time_ms
    lo, hi = np.searchsorted(ts, [start + 4 * BLOCK_MS, start + 7 * BLOCK_MS])
    assert generate_table(short_manifest, first_block=4, stop_block=7).equals(whole.slice(lo, hi - lo))


def test_a_shorter_run_is_the_start_of_a_longer_one(short_manifest: SimulationManifest) -> None:
    longer = generate_table(short_manifest.model_copy(update={"duration_seconds": 1500}))
    shorter = generate_table(short_manifest.model_copy(update={"duration_seconds": 437}))
    assert longer.slice(0, shorter.num_rows).equals(shorter)
    assert longer.column("timestamp_ms")[shorter.num_rows].as_py() >= short_manifest.start_time_ms + 437_000


def test_every_block_opens_at_the_pre_pass_price(short_manifest: SimulationManifest) -> None:
    params = derive_params(short_manifest)
    log_start = CoarsePath(params).blocks(0, 10).log_price
    table = generate_table(short_manifest)
    books = table.filter(pc.equal(table.column("event_type").cast(pa.string()), "book"))
    ts = books.column("timestamp_ms").to_numpy()
    first_of_block = np.searchsorted(ts, short_manifest.start_time_ms + np.arange(10) * BLOCK_MS)
    mid = books.column("mid_price").to_numpy()[first_of_block]
    # the book is centred on the latent mid up to half a tick
    assert np.all(np.abs(mid - np.exp(log_start)) <= short_manifest.tick_size)


def test_the_mid_moves_across_block_boundaries_like_inside_blocks() -> None:
    manifest = SimulationManifest(duration_seconds=3 * 3600, seed=21, jump_model="none")
    table = generate_table(manifest)
    books = table.filter(pc.equal(table.column("event_type").cast(pa.string()), "book"))
    step = np.diff(np.log(books.column("mid_price").to_numpy()))
    at_boundary = (np.arange(1, step.size + 1) % (BLOCK_MS // manifest.book_interval_ms)) == 0
    inside, across = np.abs(step[~at_boundary]).mean(), np.abs(step[at_boundary]).mean()
    # a discontinuity at block starts would show as much larger moves there
    assert across < 1.5 * inside


def test_the_live_stream_runs_on_past_the_manifest_duration() -> None:
    manifest = SimulationManifest(duration_seconds=60, seed=4)
    stream = iter_event_tables(manifest, blocks_per_table=1)
    tables = [next(stream) for _ in range(4)]
    ts = np.concatenate([t.column("timestamp_ms").to_numpy() for t in tables])
    assert np.all(np.diff(ts) >= 0)
    assert ts[-1] >= manifest.start_time_ms + 3 * BLOCK_MS
    assert pa.concat_tables(tables).equals(generate_table(manifest.model_copy(update={"duration_seconds": 240})))


UNUSUAL = {
    "kou jumps, mean reversion, leverage": {"jump_model": "kou", "jump_intensity_per_hour": 30.0,
                                            "kou_up_mean_bps": 5.0, "kou_down_mean_bps": 8.0,
                                            "kou_up_probability": 0.2, "mean_reversion_per_day": 50.0,
                                            "leverage_correlation": -0.8, "drift_annual": 2.0},
    "no clustering, no noise": {"hawkes_branching_ratio": 0.0, "trade_rate_vol_elasticity": 0.0,
                                "spread_noise_sd": 0.0, "depth_noise_sd": 0.0, "latency_log_sd": 0.0,
                                "trade_size_log_sd": 0.0, "trade_size_tail_probability": 0.0, "jump_model": "none"},
    "slow kernel, an hour of lookback": {"hawkes_decay_seconds": 600.0, "hawkes_branching_ratio": 0.9,
                                         "side_persistence": 0.95, "trade_rate_per_second": 2.0},
    "one factor, heavy tails": {"vol_factor_half_lives_seconds": (30.0,), "vol_factor_stdevs": (1.0,),
                                "return_tail_dof": 2.1, "book_interval_ms": 1300},
}


@pytest.mark.parametrize("fields", UNUSUAL.values(), ids=list(UNUSUAL))
def test_unusual_markets_cut_into_any_windows_give_one_path(fields: dict[str, object], invariants: Invariants) -> None:
    manifest = SimulationManifest.model_validate({"duration_seconds": 420, "seed": 13, **fields})
    whole = generate_table(manifest)
    invariants(whole, manifest)
    for size in (1, 2, 5):
        assert pa.concat_tables(list(iter_event_tables(manifest, blocks_per_table=size, stop_block=7))).equals(whole)
