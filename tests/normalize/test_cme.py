"""CME simplified MDP 3.0: prices, contract units, level-indexed book operations and RptSeq recovery."""

from __future__ import annotations

from typing import Any

import pytest

from quantdesk.tools.normalize import Normalizer, NormalizeResult

NS = 1_764_075_600_000_000_000  # 2025-11-25 13:00 UTC
BID, ASK = "0", "1"
NEW, CHANGE, DELETE, DELETE_THRU, DELETE_FROM, OVERLAY = range(6)


def px(usd: float) -> int:
    return round(usd * 10**9)


def trade(seq: int, price: float = 95125, contracts: int = 2, side: int = 1, symbol: str = "BTCZ5",
          **extra: Any) -> dict[str, Any]:
    entry = {"md_entry_px": px(price), "px_exponent": -9, "display_factor": 1, "md_entry_size": contracts,
             "aggressor_side": side, "number_of_orders": 1, "rpt_seq": seq, "md_trade_entry_id": 5000 + seq, **extra}
    return {"template": "TradeSummary48", "transact_time_ns": NS + seq, "security_id": 1, "symbol": symbol,
            "entries": [entry]}


def entry(seq: int, action: int, side: str, level: int, price: float | None = None, size: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"md_update_action": action, "md_entry_type": side, "md_price_level": level,
                           "md_entry_size": size, "rpt_seq": seq}
    if price is not None:
        out["md_entry_px"] = px(price)
    return out


def book(*entries: dict[str, Any], symbol: str = "BTCZ5") -> dict[str, Any]:
    return {"template": "Book46", "transact_time_ns": NS + entries[0]["rpt_seq"], "security_id": 1, "symbol": symbol,
            "entries": list(entries)}


def ladder(first_seq: int = 1) -> dict[str, Any]:
    """Bids 100, 99, 98 and asks 101, 102 (sizes 1..3 contracts)."""
    s = first_seq
    return book(entry(s, NEW, BID, 1, 100, 1), entry(s + 1, NEW, BID, 2, 99, 2), entry(s + 2, NEW, BID, 3, 98, 3),
                entry(s + 3, NEW, ASK, 1, 101, 1), entry(s + 4, NEW, ASK, 2, 102, 2))


