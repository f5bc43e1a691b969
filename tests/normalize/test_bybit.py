"""Bybit: category detection, inverse sizes, orderbook u continuity and the u = 1 restart."""

from __future__ import annotations

from typing import Any

import pytest

from quantdesk.tools.normalize import Normalizer, NormalizeResult

TS = 1672304484978


def trade(symbol: str = "BTCUSDT", side: str = "Buy", size: str = "0.001", price: str = "16578.50",
          **extra: Any) -> dict[str, Any]:
    item = {"T": TS, "s": symbol, "S": side, "v": size, "p": price, "i": "20f43950-d8dd", "BT": False, **extra}
    return {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": TS, "data": [item]}


def book(kind: str, u: int, bids: list[list[str]], asks: list[list[str]], symbol: str = "BTCUSDT",
         cts: bool = True) -> dict[str, Any]:
    message: dict[str, Any] = {"topic": f"orderbook.50.{symbol}", "type": kind, "ts": TS + u,
                               "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": 1000 + u}}
    if cts:
        message["cts"] = TS + u - 5
    return message


def kinds(result: NormalizeResult) -> dict[int, str]:
    return {r.index: r.kind for r in result.rejections}


def test_a_derivative_trade_is_a_perp_and_a_trade_without_tick_direction_is_spot() -> None:
    result = Normalizer("bybit").normalize([trade(L="PlusTick"), trade(side="Sell")])
    assert [(e["symbol"], e["side"]) for e in result.events] == [("BTC-USDT-PERP", "buy"), ("BTC-USDT", "sell")]
    assert result.events[0]["trade_id"] == "20f43950-d8dd"


def test_the_market_option_sets_the_category() -> None:
    event = Normalizer("bybit", market="spot").normalize([trade(L="PlusTick")]).events[0]
    assert event["symbol"] == "BTC-USDT"


def test_inverse_sizes_are_usd_contracts_divided_by_price() -> None:
    event = Normalizer("bybit").normalize([trade("BTCUSD", size="1000", price="16000", L="MinusTick")]).events[0]
    assert event["symbol"] == "BTC-USD-PERP"
    assert event["size"] == pytest.approx(1000 / 16000) and event["notional_usd"] == pytest.approx(1000.0)


def test_usdc_perpetuals_named_perp_map_to_usdc() -> None:
    assert Normalizer("bybit").normalize([trade("ETHPERP", L="PlusTick")]).events[0]["symbol"] == "ETH-USDC-PERP"


def test_books_use_the_matching_engine_time_when_present() -> None:
    result = Normalizer("bybit").normalize([book("snapshot", 10, [["1", "1"]], [["2", "1"]]),
                                            book("snapshot", 11, [["1", "1"]], [["2", "1"]], cts=False)])
    assert [e["timestamp_ms"] for e in result.events] == [TS + 5, TS + 11]


def test_deltas_must_continue_the_update_id() -> None:
    batch = [book("snapshot", 10, [["100", "1"]], [["101", "1"]]), book("delta", 11, [["100", "0"]], []),
             book("delta", 11, [], []), book("delta", 9, [], []), book("delta", 15, [["99", "1"]], []),
             book("delta", 16, [], [])]
    result = Normalizer("bybit").normalize(batch)
    assert kinds(result) == {2: "stale", 3: "stale", 5: "awaiting_snapshot"}
    assert [e["gap"] for e in result.events] == [False, False, True]
    assert result.events[1]["best_bid"] is None and result.events[1]["best_ask"] == 101.0
    assert result.summary.gaps[0].expected == "u = 12"


def test_an_update_id_of_one_is_a_restart_and_resets_the_book() -> None:
    batch = [book("snapshot", 10, [["100", "1"]], [["101", "1"]]), book("delta", 1, [["90", "1"]], [["91", "1"]]),
             book("delta", 2, [["90.5", "2"]], [])]
    result = Normalizer("bybit").normalize(batch)
    assert result.rejections == []
    assert result.events[1]["is_snapshot"] is True
    assert result.events[1]["bids"] == [{"price": 90.0, "size": 1.0}]
    assert result.events[2]["best_bid"] == 90.5


def test_a_delta_that_crosses_the_book_is_rejected() -> None:
    batch = [book("snapshot", 10, [["100", "1"]], [["101", "1"]]), book("delta", 11, [["102", "1"]], [])]
    result = Normalizer("bybit").normalize(batch)
    assert kinds(result) == {1: "crossed_book"}
    assert result.summary.books[0].state == "awaiting_snapshot"


def test_each_topic_depth_keeps_its_own_book() -> None:
    shallow = {**book("snapshot", 5, [["100", "1"]], [["101", "1"]]), "topic": "orderbook.1.BTCUSDT"}
    result = Normalizer("bybit").normalize([book("snapshot", 10, [["100", "1"]], [["101", "1"]]), shallow,
                                            book("delta", 11, [], [])])
    assert result.rejections == []
    assert {b.channel for b in result.summary.books} == {"orderbook.50", "orderbook.1"}


@pytest.mark.parametrize(("payload", "kind"), [
    ({"topic": "orderbook.BTCUSDT", "type": "snapshot", "ts": TS, "data": {}}, "malformed"),
    ({"topic": "orderbook.50.BTCUSDT", "type": "full", "ts": TS, "data": {}}, "invalid_value"),
    ({"topic": "publicTrade.BTCUSDT", "data": [{"T": TS, "s": "BTCUSDT", "S": "Buy", "v": "1", "p": "0", "i": "x"}]},
     "invalid_value"),
    ({"topic": "publicTrade.BTCUSDT", "data": [{"T": TS, "s": "BTCUSDT", "S": "Buy", "v": "1", "p": "1", "i": 7}]},
     "wrong_type"),
    ({"topic": 3}, "wrong_type"),
])
def test_malformed_bybit_messages_are_rejected_with_a_kind(payload: object, kind: str) -> None:
    assert kinds(Normalizer("bybit").normalize([payload])) == {0: kind}
