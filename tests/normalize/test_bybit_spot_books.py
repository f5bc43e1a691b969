"""Bybit books carry no category: the feed's own spot trades tell spot books, or a warning says what was assumed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from quantdesk.tools.normalize import Normalizer, normalize_file

TS = 1672304486868


def trade(symbol: str = "BTCUSDT", *, derivative: bool = False) -> dict[str, Any]:
    # v5 spot trades have no tick direction `L`; linear and inverse trades do
    item: dict[str, Any] = {"T": TS, "s": symbol, "S": "Buy", "v": "0.001", "p": "16578.50",
                            "i": "2290000000061666327", "BT": False}
    if derivative:
        item["L"] = "PlusTick"
    return {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": TS, "data": [item]}


def book(symbol: str = "BTCUSDT", u: int = 1) -> dict[str, Any]:
    return {"topic": f"orderbook.50.{symbol}", "type": "snapshot", "ts": TS + u,
            "data": {"s": symbol, "b": [["16493.50", "0.006"]], "a": [["16611.00", "0.029"]], "u": u,
                     "seq": 7961638724 + u}, "cts": TS + u - 2}


def book_symbols(events: list[dict[str, Any]]) -> list[str]:
    return [e["symbol"] for e in events if e["event_type"] == "book"]


def test_a_spot_book_that_comes_before_the_first_spot_trade_is_spot() -> None:
    result = Normalizer("bybit").normalize([book(), trade(), book(u=2)])
    assert book_symbols(result.events) == ["BTC-USDT", "BTC-USDT"]
    assert [e["symbol"] for e in result.events if e["event_type"] == "trade"] == ["BTC-USDT"]
    assert result.summary.warnings == []


def test_a_derivative_feed_keeps_perp_books_without_a_warning() -> None:
    result = Normalizer("bybit").normalize([book(), trade(derivative=True)])
    assert book_symbols(result.events) == ["BTC-USDT-PERP"] and result.summary.warnings == []


def test_books_with_no_evidence_are_labelled_linear_and_the_summary_says_so() -> None:
    result = Normalizer("bybit").normalize([book(), book(u=2)])
    assert book_symbols(result.events) == ["BTC-USDT-PERP", "BTC-USDT-PERP"]
    assert len(result.summary.warnings) == 1 and "market='spot'" in result.summary.warnings[0]


def test_spot_trades_after_assumed_linear_books_are_warned_about() -> None:
    session = Normalizer("bybit").arrow_session()
    session.feed([orjson.dumps(book())])
    session.feed([orjson.dumps(trade())], first_index=1)
    warnings = session.summary().warnings
    assert any("before spot trades" in w for w in warnings)


def test_a_recorded_spot_file_gets_spot_books(tmp_path: Path) -> None:
    lines = [orjson.dumps(book()), orjson.dumps(trade()), orjson.dumps(book(u=2))]
    source, out = tmp_path / "bybit_spot.jsonl", tmp_path / "bybit_spot.parquet"
    source.write_bytes(b"\n".join(lines) + b"\n")
    summary = normalize_file("bybit", source, out)
    assert set(pq.read_table(out, columns=["symbol"]).column("symbol").to_pylist()) == {"BTC-USDT"}
    assert summary.summary.warnings == []


def test_a_recorded_spot_feed_labels_its_books_spot_without_being_told(
        fixture_rows: Callable[[str], list[dict[str, Any]]]) -> None:
    result = Normalizer("bybit").normalize([row["payload"] for row in fixture_rows("bybit_spot")])
    assert {(e["event_type"], e["symbol"]) for e in result.events} == {("book", "ETH-USDT"), ("trade", "ETH-USDT")}
    assert result.summary.warnings == []
