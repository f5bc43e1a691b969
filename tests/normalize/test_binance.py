"""Binance spot and USD-M: market detection, trade mapping, book sync per the documented procedure."""

from __future__ import annotations

from typing import Any

import pytest

from quantdesk.tools.normalize import Normalizer, NormalizeResult

T0 = 1_700_000_000_000


def spot_trade(trade_id: int, *, symbol: str = "BTCUSDT", maker: bool = False, time_ms: int = T0) -> dict[str, Any]:
    return {"e": "trade", "E": time_ms + 1, "s": symbol, "t": trade_id, "p": "43000.10", "q": "0.5", "T": time_ms,
            "m": maker, "M": True}


def spot_diff(first: int, last: int, bids: list[list[str]] | None = None,
              asks: list[list[str]] | None = None) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": T0 + last, "s": "BTCUSDT", "U": first, "u": last, "b": bids or [],
            "a": asks or []}


def futures_diff(first: int, last: int, prev: int, bids: list[list[str]] | None = None) -> dict[str, Any]:
    return {**spot_diff(first, last, bids), "pu": prev, "T": T0}


def snapshot(last_update_id: int, **extra: Any) -> dict[str, Any]:
    return {"lastUpdateId": last_update_id, "bids": [["42999.0", "1"], ["42998.0", "2"]],
            "asks": [["43001.0", "1"], ["43002.0", "2"]], **extra}


def kinds(result: NormalizeResult) -> dict[int, str]:
    return {r.index: r.kind for r in result.rejections}


def test_a_spot_trade_maps_maker_flag_to_the_aggressor_side_and_symbol() -> None:
    result = Normalizer("binance").normalize([spot_trade(1, maker=True), spot_trade(2, maker=False)])
    first, second = result.events
    assert (first["side"], second["side"]) == ("sell", "buy")
    assert first["exchange"] == "binance" and first["symbol"] == "BTC-USDT" and first["raw_symbol"] == "BTCUSDT"
    assert first["timestamp_ms"] == T0 and first["trade_id"] == "1"
    assert first["price"] == 43000.10 and first["size"] == 0.5 and first["notional_usd"] == 43000.10 * 0.5


def test_usdm_trades_are_told_apart_by_their_shape() -> None:
    futures_trade = {"e": "trade", "E": T0, "T": T0, "s": "BTCUSDT", "t": 7, "p": "1", "q": "1", "X": "MARKET",
                     "m": False}
    futures_agg = {"e": "aggTrade", "E": T0, "s": "ETHUSDT", "a": 3, "p": "1", "q": "1", "f": 1, "l": 2, "T": T0,
                   "m": True}
    result = Normalizer("binance").normalize([futures_trade, futures_agg, spot_trade(7)])
    assert [(e["exchange"], e["symbol"]) for e in result.events] == [
        ("binance_futures", "BTC-USDT-PERP"), ("binance_futures", "ETH-USDT-PERP"), ("binance", "BTC-USDT")]
    assert (result.events[1]["seq_first"], result.events[1]["seq_last"]) == (1, 2)


def test_a_trade_with_no_market_hint_is_rejected_unless_a_market_is_given() -> None:
    bare = {"e": "trade", "E": T0, "T": T0, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "m": False}
    assert kinds(Normalizer("binance").normalize([bare])) == {0: "ambiguous_market"}
    assert Normalizer("binance", market="usdm").normalize([bare]).events[0]["symbol"] == "BTC-USDT-PERP"
    assert Normalizer("binance", "BTC-USDT").normalize([bare]).events[0]["symbol"] == "BTC-USDT"


def test_the_market_option_overrides_the_message_shape() -> None:
    result = Normalizer("binance", market="usdm").normalize([spot_trade(1)])
    assert result.events[0]["exchange"] == "binance_futures"


def test_an_unknown_market_is_refused_when_the_normalizer_is_made() -> None:
    with pytest.raises(ValueError):
        Normalizer("binance", market="inverse")


def test_dated_usdm_symbols_map_to_dated_canonical_symbols() -> None:
    trade = {"e": "trade", "E": T0, "T": T0, "s": "BTCUSDT_250627", "t": 1, "p": "1", "q": "1", "X": "MARKET",
             "m": False}
    assert Normalizer("binance").normalize([trade]).events[0]["symbol"] == "BTC-USDT-250627"


def test_trade_ids_at_or_below_the_last_one_are_reported_per_symbol() -> None:
    batch = [spot_trade(10), spot_trade(10), spot_trade(9), spot_trade(5, symbol="ETHUSDT"), spot_trade(11)]
    result = Normalizer("binance").normalize(batch)
    assert kinds(result) == {1: "stale", 2: "stale"}
    assert [e["trade_id"] for e in result.events] == ["10", "5", "11"]


def test_microsecond_timestamps_are_read_as_milliseconds() -> None:
    trade = spot_trade(1, time_ms=T0 * 1000)
    assert Normalizer("binance").normalize([trade]).events[0]["timestamp_ms"] == T0


