"""Recorded feeds to Parquet: streaming in blocks, gzip by magic bytes, atomic output, progress and reports."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.tools.normalize import Normalizer, normalize_file

T0 = 1_700_000_000_000


def binance_feed(n: int) -> list[bytes]:
    """Mostly trades, with a book (snapshot + diffs), a mark price, a malformed line and a duplicate every 50k."""
    rng = random.Random(7)
    lines = [orjson.dumps({"lastUpdateId": 10, "bids": [["42999.0", "1"]], "asks": [["43001.0", "1"]]})]
    update = 10
    for i in range(n):
        if i % 1000 == 500:
            lines.append(orjson.dumps({"e": "depthUpdate", "E": T0 + i, "s": "BTCUSDT", "U": update + 1,
                                       "u": update + 2, "b": [["42998.5", f"{rng.random():.3f}"]], "a": []}))
            update += 2
        elif i % 50_000 == 20_000:
            lines.append(b"{not json")
        elif i % 50_000 == 30_000:
            lines.append(lines[-1])
        else:
            lines.append(orjson.dumps({"e": "trade", "E": T0 + i, "s": "BTCUSDT", "t": i, "p": f"{43000 + i % 7}.5",
                                       "q": "0.010", "T": T0 + i, "m": i % 3 == 0, "M": True}))
    lines.append(orjson.dumps({"e": "markPriceUpdate", "E": T0, "s": "BTCUSDT", "p": "43000.1"}))
    return lines


def write_gz(path: Path, lines: list[bytes]) -> None:
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(b"\n".join(lines) + b"\n")


def test_a_large_gzip_feed_round_trips_to_parquet_in_the_event_schema(tmp_path: Path) -> None:
    lines = binance_feed(300_000)
    source, out = tmp_path / "feed.jsonl.gz", tmp_path / "events.parquet"
    write_gz(source, lines)
    progress: list[tuple[int, int, int]] = []
    summary = normalize_file("binance", source, out, symbol="BTCUSDT", block_bytes=4 << 20,
                             on_progress=lambda *p: progress.append(p))
    table = pq.read_table(out)
    assert table.schema.equals(EVENT_SCHEMA)
    assert table.schema.metadata[b"quantdesk.schema"] == b"canonical-event/1"
    counts = summary.summary.counts
    assert summary.lines == len(lines) and counts.inputs == len(lines)
    assert table.num_rows == summary.rows_written == counts.events
    assert counts.accepted + counts.rejected + counts.non_event == counts.inputs
    assert counts.rejected_by_kind == {"malformed_json": 6, "stale": 6}
    assert counts.non_event_by_kind == {"mark_price": 1}
    assert counts.book_events == 301 and counts.gaps == 0
    assert pq.ParquetFile(out).metadata.num_row_groups > 1  # written block by block
    assert [r["line"] for r in summary.rejections] == sorted(r["line"] for r in summary.rejections)
    expected = Normalizer("binance", "BTCUSDT").normalize(lines[:3]).events[1:]  # the snapshot has no exchange time
    assert table.slice(1, 2).to_pylist() == [{n: e.get(n) for n in EVENT_SCHEMA.names} for e in expected]
    assert progress[-1][0] == len(lines) and progress[-1][1] == progress[-1][2] == source.stat().st_size
    assert all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(progress, progress[1:], strict=False))


def test_a_truncated_gzip_fails_without_leaving_any_output(tmp_path: Path) -> None:
    source, out = tmp_path / "feed.jsonl.gz", tmp_path / "events.parquet"
    write_gz(source, binance_feed(20_000))
    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises((EOFError, OSError)):
        normalize_file("binance", source, out, symbol="BTCUSDT", block_bytes=1 << 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed.jsonl.gz"]


def test_a_failed_run_keeps_the_previous_output_intact(tmp_path: Path) -> None:
    source, out = tmp_path / "feed.jsonl.gz", tmp_path / "events.parquet"
    write_gz(source, binance_feed(1000))
    normalize_file("binance", source, out, symbol="BTCUSDT")
    before = out.read_bytes()
    source.write_bytes(source.read_bytes()[:-20])
    with pytest.raises((EOFError, OSError)):
        normalize_file("binance", source, out, symbol="BTCUSDT")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.parquet", "feed.jsonl.gz"]


def test_plain_jsonl_with_crlf_blank_lines_and_no_final_newline_is_read(tmp_path: Path) -> None:
    trade = {"e": "trade", "E": T0, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": T0, "m": True, "M": True}
    text = json.dumps(trade) + "\r\n\r\n" + json.dumps(trade | {"t": 2})
    source, out = tmp_path / "feed.jsonl", tmp_path / "events.parquet"
    source.write_text(text)
    summary = normalize_file("binance", source, out)
    assert (summary.lines, summary.blank_lines, summary.rows_written) == (3, 1, 2)
    assert pq.read_table(out).column("trade_id").to_pylist() == ["1", "2"]


def test_rejections_are_reported_by_line_up_to_the_limit(tmp_path: Path) -> None:
    source, out = tmp_path / "feed.jsonl", tmp_path / "events.parquet"
    source.write_text("\n".join(["{bad"] * 10 + [json.dumps({"channel": "bogus"})]))
    summary = normalize_file("hyperliquid", source, out, max_reported=3)
    assert [r["line"] for r in summary.rejections] == [1, 2, 3]
    assert summary.summary.counts.rejected == 11
    assert pq.read_table(out).num_rows == 0


def test_an_empty_feed_gives_an_empty_parquet_file_with_the_schema(tmp_path: Path) -> None:
    source, out = tmp_path / "feed.jsonl", tmp_path / "events.parquet"
    source.write_bytes(b"")
    assert normalize_file("okx", source, out).rows_written == 0
    assert pq.read_schema(out).equals(EVENT_SCHEMA)


def test_venue_books_from_a_file_end_in_the_same_state_as_in_memory(tmp_path: Path) -> None:
    rows = [json.loads(line)["payload"] for line in
            (Path(__file__).parent / "fixtures" / "okx.jsonl").read_text().splitlines()]
    source, out = tmp_path / "okx.jsonl", tmp_path / "events.parquet"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    summary = normalize_file("okx", source, out)
    expected = Normalizer("okx").normalize(rows)
    assert summary.summary.counts == expected.counts
    assert summary.summary.books == expected.summary.books
    assert pq.read_table(out).num_rows == len(expected.events)


def test_a_missing_output_directory_fails_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "feed.jsonl"
    source.write_text("{}\n")
    with pytest.raises(OSError):
        normalize_file("okx", source, tmp_path / "missing" / "events.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed.jsonl"]


def test_an_unknown_source_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = tmp_path / "feed.jsonl"
    source.write_text("{}\n")
    with pytest.raises(ValueError):
        normalize_file("kraken", source, tmp_path / "events.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed.jsonl"]
