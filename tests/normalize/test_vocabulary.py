"""One word for a repeated or older message on every venue, and checksum breaks reported as gaps."""

from __future__ import annotations

import zlib
from typing import Any, get_args

import pytest

from quantdesk.tools.normalize import Normalizer
from quantdesk.tools.normalize.outcomes import RejectKind

T0 = 1_700_000_000_000


def okx_book(action: str, bids: list[list[str]], seq: int, prev: int, checksum: int | None) -> dict[str, Any]:
    data: dict[str, Any] = {"asks": [["101", "1", "0", "1"]] if action == "snapshot" else [], "bids": bids,
                            "ts": str(T0 + seq), "prevSeqId": prev, "seqId": seq}
    if checksum is not None:
        data["checksum"] = checksum
    return {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [data]}


def signed_crc(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


BINANCE_SNAPSHOT = {"lastUpdateId": 100, "bids": [["99", "1"]], "asks": [["101", "1"]]}
BINANCE_DIFF = {"e": "depthUpdate", "E": T0, "s": "BTCUSDT", "U": 101, "u": 102, "b": [["99", "2"]], "a": []}
BINANCE_TRADE = {"e": "trade", "E": T0, "s": "BTCUSDT", "t": 7, "p": "100", "q": "1", "T": T0, "m": True, "M": True}
BYBIT_SNAPSHOT = {"topic": "orderbook.50.BTCUSDT", "type": "snapshot", "ts": T0,
                  "data": {"s": "BTCUSDT", "b": [["99", "1"]], "a": [["101", "1"]], "u": 10, "seq": 1}}
BYBIT_DELTA = {"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": T0 + 1,
               "data": {"s": "BTCUSDT", "b": [["99", "2"]], "a": [], "u": 11, "seq": 2}}
OKX_SNAPSHOT = okx_book("snapshot", [["99", "1", "0", "1"]], 10, -1, None)
OKX_UPDATE = okx_book("update", [["99", "2", "0", "1"]], 11, 10, None)
CME_BOOK = {"template": "Book46", "transact_time_ns": T0 * 10**6, "security_id": 1, "symbol": "BTCZ5",
            "entries": [{"md_update_action": 0, "md_entry_type": "0", "md_price_level": 1,
                         "md_entry_px": 9512000000000000, "md_entry_size": 1, "rpt_seq": 5}]}
SGX_BOOK = {"msg_type": "book", "orderbook_id": 7001, "symbol": "BTC-PERP", "timestamp_ns": T0 * 10**6, "seq": 43,
            "price_decimals": 0, "contract_size": 0.2, "is_snapshot": True,
            "bids": [{"price": 95120, "qty": 5, "level": 1}], "asks": [{"price": 95130, "qty": 4, "level": 1}]}

REPEATS = {
    "binance diff": ("binance", {"market": "spot", "symbol": "BTCUSDT"},
                     [BINANCE_SNAPSHOT, BINANCE_DIFF, BINANCE_DIFF]),
    "binance trade": ("binance", {"market": "spot"}, [BINANCE_TRADE, BINANCE_TRADE]),
    "bybit delta": ("bybit", {}, [BYBIT_SNAPSHOT, BYBIT_DELTA, BYBIT_DELTA]),
    "okx update": ("okx", {}, [OKX_SNAPSHOT, OKX_UPDATE, OKX_UPDATE]),
    "cme entry": ("cme", {}, [CME_BOOK, CME_BOOK]),
    "sgx book": ("sgx", {}, [SGX_BOOK, SGX_BOOK]),
}


@pytest.mark.parametrize("case", REPEATS)
def test_a_repeated_message_is_stale_on_every_venue(case: str) -> None:
    source, options, messages = REPEATS[case]
    result = Normalizer(source, **options).normalize(messages)
    assert [(r.index, r.kind) for r in result.rejections] == [(len(messages) - 1, "stale")]


def test_the_vocabulary_has_no_second_word_for_a_repeat() -> None:
    assert "duplicate" not in get_args(RejectKind) and "stale" in get_args(RejectKind)


def test_an_okx_checksum_mismatch_counts_as_a_gap_like_a_sequence_break() -> None:
    snapshot = okx_book("snapshot", [["99", "1", "0", "1"]], 10, -1, signed_crc("99:1:101:1"))
    wrong = okx_book("update", [["99", "2", "0", "1"]], 11, 10, 42)
    result = Normalizer("okx").normalize([snapshot, wrong])
    assert result.rejections == []
    assert [e["gap"] for e in result.events] == [False, True]
    expected = f"checksum = {signed_crc('99:2:101:1')}"
    assert [(g.cause, g.expected) for g in result.summary.gaps] == [("checksum", expected)]
    assert result.counts.gaps == 1 and result.summary.books[0].state == "awaiting_snapshot"