def test_diffs_before_the_snapshot_are_held_and_replayed_by_the_documented_rule() -> None:
    batch = [spot_diff(90, 99), spot_diff(100, 104, [["42999.0", "5"]]), spot_diff(105, 106, [], [["43001.0", "0"]]),
             snapshot(101)]
    result = Normalizer("binance", "BTCUSDT").normalize(batch)
    assert kinds(result) == {0: "stale"}
    assert result.event_index == [3, 1, 2]  # the snapshot first, then the replayed diffs
    last = result.events[-1]
    assert (last["best_bid"], last["best_ask"], last["seq_last"]) == (42999.0, 43002.0, 106)
    assert result.counts.pending == 0


def test_a_first_diff_that_does_not_reach_the_snapshot_is_a_gap() -> None:
    result = Normalizer("binance", "BTCUSDT").normalize([snapshot(100), spot_diff(105, 110)])
    gap = result.events[1]
    assert gap["gap"] is True and gap["best_bid"] is None
    assert result.summary.books[0].state == "awaiting_snapshot"
    assert result.summary.gaps[0].expected == "U <= 101"


def test_after_a_gap_diffs_wait_for_the_next_snapshot() -> None:
    batch = [snapshot(100), spot_diff(101, 102), spot_diff(110, 111), spot_diff(112, 113, [["42990.0", "1"]]),
             snapshot(112), spot_diff(114, 115)]
    result = Normalizer("binance", "BTCUSDT").normalize(batch)
    assert [e["gap"] for e in result.events] == [False, False, True, False, False, False]
    assert result.event_index == [0, 1, 2, 4, 3, 5]
    assert result.summary.books[0].state == "synced"
    assert result.counts.gaps == 1 and result.counts.gap_events == 1


def test_diffs_that_never_get_a_snapshot_are_rejected_at_the_end_of_the_batch() -> None:
    result = Normalizer("binance", "BTCUSDT").normalize([spot_diff(1, 2), spot_diff(3, 4)])
    assert kinds(result) == {0: "awaiting_snapshot", 1: "awaiting_snapshot"}
    assert result.counts.rejected == 2 and result.counts.pending == 0


def test_held_diffs_are_bounded_per_book() -> None:
    result = Normalizer("binance", "BTCUSDT", max_pending=2).normalize(
        [spot_diff(1, 2), spot_diff(3, 4), spot_diff(5, 6), snapshot(4)])
    assert kinds(result)[0] == "awaiting_snapshot"
    assert result.event_index == [3, 2]
    assert kinds(result)[1] == "stale"


def test_usdm_diffs_follow_the_previous_final_update_id() -> None:
    batch = [snapshot(100, E=T0, T=T0), futures_diff(95, 105, 90), futures_diff(106, 110, 105),
             futures_diff(111, 115, 109), futures_diff(116, 120, 115)]
    result = Normalizer("binance", "BTCUSDT").normalize(batch)
    assert [e["gap"] for e in result.events] == [False, False, False, True]
    assert result.events[0]["exchange"] == "binance_futures"
    assert result.summary.gaps[0].expected == "pu = 110"
    assert kinds(result) == {4: "awaiting_snapshot"}


def test_a_usdm_first_diff_may_end_exactly_at_the_snapshot_id() -> None:
    result = Normalizer("binance", "BTCUSDT").normalize([snapshot(100, E=T0, T=T0), futures_diff(98, 100, 97)])
    assert result.event_index == [0, 1]


def test_a_diff_that_crosses_the_book_is_a_data_error_and_the_book_resyncs() -> None:
    batch = [snapshot(100), spot_diff(101, 101, [["43005.0", "1"]]), spot_diff(102, 102), snapshot(102)]
    result = Normalizer("binance", "BTCUSDT").normalize(batch)
    assert kinds(result) == {1: "crossed_book", 2: "stale"}
    assert result.summary.books[0].state == "synced"


def test_a_snapshot_older_than_the_book_is_stale() -> None:
    result = Normalizer("binance", "BTCUSDT").normalize([snapshot(100), spot_diff(101, 110), snapshot(105)])
    assert kinds(result) == {2: "stale"}


def test_a_snapshot_without_any_symbol_is_rejected() -> None:
    assert kinds(Normalizer("binance").normalize([snapshot(1)])) == {0: "malformed"}


def test_partial_depth_from_a_combined_stream_is_a_snapshot_named_by_the_stream() -> None:
    wrapped = {"stream": "bnbbtc@depth10@100ms", "data": snapshot(160)}
    event = Normalizer("binance").normalize([wrapped]).events[0]
    assert (event["symbol"], event["is_snapshot"], event["depth"]) == ("BNB-BTC", True, 4)


def test_usdm_partial_depth_arrives_as_depth_update_and_replaces_the_book() -> None:
    first = {"stream": "btcusdt@depth5", "data": futures_diff(1, 10, 0, [["42999.0", "1"]])}
    second = {"stream": "btcusdt@depth5", "data": futures_diff(11, 20, 10, [["42990.0", "3"]])}
    result = Normalizer("binance").normalize([first, second])
    assert all(e["is_snapshot"] for e in result.events)
    assert result.events[1]["bids"] == [{"price": 42990.0, "size": 3.0}]


