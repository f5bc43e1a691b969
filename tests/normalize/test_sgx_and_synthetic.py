"""SGX simplified JSON (sequence per order book across messages) and synthetic events (identity, validated)."""

from __future__ import annotations

from typing import Any

import pytest

from quantdesk.tools.normalize import Normalizer, NormalizeResult

NS = 1_732_550_400_123_456_789


def sgx(kind: str, seq: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"msg_type": kind, "orderbook_id": 7001, "symbol": "BTC-PERP", "timestamp_ns": NS + seq,
                            "seq": seq, "price_decimals": 1, "contract_size": 0.2}
    if kind == "trade":
        base.update(price=951255, qty=3, aggressor="S", match_id=f"M-{seq}")
    else:
        base.update(is_snapshot=False, bids=[], asks=[])
    return base | fields


def levels(*pairs: tuple[int, int]) -> list[dict[str, int]]:
    return [{"price": p, "qty": q, "level": i + 1} for i, (p, q) in enumerate(pairs)]


def kinds(result: NormalizeResult) -> dict[int, str]:
    return {r.index: r.kind for r in result.rejections}


def test_an_sgx_trade_scales_price_decimals_and_contract_size() -> None:
    event = Normalizer("sgx").normalize([sgx("trade", 1)]).events[0]
    assert (event["symbol"], event["price"], event["size"], event["side"]) == ("BTC-USD-PERP", 95125.5, 0.6, "sell")
    assert (event["trade_id"], event["seq_last"], event["timestamp_ms"]) == ("M-1", 1, (NS + 1) // 10**6)


def test_a_null_aggressor_is_unknown_and_a_missing_contract_size_comes_from_the_table() -> None:
    message = sgx("trade", 1, aggressor=None, symbol="ETH-PERP")
    del message["contract_size"]
    event = Normalizer("sgx").normalize([message]).events[0]
    assert (event["side"], event["size"]) == ("unknown", 15.0)


def test_sgx_books_need_a_snapshot_and_follow_the_sequence() -> None:
    batch = [sgx("book", 1, bids=levels((951200, 1))), sgx("book", 2, is_snapshot=True, bids=levels((951200, 5)),
                                                           asks=levels((951300, 4))),
             sgx("book", 3, bids=levels((951200, 0), (951210, 1))), sgx("book", 3), sgx("book", 5)]
    result = Normalizer("sgx").normalize(batch)
    assert kinds(result) == {0: "awaiting_snapshot", 3: "stale"}
    snapshot, delta, gap = result.events
    assert snapshot["bids"] == [{"price": 95120.0, "size": 1.0}]
    assert delta["bids"] == [{"price": 95121.0, "size": 0.2}, {"price": 95120.0, "size": 0.0}]
    assert gap["gap"] is True and result.summary.gaps[0].expected == "seq 4"


def test_a_sequence_jump_on_a_trade_drops_the_book_with_a_marker() -> None:
    batch = [sgx("book", 1, is_snapshot=True, bids=levels((951200, 5)), asks=levels((951300, 4))),
             sgx("trade", 3), sgx("book", 4)]
    result = Normalizer("sgx").normalize(batch)
    assert [(e["event_type"], e.get("gap")) for e in result.events] == [("book", False), ("book", True),
                                                                         ("trade", None)]
    assert kinds(result) == {2: "awaiting_snapshot"}


def test_order_books_are_sequenced_separately() -> None:
    batch = [sgx("trade", 10), sgx("trade", 1, orderbook_id=7002, symbol="ETH-PERP"), sgx("trade", 11)]
    result = Normalizer("sgx").normalize(batch)
    assert result.rejections == [] and result.counts.gaps == 0


@pytest.mark.parametrize(("fields", "kind"), [
    ({"msg_type": "quote"}, "invalid_value"), ({"price_decimals": 30}, "invalid_value"),
    ({"price": "abc"}, "invalid_value"), ({"match_id": ""}, "wrong_type"), ({"symbol": "BTCUSD"}, "unknown_symbol"),
    ({"seq": -1}, "invalid_value"), ({"orderbook_id": [1]}, "wrong_type"),
])
def test_malformed_sgx_messages_are_rejected_with_a_kind(fields: dict[str, Any], kind: str) -> None:
    assert kinds(Normalizer("sgx").normalize([sgx("trade", 1) | fields])) == {0: kind}


SYNTHETIC_TRADE = {"event_type": "trade", "exchange": "synthetic", "symbol": "BTC-USDT", "raw_symbol": None,
                   "timestamp_ms": 1, "capture_time_ms": 2, "side": "buy", "price": 100.0, "size": 1.0,
                   "trade_id": "1", "notional_usd": 100.0, "seq_first": None, "seq_last": None, "seq_prev": None}


def test_synthetic_events_pass_through_unchanged() -> None:
    assert Normalizer("synthetic").normalize([SYNTHETIC_TRADE]).events == [SYNTHETIC_TRADE]


@pytest.mark.parametrize("change", [{"price": "100"}, {"side": "long"}, {"timestamp_ms": True}, {"unexpected": 1},
                                    {"event_type": None}])
def test_synthetic_events_that_do_not_validate_are_rejected(change: dict[str, Any]) -> None:
    result = Normalizer("synthetic").normalize([SYNTHETIC_TRADE | change])
    assert result.events == [] and result.counts.rejected == 1
