"""The numpy Parquet encodings against plain reference encoders and decoders, and the files they make."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market import parquet_encoding as pe
from quantdesk.tools.market.encode import CREATED_BY, dictionary_of
from quantdesk.tools.market.parquet_stitch import stitch
from quantdesk.tools.market.pipeline import generate_table, generate_to_parquet, iter_event_parts
from quantdesk.tools.market.trades import trade_id_deltas, trade_id_strings

RNG = np.random.default_rng(20240601)


def _reference_pack(values: np.ndarray, width: int) -> bytes:
    """Bit by bit, least significant first, padded with zeros to a multiple of 8 values."""
    bits = []
    for value in [int(v) for v in values] + [0] * (-len(values) % 8):
        bits += [(value >> k) & 1 for k in range(width)]
    return bytes(sum(bit << k for k, bit in enumerate(bits[i:i + 8])) for i in range(0, len(bits), 8))


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _decode_delta_binary_packed(data: bytes) -> tuple[list[int], int]:
    """The format's reference algorithm, value by value; returns the values and the bytes read."""
    block, pos = _read_varint(data, 0)
    miniblocks, pos = _read_varint(data, pos)
    total, pos = _read_varint(data, pos)
    first, pos = _read_varint(data, pos)
    values = [(first >> 1) ^ -(first & 1)] if total else []
    per_mini = block // miniblocks
    while len(values) < total:
        raw, pos = _read_varint(data, pos)
        min_delta = (raw >> 1) ^ -(raw & 1)
        widths = list(data[pos:pos + miniblocks])
        pos += miniblocks
        for width in widths:
            if len(values) >= total:
                break
            chunk = int.from_bytes(data[pos:pos + per_mini * width // 8], "little")
            pos += per_mini * width // 8
            for k in range(per_mini):
                if len(values) >= total:
                    break
                value = (values[-1] + min_delta + ((chunk >> (k * width)) & ((1 << width) - 1))) % 2**64
                values.append(value - 2**64 if value >= 2**63 else value)
    return values, pos


@pytest.mark.parametrize("width", list(range(0, 65)))
def test_bit_packing_matches_the_reference_for_every_width(width: int) -> None:
    packable = pe.packable_width(width)
    assert packable >= width
    for n in (0, 1, 7, 8, 9, 333):
        high = 2**width if width < 64 else 2**63
        values = RNG.integers(0, high, n, dtype=np.uint64) if width else np.zeros(n, dtype=np.uint64)
        if width == 64 and n:
            values[0] = np.uint64(2**64 - 1)
        assert pe.pack_bits(values, packable).tobytes() == _reference_pack(values, packable)


@pytest.mark.parametrize("top", [3, 8, 13, 16, 27, 32, 50, 64])
def test_groups_packed_at_widths_of_their_own_match_the_reference(top: int) -> None:
    widths = RNG.integers(0, top + 1, 40)
    widths[0] = top
    widths = pe.packable_widths(widths.astype(np.int64))
    values = np.concatenate([RNG.integers(0, 2**int(w) if w < 64 else 2**63, 8, dtype=np.uint64) for w in widths])
    rows, keep = pe.pack_groups(values, widths)
    expected = b"".join(_reference_pack(values[8 * g:8 * g + 8], int(w)) for g, w in enumerate(widths))
    assert rows[keep].tobytes() == expected


@pytest.mark.parametrize("values", [
    [], [5], list(range(-7, 3000, 3)), [np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, -1, 1] * 40,
    np.cumsum(RNG.integers(0, 50, 12_345)).tolist(), RNG.integers(-2**62, 2**62, 777).tolist(),
    np.cumsum(RNG.integers(-3, 3, 129)).tolist(), np.cumsum(RNG.integers(0, 2**40, 300)).tolist(),
], ids=["empty", "one", "arithmetic", "extremes", "timestamps", "random", "one-past-a-block", "wide"])
def test_delta_binary_packed_decodes_to_the_values_with_nothing_left_over(values: list[int]) -> None:
    encoded = pe.delta_binary_packed(np.array(values, dtype=np.int64))
    decoded, read = _decode_delta_binary_packed(encoded)
    assert decoded == values and read == len(encoded)


def test_varints_and_rle_runs_match_the_byte_by_byte_encoding() -> None:
    values = np.array([0, 1, 127, 128, 300, 2**14, 2**21 - 1, 2**63, 2**64 - 1], dtype=np.uint64)
    rows, used = pe.varint_rows(values)
    assert rows[used].tobytes() == b"".join(pe.varint(int(v)) for v in values)
    lengths = np.array([3, 0, 200, 1, 70_000, 5], dtype=np.int64)
    run_values = np.array([0, 1, 3, 2, 1, 0], dtype=np.int64)
    for width in (1, 2, 9):
        expected = b"".join(pe.varint(int(n) << 1) + int(v).to_bytes(-(-width // 8), "little")
                            for n, v in zip(lengths, run_values, strict=True) if n)
        assert pe.rle_hybrid(lengths, run_values, width) == expected


@pytest.mark.parametrize(("blocks", "counts"), [
    ([0, 1, 2], [5, 0, 13]), ([8, 9, 10, 11], [1234, 1, 0, 100_001]), ([98, 99, 100], [0, 2, 3]),
    ([5], [0]), ([999, 1000], [200_000, 11]),
])
def test_trade_id_deltas_rebuild_the_ids_with_longest_shared_prefixes(blocks: list[int], counts: list[int]) -> None:
    offsets, data = trade_id_strings(np.array(blocks), np.array(counts))
    ids = [data[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]
    prefixes, suffix_lengths, suffixes = trade_id_deltas(np.array(blocks), np.array(counts))
    previous, at = b"", 0
    for i, expected in enumerate(ids):
        value = previous[:prefixes[i]] + suffixes[at:at + suffix_lengths[i]].tobytes()
        at += int(suffix_lengths[i])
        shared = next((k for k in range(min(len(previous), len(value))) if previous[k] != value[k]),
                      min(len(previous), len(value)))
        assert value == expected and prefixes[i] == shared
        previous = value
    assert at == suffixes.size


@pytest.mark.parametrize("values", [
    RNG.integers(500_000, 501_000, 100_000),  # dense: prices on the tick grid
    RNG.integers(0, 60_000, 500),  # sparse
    np.concatenate([RNG.integers(1, 5_000, 10_000), [10**7, 10**9, 10**7]]),  # a Pareto tail
])
def test_dictionaries_index_back_to_every_value(values: np.ndarray) -> None:
    entries, index = dictionary_of(values.astype(np.int64))
    assert np.array_equal(entries[index], values)
    assert np.all(np.diff(entries) > 0)


def test_the_file_carries_time_statistics_our_writer_name_and_readable_row_groups(busy_manifest: SimulationManifest,
                                                                                 tmp_path: Path) -> None:
    out = tmp_path / "busy.parquet"
    generate_to_parquet(busy_manifest, DriverConfig(workers=2, window_seconds=60), out)
    handle = pq.ParquetFile(out)
    meta = handle.metadata
    assert meta.created_by == CREATED_BY
    whole = generate_table(busy_manifest)
    timestamps = whole.column("timestamp_ms").to_numpy()
    start = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        stats = group.column(handle.schema_arrow.get_field_index("timestamp_ms")).statistics
        part = handle.read_row_group(g)
        assert part.equals(whole.slice(start, group.num_rows))
        assert (stats.min, stats.max) == (timestamps[start], timestamps[start + group.num_rows - 1])
        start += group.num_rows
    # readers may prune row groups by those statistics and read in small batches
    cutoff = int(timestamps[len(timestamps) // 2])
    filtered = pq.read_table(out, filters=[("timestamp_ms", ">=", cutoff)])
    assert filtered.equals(whole.filter(pc.greater_equal(whole.column("timestamp_ms"), cutoff)))
    batches = list(handle.iter_batches(batch_size=1000, columns=["trade_id", "bids", "notional_usd"]))
    assert sum(b.num_rows for b in batches) == whole.num_rows
    assert batches[5].column("trade_id").equals(whole.column("trade_id").slice(5000, 1000).combine_chunks())


def test_a_single_part_is_a_complete_parquet_file(short_manifest: SimulationManifest) -> None:
    part = next(iter_event_parts(short_manifest, blocks_per_part=2, stop_block=2))
    table = pq.read_table(io.BytesIO(stitch([part])))
    assert table.equals(generate_table(short_manifest, stop_block=2))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tick_size=st.sampled_from([0.01, 0.1, 0.25, 5.0]),
    lot_size=st.sampled_from([0.00001, 0.001, 1.0]),
    num_levels=st.integers(1, 25),
    book_interval_ms=st.sampled_from([10, 100, 700, 60_000]),
    trade_rate_per_second=st.sampled_from([0.05, 1.0, 300.0, 3000.0]),
    tail_probability=st.sampled_from([0.0, 0.05, 0.5]),
    seed=st.integers(0, 2**53 - 1),  # the manifest takes JSON-safe seeds
)
def test_every_encoding_path_reads_back_as_the_generated_table(tick_size: float, lot_size: float, num_levels: int,
                                                               book_interval_ms: int, trade_rate_per_second: float,
                                                               tail_probability: float, seed: int) -> None:
    # sparse and dense books, one level or many, ranges and presence tables and Pareto tails in the dictionaries
    manifest = SimulationManifest(
        duration_seconds=130, initial_price=2_000.0, tick_size=tick_size, lot_size=lot_size,
        trade_size_median=max(0.5, lot_size), depth_level_size=max(5.0, lot_size), num_levels=num_levels,
        book_interval_ms=book_interval_ms, trade_rate_per_second=trade_rate_per_second,
        trade_size_tail_probability=tail_probability, seed=seed)
    data = stitch(list(iter_event_parts(manifest, blocks_per_part=2, stop_block=3)))
    assert pq.read_table(io.BytesIO(data)).equals(generate_table(manifest))
