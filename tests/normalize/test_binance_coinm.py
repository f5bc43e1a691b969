"""Binance COIN-M: contracts worth a fixed USD amount become base units; never taken for USD-M."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from quantdesk.tools.normalize import Normalizer, normalize_file
from quantdesk.tools.venues.catalog import get_venue

T0 = 1_625_097_601_405  # 2021-07-01


def trade(symbol: str, price: str, contracts: str, trade_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {"e": "trade", "E": T0 + 7, "T": T0, "s": symbol, "t": trade_id, "p": price, "q": contracts,
            "X": "MARKET", "m": False, **extra}


def test_a_dated_coin_m_trade_is_sized_in_base_units_not_contracts() -> None:
    event = Normalizer("binance").normalize([trade("ETHUSD_210924", "1993.36", "60")]).events[0]
    assert (event["exchange"], event["symbol"], event["raw_symbol"]) == (
        "binance_coinm", "ETH-USD-210924", "ETHUSD_210924")
    assert event["size"] == pytest.approx(600 / 1993.36) and round(event["size"], 3) == 0.301
    assert event["notional_usd"] == pytest.approx(600.0)


def test_a_btc_coin_m_contract_is_worth_100_usd_and_others_10() -> None:
    result = Normalizer("binance").normalize([trade("BTCUSD_PERP", "33512.4", "25", 1),
                                              trade("ETHUSD_PERP", "2000", "25", 2)])
    assert [e["symbol"] for e in result.events] == ["BTC-USD-PERP", "ETH-USD-PERP"]
    assert [e["notional_usd"] for e in result.events] == pytest.approx([2500.0, 250.0])


def test_the_contract_values_come_from_the_venue_data() -> None:
    figure = get_venue("binance").inverse_contracts
    assert figure is not None and figure.source and figure.verified is False
    usd = figure.value.usd_per_contract("XRP")
    event = Normalizer("binance").normalize([trade("XRPUSD_PERP", "0.5", "4")]).events[0]
    assert event["size"] == pytest.approx(4 * usd / 0.5)


def test_contract_sizes_override_the_venue_data_by_venue_symbol() -> None:
    event = Normalizer("binance", contract_sizes={"ETHUSD_210924": 20.0}).normalize(
        [trade("ETHUSD_210924", "2000", "10")]).events[0]
    assert event["size"] == pytest.approx(10 * 20 / 2000)


def test_the_symbol_decides_even_when_the_caller_says_usdm() -> None:
    event = Normalizer("binance", market="usdm").normalize([trade("BTCUSD_PERP", "40000", "4")]).events[0]
    assert event["exchange"] == "binance_coinm" and event["size"] == pytest.approx(400 / 40000)


def test_a_plain_pair_is_not_coin_m_even_when_asked() -> None:
    result = Normalizer("binance", market="coinm").normalize([trade("BTCUSDT", "40000", "4")])
    assert [(r.index, r.kind) for r in result.rejections] == [(0, "unknown_symbol")]


def test_coin_m_book_levels_and_tickers_are_in_base_units(fixture_rows: Callable[[str], list[dict[str, Any]]]) -> None:
    rows = fixture_rows("binance_coinm")
    result = Normalizer("binance").normalize([row["payload"] for row in rows])
    books = [e for e in result.events if e["event_type"] == "book"]
    snapshot = next(e for e in books if e["is_snapshot"] and e["raw_symbol"] == "BTCUSD_PERP")
    assert snapshot["bids"][1] == {"price": 33512.0, "size": pytest.approx(450 * 100 / 33512.0)}
    ticker = next(e for e in books if e["raw_symbol"] == "ETHUSD_210924")
    assert ticker["bids"] == [{"price": 1993.21, "size": pytest.approx(150 * 10 / 1993.21)}]
    assert ticker["timestamp_ms"] == 1625097601901, "futures tickers carry the matching time T"
    status = next(b for b in result.summary.books if b.channel == "depth")
    assert (status.exchange, status.state, status.last_seq, status.gaps) == ("binance_coinm", "synced", 305020, 0)


def test_coin_m_trades_in_a_recorded_file_are_converted_like_single_messages(tmp_path: Path) -> None:
    # Enough trades in a row for the columnar lane, which must leave COIN-M rows to the per-message path.
    lines = [orjson.dumps(trade("BTCUSD_PERP", "40000", "4", i)) for i in range(1, 201)]
    source, out = tmp_path / "coinm.jsonl", tmp_path / "coinm.parquet"
    source.write_bytes(b"\n".join(lines) + b"\n")
    normalize_file("binance", source, out)
    sizes = pq.read_table(out, columns=["size", "exchange"]).to_pylist()
    assert {row["exchange"] for row in sizes} == {"binance_coinm"}
    assert [row["size"] for row in sizes] == pytest.approx([400 / 40000] * 200)