def test_spot_book_ticker_uses_the_capture_time_and_futures_its_match_time() -> None:
    spot = {"u": 5, "s": "BTCUSDT", "b": "1.0", "B": "2", "a": "1.5", "A": "3"}
    futures = {"e": "bookTicker", "u": 6, "E": T0, "T": T0 - 1, "s": "BTCUSDT", "b": "1.0", "B": "2", "a": "1.5",
               "A": "3"}
    result = Normalizer("binance").normalize([{"payload": spot, "capture_time_ms": T0 + 9}, futures])
    assert (result.events[0]["timestamp_ms"], result.events[0]["capture_time_ms"]) == (T0 + 9, T0 + 9)
    assert (result.events[1]["exchange"], result.events[1]["timestamp_ms"]) == ("binance_futures", T0 - 1)


def test_a_clock_stamps_capture_time_when_no_envelope_gives_one() -> None:
    result = Normalizer("binance", clock=lambda: T0 + 42).normalize([spot_trade(1)])
    assert (result.events[0]["timestamp_ms"], result.events[0]["capture_time_ms"]) == (T0, T0 + 42)


def test_mark_price_updates_are_counted_with_their_fields_not_dropped() -> None:
    mark = {"e": "markPriceUpdate", "E": T0, "s": "BTCUSDT", "p": "43000.5", "i": "42990.1", "P": "43001",
            "r": "0.0001", "T": T0 + 3_600_000}
    result = Normalizer("binance").normalize([mark, {"stream": "!markPrice@arr", "data": [mark, mark]}])
    assert result.counts.non_event_by_kind == {"mark_price": 2}
    detail = result.non_events[0].detail
    assert detail is not None
    assert (detail["symbol"], detail["mark_price"], detail["funding_rate"]) == ("BTC-USDT-PERP", 43000.5, 0.0001)
    assert len((result.non_events[1].detail or {})["items"]) == 2


def test_off_book_usdm_trades_are_counted_not_emitted() -> None:
    adl = {"e": "trade", "E": T0, "T": T0, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "X": "ADL", "m": False}
    result = Normalizer("binance").normalize([adl])
    assert result.events == [] and result.counts.non_event_by_kind == {"off_book_trade": 1}


def test_mixed_symbols_keep_separate_books_and_trade_sequences() -> None:
    eth = {**snapshot(50), "bids": [["2000", "1"]], "asks": [["2001", "1"]]}
    batch = [{"stream": "btcusdt@depth", "data": snapshot(100)}, {"stream": "ethusdt@depth", "data": eth},
             spot_diff(101, 102), {**spot_diff(51, 52, [["2000.5", "1"]]), "s": "ETHUSDT"},
             spot_trade(5), spot_trade(5, symbol="ETHUSDT")]
    result = Normalizer("binance").normalize(batch)
    assert result.rejections == []
    assert {(b.symbol, b.state) for b in result.summary.books} == {("BTC-USDT", "synced"), ("ETH-USDT", "synced")}


def test_non_usd_quotes_have_no_usd_notional_unless_a_rate_is_given() -> None:
    trade = {"e": "trade", "E": T0, "s": "ETHBTC", "t": 1, "p": "0.05", "q": "2", "T": T0, "m": True, "M": True}
    assert Normalizer("binance").normalize([trade]).events[0]["notional_usd"] is None
    rated = Normalizer("binance", quote_usd={"BTC": 40000.0}).normalize([trade]).events[0]
    assert rated["notional_usd"] == pytest.approx(0.05 * 2 * 40000.0)


@pytest.mark.parametrize(("payload", "kind"), [
    ({"e": 5}, "wrong_type"),
    ({"e": "trade", "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": "soon", "m": True, "M": True}, "wrong_type"),
    ({"e": "trade", "s": "BTCUSDT", "t": 1, "p": "nan", "q": "1", "T": T0, "m": True, "M": True}, "invalid_value"),
    ({"e": "trade", "s": "BTCUSDT", "t": -1, "p": "1", "q": "1", "T": T0, "m": True, "M": True}, "invalid_value"),
    ({"e": "trade", "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 0, "m": True, "M": True}, "invalid_value"),
    ({"e": "depthUpdate", "s": "BTCUSDT", "U": 5, "u": 4, "b": [], "a": []}, "invalid_value"),
    ({"e": "depthUpdate", "s": "BTCUSDT", "U": 1, "u": 4, "b": [["1"]], "a": []}, "wrong_type"),
    ({"e": "depthUpdate", "s": "BTCUSDT", "U": 1, "u": 4, "b": {"1": "2"}, "a": []}, "wrong_type"),
    ({"stream": 5, "data": {}}, "wrong_type"),
    ({"foo": "bar"}, "unsupported_message"),
    (None, "malformed"),
    (b"{", "malformed_json"),
])
def test_malformed_payloads_are_rejected_with_a_kind(payload: object, kind: str) -> None:
    assert kinds(Normalizer("binance").normalize([payload])) == {0: kind}
