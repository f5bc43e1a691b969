"""OKX: contract sizes, seqId continuity and the documented CRC32 checksum."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import pytest

from quantdesk.tools.normalize import Normalizer, NormalizeResult
from quantdesk.tools.normalize.checksum import okx_checksum_of

TS = "1597026383085"


def signed_crc(text: str) -> int:
    """The checksum computed here from its definition, independently of the module under test."""
    crc = zlib.crc32(text.encode())
    return crc - 2**32 if crc >= 2**31 else crc


def book(action: str, bids: list[list[str]], asks: list[list[str]], seq: int, prev: int, checksum: int | None,
         inst: str = "BTC-USDT") -> dict[str, Any]:
    data: dict[str, Any] = {"asks": asks, "bids": bids, "ts": TS, "prevSeqId": prev, "seqId": seq}
    if checksum is not None:
        data["checksum"] = checksum
    return {"arg": {"channel": "books", "instId": inst}, "action": action, "data": [data]}


def trade(inst: str, px: str, sz: str, side: str = "buy", trade_id: str = "1") -> dict[str, Any]:
    return {"arg": {"channel": "trades", "instId": inst},
            "data": [{"instId": inst, "tradeId": trade_id, "px": px, "sz": sz, "side": side, "ts": TS}]}


def kinds(result: NormalizeResult) -> dict[int, str]:
    return {r.index: r.kind for r in result.rejections}


def test_the_checksum_matches_the_documented_examples() -> None:
    # OKX docs: bids 3366.1/7, 3366/6 and asks 3366.8/9, 3368/8 give -1881014294; one bid and three asks 831078360.
    assert okx_checksum_of([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")]) == -1881014294
    assert okx_checksum_of([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]) == 831078360


def test_the_checksum_covers_only_the_best_25_levels() -> None:
    bids = [(f"{100 - i}", "1") for i in range(30)]
    asks = [(f"{200 + i}", "2") for i in range(30)]
    text = ":".join(f"{b[0]}:{b[1]}:{a[0]}:{a[1]}" for b, a in zip(bids[:25], asks[:25], strict=True))
    assert okx_checksum_of(bids, asks) == signed_crc(text)


def test_a_book_is_verified_against_its_checksum_after_every_update() -> None:
    bids, asks = [["8476.97", "256", "0", "12"], ["8475.55", "101", "0", "1"]], [["8476.98", "415", "0", "13"]]
    snap = book("snapshot", bids, asks, 10, -1, signed_crc("8476.97:256:8476.98:415:8475.55:101"))
    update = book("update", [["8475.55", "0", "0", "0"]], [["8477.5", "3", "0", "1"]], 11, 10,
                  signed_crc("8476.97:256:8476.98:415:8477.5:3"))
    result = Normalizer("okx").normalize([snap, update])
    assert result.rejections == []
    assert result.counts.checksums_verified == 2
    assert result.events[1]["bids"] == [{"price": 8475.55, "size": 0.0}]
    assert result.events[1]["checksum"] == update["data"][0]["checksum"]


def test_a_checksum_mismatch_is_a_gap_and_the_book_waits_for_a_snapshot() -> None:
    snap = book("snapshot", [["100", "1", "0", "1"]], [["101", "1", "0", "1"]], 10, -1, signed_crc("100:1:101:1"))
    wrong = book("update", [["100", "2", "0", "1"]], [], 11, 10, 12345)
    after = book("update", [["100", "3", "0", "1"]], [], 12, 11, signed_crc("100:3:101:1"))
    result = Normalizer("okx").normalize([snap, wrong, after, snap])
    assert kinds(result) == {2: "awaiting_snapshot"}
    gap_events = [(i, e) for i, e in zip(result.event_index, result.events, strict=True) if e["gap"]]
    assert [(i, e["checksum"], e["bids"]) for i, e in gap_events] == [(1, 12345, [{"price": 100.0, "size": 2.0}])]
    assert result.counts.gaps == 1 and result.counts.gap_events == 1
    report = result.summary.gaps[0]
    assert (report.index, report.cause, report.received) == (1, "checksum", "checksum = 12345")
    assert result.summary.books[0].state == "synced"
    assert result.summary.books[0].snapshots == 2 and result.summary.books[0].gaps == 1


def test_a_zero_checksum_is_skipped_as_deprecated_not_verified() -> None:
    snap = book("snapshot", [["100", "1", "0", "1"]], [["101", "1", "0", "1"]], 10, -1, 0)
    result = Normalizer("okx").normalize([snap])
    assert result.rejections == [] and result.counts.checksums_skipped == 1


def test_a_broken_sequence_is_a_gap_and_older_sequence_ids_are_stale() -> None:
    snap = book("snapshot", [["100", "1", "0", "1"]], [["101", "1", "0", "1"]], 10, -1, None)
    batch = [snap, book("update", [], [], 11, 10, None), book("update", [], [], 9, 8, None),
             book("update", [["99", "1", "0", "1"]], [], 20, 15, None), book("update", [], [], 21, 20, None)]
    result = Normalizer("okx").normalize(batch)
    assert kinds(result) == {2: "stale", 4: "awaiting_snapshot"}
    assert [e["gap"] for e in result.events] == [False, False, True]
    assert result.summary.gaps[0].expected == "prevSeqId = 11"


def test_swap_sizes_are_contracts_times_the_contract_value() -> None:
    event = Normalizer("okx").normalize([trade("BTC-USDT-SWAP", "42000", "12")]).events[0]
    assert (event["symbol"], event["size"], event["notional_usd"]) == ("BTC-USDT-PERP", 0.12, 42000 * 0.12)


def test_coin_margined_sizes_are_usd_contracts_divided_by_price() -> None:
    event = Normalizer("okx").normalize([trade("BTC-USD-SWAP", "40000", "2", side="sell")]).events[0]
    assert (event["symbol"], event["side"]) == ("BTC-USD-PERP", "sell")
    assert event["size"] == pytest.approx(200 / 40000)
    assert event["notional_usd"] == pytest.approx(200.0)


def test_spot_sizes_are_base_units_and_dated_futures_keep_their_date() -> None:
    result = Normalizer("okx").normalize([trade("BTC-USDT", "42000", "0.5"), trade("BTC-USDT-250627", "42000", "3")])
    assert [(e["symbol"], e["size"]) for e in result.events] == [("BTC-USDT", 0.5), ("BTC-USDT-250627", 0.03)]


def test_an_unknown_contract_value_is_reported_and_can_be_supplied() -> None:
    message = trade("DOGE-USDT-SWAP", "0.1", "5")
    assert kinds(Normalizer("okx").normalize([message])) == {0: "unknown_instrument"}
    event = Normalizer("okx", contract_sizes={"DOGE-USDT-SWAP": 1000}).normalize([message]).events[0]
    assert event["size"] == 5000.0


def test_book_levels_of_swaps_are_converted_to_base_units() -> None:
    snap = book("snapshot", [["42000", "10", "0", "1"]], [["42001", "5", "0", "1"]], 1, -1, None, "BTC-USDT-SWAP")
    event = Normalizer("okx").normalize([snap]).events[0]
    assert event["bids"] == [{"price": 42000.0, "size": 0.1}] and event["asks"] == [{"price": 42001.0, "size": 0.05}]


def test_books5_and_bbo_are_snapshots_of_their_own_books() -> None:
    five = {"arg": {"channel": "books5", "instId": "BTC-USDT"}, "data": [
        {"asks": [["101", "1", "0", "1"]], "bids": [["100", "1", "0", "1"]], "instId": "BTC-USDT", "ts": TS,
         "seqId": 3}]}
    bbo = {"arg": {"channel": "bbo-tbt", "instId": "BTC-USDT"}, "data": [
        {"asks": [["100.5", "1", "0", "1"]], "bids": [["100.4", "1", "0", "1"]], "ts": TS, "seqId": 4}]}
    result = Normalizer("okx").normalize([five, bbo])
    assert all(e["is_snapshot"] for e in result.events)
    assert {b.channel for b in result.summary.books} == {"books5", "bbo-tbt"}


def test_several_trades_in_one_message_are_all_emitted_and_all_or_nothing() -> None:
    good: dict[str, Any] = {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [
        {"instId": "BTC-USDT", "tradeId": str(i), "px": "1", "sz": "1", "side": "buy", "ts": TS} for i in range(3)]}
    bad = {**good, "data": good["data"] + [{"instId": "BTC-USDT", "tradeId": "9", "px": "x", "sz": "1",
                                            "side": "buy", "ts": TS}]}
    result = Normalizer("okx").normalize([good, bad])
    assert result.event_index == [0, 0, 0]
    assert kinds(result) == {1: "invalid_value"}


@pytest.mark.parametrize(("payload", "kind"), [
    ({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "merge", "data": [{}]}, "invalid_value"),
    ({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot", "data": [{}, {}]}, "malformed"),
    ({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot",
      "data": [{"asks": [[101, 1]], "bids": [], "ts": TS}]}, "wrong_type"),
    ({"arg": "books", "data": []}, "malformed"),
    ({"arg": {"channel": "trades"}, "data": [{"tradeId": "1"}]}, "malformed"),
    ({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": {"tradeId": "1"}}, "wrong_type"),
])
def test_malformed_okx_messages_are_rejected_with_a_kind(payload: object, kind: str) -> None:
    assert kinds(Normalizer("okx").normalize([payload])) == {0: kind}


def test_contract_sizes_make_unknown_swaps_and_futures_normalizable(
        fixture_rows: Callable[[str], list[dict[str, Any]]]) -> None:
    payloads = [row["payload"] for row in fixture_rows("okx_swaps")]
    sizes = {"DOGE-USDT-SWAP": 1000.0, "SOL-USD-230929": 10.0}
    result = Normalizer("okx", contract_sizes=sizes).normalize(payloads)
    assert result.rejections == []
    doge = [e for e in result.events if e["raw_symbol"] == "DOGE-USDT-SWAP"]
    assert doge[0]["size"] == 12_000.0 and doge[1]["bids"][0] == {"price": 0.06712, "size": 980_000.0}
    dated = next(e for e in result.events if e["raw_symbol"] == "SOL-USD-230929")
    assert dated["symbol"] == "SOL-USD-230929" and dated["size"] == pytest.approx(3 * 10 / 24.31), "USD contracts"