def sides(event: dict[str, Any]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return ([(lv["price"], lv["size"]) for lv in event["bids"]], [(lv["price"], lv["size"]) for lv in event["asks"]])


def kinds(result: NormalizeResult) -> dict[int, str]:
    return {r.index: r.kind for r in result.rejections}


def test_a_trade_summary_scales_price_and_contracts_to_base_units() -> None:
    event = Normalizer("cme").normalize([trade(881)]).events[0]
    assert (event["symbol"], event["raw_symbol"], event["side"]) == ("BTC-USD-251226", "BTCZ5", "buy")
    assert (event["price"], event["size"], event["notional_usd"]) == (95125.0, 10.0, 951250.0)
    assert (event["timestamp_ms"], event["trade_id"], event["seq_last"]) == (NS // 10**6, "5881", 881)


@pytest.mark.parametrize(("symbol", "canonical", "unit"), [
    ("BTCZ5", "BTC-USD-251226", 5.0), ("MBTZ5", "BTC-USD-251226", 0.1), ("ETHH6", "ETH-USD-260327", 50.0),
    ("METF6", "ETH-USD-260130", 0.1), ("BTCM26", "BTC-USD-260626", 5.0)])
def test_products_map_to_dated_symbols_expiring_the_last_friday(symbol: str, canonical: str, unit: float) -> None:
    event = Normalizer("cme").normalize([trade(1, contracts=1, symbol=symbol)]).events[0]
    assert (event["symbol"], event["size"]) == (canonical, unit)


def test_the_exponent_and_display_factor_scale_the_mantissa() -> None:
    message = trade(1)
    message["entries"][0].update(md_entry_px=9512500, px_exponent=-2, display_factor=0.5)
    assert Normalizer("cme").normalize([message]).events[0]["price"] == 95125 * 0.5


def test_aggressor_zero_is_unknown_and_corrections_are_not_trades() -> None:
    result = Normalizer("cme").normalize([trade(1, side=0), trade(2, md_update_action=1)])
    assert result.events[0]["side"] == "unknown"
    assert result.counts.non_event_by_kind == {"trade_correction": 1}


def test_new_entries_insert_by_level_and_events_carry_price_deltas() -> None:
    result = Normalizer("cme").normalize([ladder(), book(entry(6, NEW, BID, 1, 100.5, 4))])
    first, second = result.events
    assert sides(first) == ([(100, 5), (99, 10), (98, 15)], [(101, 5), (102, 10)])
    assert sides(second) == ([(100.5, 20)], [])
    assert (second["best_bid"], second["best_ask"], second["seq_prev"]) == (100.5, 101, 5)


def test_delete_shifts_levels_up_and_reports_the_removed_price() -> None:
    result = Normalizer("cme").normalize([ladder(), book(entry(6, DELETE, BID, 1, 100))])
    assert sides(result.events[1]) == ([(100, 0)], [])
    assert result.events[1]["best_bid"] == 99


def test_change_overlay_delete_thru_and_delete_from_act_on_levels() -> None:
    batch = [ladder(), book(entry(6, CHANGE, BID, 2, 99, 7)), book(entry(7, OVERLAY, ASK, 1, 101.5, 1)),
             book(entry(8, DELETE_FROM, BID, 2, None, 0)), book(entry(9, DELETE_THRU, ASK, 1, None, 0))]
    result = Normalizer("cme").normalize(batch)
    assert result.rejections == []
    change, overlay, delete_from, delete_thru = result.events[1:]
    assert sides(change) == ([(99, 35)], [])
    assert sides(overlay) == ([], [(101, 0), (101.5, 5)])
    assert sides(delete_from) == ([(100, 0), (99, 0)], [])
    assert sides(delete_thru) == ([], [(101.5, 0), (102, 0)])
    assert (delete_thru["best_bid"], delete_thru["best_ask"]) == (98, None)


def test_a_new_level_beyond_the_depth_pushes_the_worst_level_out() -> None:
    entries = [entry(i + 1, NEW, BID, i + 1, 100 - i) for i in range(10)]
    result = Normalizer("cme").normalize([book(*entries), book(entry(11, NEW, BID, 1, 100.5))])
    assert sides(result.events[1]) == ([(100.5, 5), (91, 0)], [])


def test_repeated_rpt_seq_from_the_other_feed_is_stale() -> None:
    result = Normalizer("cme").normalize([ladder(), ladder()])
    assert kinds(result) == {1: "stale"}


def test_an_rpt_seq_gap_drops_the_book_until_a_snapshot() -> None:
    snapshot = {"template": "SnapshotFullRefresh52", "transact_time_ns": NS + 50, "security_id": 1,
                "symbol": "BTCZ5", "rpt_seq": 50, "entries": [
                    {"md_entry_type": BID, "md_price_level": 1, "md_entry_px": px(100), "md_entry_size": 1},
                    {"md_entry_type": ASK, "md_price_level": 1, "md_entry_px": px(101), "md_entry_size": 1}]}
    batch = [ladder(), book(entry(9, NEW, BID, 1, 100.5)), book(entry(10, NEW, BID, 1, 100.6)), snapshot,
             book(entry(51, CHANGE, BID, 1, 100, 2))]
    result = Normalizer("cme").normalize(batch)
    assert kinds(result) == {2: "awaiting_snapshot"}
    gap = result.events[1]
    assert gap["gap"] is True and gap["depth"] == 0
    assert result.summary.gaps[0].expected == "RptSeq 6"
    assert sides(result.events[-1]) == ([(100, 10)], [])
    assert result.summary.books[0].state == "synced"


def test_a_gap_seen_on_a_trade_also_drops_the_book() -> None:
    result = Normalizer("cme").normalize([ladder(), trade(9), book(entry(10, NEW, BID, 1, 100.5))])
    assert [e["event_type"] for e in result.events] == ["book", "book", "trade"]
    assert result.events[1]["gap"] is True
    assert kinds(result) == {2: "awaiting_snapshot"}


def test_an_impossible_level_operation_is_reported_and_drops_the_book() -> None:
    result = Normalizer("cme").normalize([ladder(), book(entry(6, CHANGE, ASK, 5, 110))])
    assert kinds(result) == {1: "invalid_book_operation"}
    assert result.summary.books[0].state == "awaiting_snapshot"


def test_a_change_at_a_level_holding_another_price_is_an_impossible_operation() -> None:
    result = Normalizer("cme").normalize([ladder(), book(entry(6, CHANGE, BID, 1, 99.5))])
    assert kinds(result) == {1: "invalid_book_operation"}


def test_implied_entries_are_skipped_and_a_book_reset_clears_the_book() -> None:
    implied = {"md_update_action": NEW, "md_entry_type": "E", "md_price_level": 1, "md_entry_px": px(100.2),
               "md_entry_size": 1, "rpt_seq": 6}
    reset = {"md_update_action": NEW, "md_entry_type": "J", "rpt_seq": 7}
    result = Normalizer("cme").normalize([ladder(), book(implied), book(reset)])
    assert result.counts.non_event_by_kind == {"empty": 1}
    cleared = result.events[-1]
    assert (cleared["best_bid"], cleared["best_ask"]) == (None, None)


def test_a_level_operation_that_crosses_the_book_is_a_data_error() -> None:
    result = Normalizer("cme").normalize([ladder(), book(entry(6, NEW, BID, 1, 101.5))])
    assert kinds(result) == {1: "crossed_book"}


@pytest.mark.parametrize(("payload", "kind"), [
    ({"template": "Book46", "transact_time_ns": NS, "symbol": "BTCZ5", "entries": [
        {"md_update_action": 9, "md_entry_type": "0", "md_price_level": 1, "rpt_seq": 1}]}, "invalid_value"),
    ({"template": "Book46", "transact_time_ns": NS, "symbol": "BTCZ5", "entries": [
        {"md_update_action": 0, "md_entry_type": "0", "md_price_level": 11, "md_entry_px": 1, "md_entry_size": 1,
         "rpt_seq": 1}]}, "invalid_value"),
    ({"template": "TradeSummary48", "transact_time_ns": "now", "symbol": "BTCZ5", "entries": []}, "wrong_type"),
    ({"template": "TradeSummary48", "transact_time_ns": NS, "symbol": "BTC", "entries": []}, "unknown_symbol"),
    ({"template": "TradeSummary48", "transact_time_ns": NS, "entries": []}, "malformed"),
    ({"template": "TradeSummary48", "transact_time_ns": 2**63 - 1, "symbol": "BTCZ5", "entries": []}, "invalid_value"),
])
def test_malformed_cme_messages_are_rejected_with_a_kind(payload: object, kind: str) -> None:
    assert kinds(Normalizer("cme").normalize([payload])) == {0: kind}


def test_a_default_symbol_fills_in_for_messages_without_one() -> None:
    message = trade(1)
    del message["symbol"]
    assert Normalizer("cme", "MBTZ5").normalize([message]).events[0]["raw_symbol"] == "MBTZ5"
