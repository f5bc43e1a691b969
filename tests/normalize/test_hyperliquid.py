"""Hyperliquid: aggressor sides, coin symbols, full-snapshot books and bbo."""

from __future__ import annotations

from typing import Any

import pytest

from quantdesk.tools.normalize import Normalizer, NormalizeResult

TIME = 1736682877317


def trades(*items: dict[str, Any]) -> dict[str, Any]:
    return {"channel": "trades", "data": list(items)}


def item(coin: str = "BTC", side: str = "B", tid: Any = 1) -> dict[str, Any]:
    return {"coin": coin, "side": side, "px": "97000.5", "sz": "0.25", "time": TIME, "hash": "0x0", "tid": tid,
            "users": ["0xa", "0xb"]}


def l2(coin: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> dict[str, Any]:
    return {"channel": "l2Book", "data": {"coin": coin, "time": TIME, "levels": [
        [{"px": p, "sz": s, "n": 1} for p, s in bids], [{"px": p, "sz": s, "n": 1} for p, s in asks]]}}


def kinds(result: NormalizeResult) -> dict[int, str]:
    return {r.index: r.kind for r in result.rejections}


def test_b_is_a_buy_and_a_is_a_sell_on_usd_perpetuals() -> None:
    result = Normalizer("hyperliquid").normalize([trades(item(side="B"), item(side="A", tid=2))])
    assert [(e["side"], e["symbol"], e["raw_symbol"]) for e in result.events] == [
        ("buy", "BTC-USD-PERP", "BTC"), ("sell", "BTC-USD-PERP", "BTC")]
    assert result.events[0]["notional_usd"] == pytest.approx(97000.5 * 0.25)


@pytest.mark.parametrize(("coin", "symbol"), [("BTC", "BTC-USD-PERP"), ("kPEPE", "1000PEPE-USD-PERP"),
                                              ("PURR/USDC", "PURR-USDC")])
def test_coins_map_to_canonical_symbols(coin: str, symbol: str) -> None:
    assert Normalizer("hyperliquid").normalize([trades(item(coin=coin))]).events[0]["symbol"] == symbol


@pytest.mark.parametrize("coin", ["@107", "xyz:NVDA", "BTC-USD"])
def test_coins_without_a_canonical_name_are_rejected(coin: str) -> None:
    assert kinds(Normalizer("hyperliquid").normalize([trades(item(coin=coin))])) == {0: "unknown_symbol"}


def test_every_l2_book_message_replaces_the_book() -> None:
    result = Normalizer("hyperliquid").normalize([
        l2("BTC", [("100", "1"), ("99", "2")], [("101", "1")]), l2("BTC", [("98", "5")], [("102", "1")])])
    second = result.events[1]
    assert second["is_snapshot"] and second["bids"] == [{"price": 98.0, "size": 5.0}]
    assert (second["best_bid"], second["best_ask"], second["mid_price"]) == (98.0, 102.0, 100.0)
    assert second["spread_bps"] == pytest.approx(400.0)


def test_a_crossed_l2_book_is_a_data_error() -> None:
    assert kinds(Normalizer("hyperliquid").normalize([l2("BTC", [("102", "1")], [("101", "1")])])) == {
        0: "crossed_book"}


def test_a_bbo_with_an_empty_side_leaves_that_side_empty() -> None:
    bbo = {"channel": "bbo", "data": {"coin": "ETH", "time": TIME, "bbo": [None, {"px": "3000", "sz": "2", "n": 1}]}}
    event = Normalizer("hyperliquid").normalize([bbo]).events[0]
    assert event["bids"] == [] and event["best_bid"] is None and event["mid_price"] is None


def test_string_trade_ids_are_read_as_integers() -> None:
    assert Normalizer("hyperliquid").normalize([trades(item(tid="42"))]).events[0]["trade_id"] == "42"


@pytest.mark.parametrize(("payload", "kind"), [
    ({"channel": "l2Book", "data": {"coin": "BTC", "time": TIME, "levels": [[]]}}, "malformed"),
    ({"channel": "bbo", "data": {"coin": "BTC", "time": TIME, "bbo": [None]}}, "malformed"),
    ({"channel": "trades", "data": [dict(item(), sz="0")]}, "invalid_value"),
    ({"channel": "trades", "data": [dict(item(), time="now")]}, "wrong_type"),
    ({"channel": "candle", "data": {}}, "unsupported_message"),
    ({"data": []}, "malformed"),
])
def test_malformed_hyperliquid_messages_are_rejected_with_a_kind(payload: object, kind: str) -> None:
    assert kinds(Normalizer("hyperliquid").normalize([payload])) == {0: kind}
