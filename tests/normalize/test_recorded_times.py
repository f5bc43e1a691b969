"""Times from the input, never from the wall clock: recorder formats, null times that say so, byte-identical reruns."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from quantdesk.tools.normalize import Normalizer, normalize_file
from quantdesk.tools.normalize.recorded import read_text

FIXTURE = Path(__file__).parent / "fixtures" / "recorded_binance_spot.txt"
START_2021, END_2021 = 1_609_459_200_000, 1_640_995_200_000
TICKER = {"u": 11223344, "s": "BTCUSDT", "b": "33510.01", "B": "0.5", "a": "33510.02", "A": "1.2"}


@pytest.mark.parametrize(("line", "capture_ms"), [
    ('1625097600123456 {"u":1}', 1625097600123),  # hftbacktest collector, µs
    ('1625097600123456789 {"u":1}', 1625097600123),  # hftbacktest collector, ns
    ('1625097600123 {"u":1}', 1625097600123),  # ms
    ('2021-07-01T00:00:00.1234567Z {"u":1}', 1625097600123),  # Tardis raw file
    ('1625097600.123456: {"u":1}', 1625097600123),  # cryptofeed raw file
    ('1625097600.1: {"u":1}', 1625097600100),
    ('https://api.binance.com/api/v3/depth?symbol=BTCUSDT -> 1625097600.123: {"u":1}', 1625097600123),
])
def test_each_recorder_line_format_yields_the_message_and_its_receive_time(line: str, capture_ms: int) -> None:
    assert read_text(line) == {"payload": {"u": 1}, "capture_time_ms": capture_ms}
    assert read_text(line.encode()) == {"payload": {"u": 1}, "capture_time_ms": capture_ms}


def test_tardis_machine_replay_lines_carry_their_local_timestamp() -> None:
    line = {"localTimestamp": "2021-07-01T00:00:00.5234567Z", "message": TICKER}
    event = Normalizer("binance").normalize([line]).events[0]
    assert (event["timestamp_ms"], event["capture_time_ms"]) == (1625097600523, 1625097600523)


def test_a_recorded_spot_feed_is_stamped_with_its_capture_times(tmp_path: Path) -> None:
    out = tmp_path / "recorded.parquet"
    summary = normalize_file("binance", FIXTURE, out, symbol="BTCUSDT")
    rows = pq.read_table(out).to_pylist()
    timed = [(r["event_type"], r["timestamp_ms"], r["capture_time_ms"]) for r in rows]
    assert timed[:6] == [
        ("book", 1625097600123, 1625097600123), ("book", 1625097600223, 1625097600223),
        ("book", 1625097600323, 1625097600323), ("trade", 1625097600400, 1625097600423),
        ("book", 1625097600523, 1625097600523), ("book", 1625097600623, 1625097600623)]
    assert timed[6] == ("book", 1625097600723, 1625097600723), "cryptofeed's REST record is a snapshot"
    counts = summary.summary.counts
    assert counts.non_event_by_kind == {"control": 2}, "the cryptofeed header and connect lines"
    assert counts.timestamps_from_capture == 6 and counts.timestamps_missing == 1
    assert all(START_2021 <= r["timestamp_ms"] < END_2021 for r in rows if r["timestamp_ms"] is not None)


def test_a_message_with_no_time_at_all_keeps_null_times_and_is_reported() -> None:
    result = Normalizer("binance").normalize([TICKER, {"payload": TICKER | {"u": 11223345},
                                                      "capture_time_ms": 1625097600623}])
    first, second = result.events
    assert (first["timestamp_ms"], first["capture_time_ms"]) == (None, None)
    assert (second["timestamp_ms"], second["capture_time_ms"]) == (1625097600623, 1625097600623)
    assert (result.counts.timestamps_missing, result.counts.timestamps_from_capture) == (1, 1)
    warnings = " ".join(result.summary.warnings)
    assert "null" in warnings and "capture_time_ms" in warnings and "capture time" in warnings


def test_the_same_recorded_file_normalizes_to_identical_parquet_bytes(tmp_path: Path) -> None:
    gz = tmp_path / "feed.txt.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes(), mtime=0))
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.parquet"
        normalize_file("binance", gz, out, symbol="BTCUSDT")
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 8


def futures_diff(first: int, last: int, prev: int, event_ms: int, match_ms: int) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": event_ms, "T": match_ms, "s": "BTCUSDT", "U": first, "u": last, "pu": prev,
            "b": [["43000.0", "1"]], "a": []}


def test_usdm_books_use_the_match_time_like_trades() -> None:
    snapshot = {"lastUpdateId": 100, "E": 1_700_000_000_050, "T": 1_700_000_000_040, "bids": [["42999.0", "1"]],
                "asks": [["43001.0", "1"]]}
    trade = {"e": "trade", "E": 1_700_000_000_090, "T": 1_700_000_000_085, "s": "BTCUSDT", "t": 5, "p": "43000.0",
             "q": "0.1", "X": "MARKET", "m": True}
    result = Normalizer("binance", "BTCUSDT").normalize([snapshot, futures_diff(99, 110, 98, 1_700_000_000_080,
                                                                     1_700_000_000_075), trade])
    assert [e["timestamp_ms"] for e in result.events] == [1_700_000_000_040, 1_700_000_000_075, 1_700_000_000_085]


def test_a_broken_recorder_line_is_rejected_without_quoting_it() -> None:
    result = Normalizer("binance").normalize(['1625097600123456 {"secret-value": oops'])
    assert [(r.kind, "secret" in r.reason) for r in result.rejections] == [("malformed_json", False)]
