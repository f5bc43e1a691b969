"""Generated events: exact schema, order, book and trade invariants, grids, ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.schemas.events import EVENT_SCHEMA, BookEvent, TradeEvent
from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.pipeline import generate_table, generate_to_parquet, iter_event_tables

Invariants = Callable[[pa.Table, SimulationManifest], None]


def test_every_generated_table_has_exactly_the_event_schema(short_manifest: SimulationManifest) -> None:
    for table in iter_event_tables(short_manifest, stop_block=3):
        assert table.schema.equals(EVENT_SCHEMA, check_metadata=True)
        assert table.num_rows > 0


def test_the_parquet_file_reads_back_with_exactly_the_event_schema(short_manifest: SimulationManifest,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    generate_to_parquet(short_manifest, DriverConfig(workers=1), out)
    table = pq.read_table(out)
    assert table.schema.equals(EVENT_SCHEMA, check_metadata=True)
    assert table.equals(generate_table(short_manifest))


def test_book_and_trade_invariants_hold_for_the_default_market(short_manifest: SimulationManifest,
                                                               invariants: Invariants) -> None:
    invariants(generate_table(short_manifest), short_manifest)


def test_book_and_trade_invariants_hold_for_a_busy_market(busy_manifest: SimulationManifest,
                                                          invariants: Invariants) -> None:
    invariants(generate_table(busy_manifest, stop_block=3), busy_manifest)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tick_size=st.sampled_from([0.01, 0.1, 0.25, 0.5, 1.0, 5.0]),
    lot_size=st.sampled_from([0.00001, 0.001, 0.01, 1.0]),
    num_levels=st.integers(1, 25),
    book_interval_ms=st.sampled_from([10, 70, 100, 250, 700, 1000, 7000, 60_000]),
    trade_rate_per_second=st.sampled_from([0.05, 1.0, 20.0, 300.0]),
    base_spread_bps=st.sampled_from([0.01, 1.0, 25.0]),
    latency_median_ms=st.sampled_from([0.0, 3.0, 250.0]),
    seed=st.integers(0, 2**53 - 1),  # the manifest takes JSON-safe seeds
)
def test_invariants_hold_across_grids_intervals_and_rates(invariants: Invariants, tick_size: float, lot_size: float,
                                                          num_levels: int, book_interval_ms: int,
                                                          trade_rate_per_second: float, base_spread_bps: float,
                                                          latency_median_ms: float, seed: int) -> None:
    manifest = SimulationManifest(
        duration_seconds=150, initial_price=2_000.0, tick_size=tick_size, lot_size=lot_size,
        trade_size_median=max(0.5, lot_size), depth_level_size=max(5.0, lot_size), num_levels=num_levels,
        book_interval_ms=book_interval_ms, trade_rate_per_second=trade_rate_per_second,
        base_spread_bps=base_spread_bps, latency_median_ms=latency_median_ms, seed=seed, symbol="ETH-USD-PERP")
    invariants(generate_table(manifest), manifest)


def test_large_trades_print_through_the_touch(invariants: Invariants) -> None:
    manifest = SimulationManifest(duration_seconds=300, trade_rate_per_second=50.0, trade_size_median=0.5,
                                  trade_size_tail_probability=0.3, depth_level_size=0.5, seed=11)
    table = generate_table(manifest)
    invariants(table, manifest)
    trades = table.filter(pc.equal(table.column("event_type").cast(pa.string()), "trade"))
    books_before = np.cumsum(pc.equal(table.column("event_type").cast(pa.string()), "book").to_numpy(
        zero_copy_only=False)) - 1
    is_trade = pc.equal(table.column("event_type").cast(pa.string()), "trade").to_numpy(zero_copy_only=False)
    best_ask = table.column("best_ask").to_numpy(zero_copy_only=False)
    book_rows = np.flatnonzero(~is_trade)
    in_force = book_rows[books_before[is_trade]]
    buy = pc.equal(trades.column("side").cast(pa.string()), "buy").to_numpy(zero_copy_only=False)
    through = trades.column("price").to_numpy()[buy] > best_ask[in_force[buy]]
    assert through.any() and not through.all()


def test_trade_ids_are_unique_increasing_decimal_strings(short_manifest: SimulationManifest) -> None:
    table = generate_table(short_manifest)
    ids = [int(i) for i in pc.drop_null(table.column("trade_id")).to_pylist()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_both_aggressor_sides_occur_and_repeat_more_often_than_chance() -> None:
    # without the flow-price link (order_flow_impact), whose signed minutes add repeats of their own
    manifest = SimulationManifest(duration_seconds=1800, trade_rate_per_second=20.0, side_persistence=0.4, seed=5,
                                  order_flow_impact=0.0)
    table = generate_table(manifest)
    side = pc.drop_null(table.column("side").cast(pa.string())).to_numpy(zero_copy_only=False)
    repeat = float(np.mean(side[1:] == side[:-1]))
    assert 0.4 < float(np.mean(side == "buy")) < 0.6
    # (1 + persistence) / 2 = 0.7, up to sampling noise and the rare block-boundary restart
    assert abs(repeat - 0.7) < 0.02


def test_rows_validate_as_the_canonical_event_models(short_manifest: SimulationManifest) -> None:
    table = generate_table(short_manifest, stop_block=1)
    fields = {"trade": set(TradeEvent.model_fields), "book": set(BookEvent.model_fields)}
    seen: set[str] = set()
    for row in table.slice(0, 400).to_pylist():
        kind = row["event_type"]
        values = {k: v for k, v in row.items() if k in fields[kind] and v is not None}
        event: TradeEvent | BookEvent = (TradeEvent if kind == "trade" else BookEvent).model_validate(values)
        seen.add(event.event_type)
        assert {k for k, v in row.items() if v is not None} <= fields[kind]
    assert seen == {"trade", "book"}
