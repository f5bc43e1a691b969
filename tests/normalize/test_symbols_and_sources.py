"""Canonical symbols, the source registry and the streaming interface."""

from __future__ import annotations

import datetime as dt

import pytest

from quantdesk.tools.normalize import (
    SOURCES,
    Emitted,
    Normalizer,
    Rejection,
    Summary,
    UnknownSourceError,
    accepted_messages,
)
from quantdesk.tools.normalize.outcomes import MessageError
from quantdesk.tools.normalize.symbols import (
    BinanceMarket,
    binance_symbol,
    binance_symbol_market,
    bybit_symbol,
    cme_contract,
    last_friday,
    okx_instrument,
    sgx_symbol,
)


@pytest.mark.parametrize(("raw", "market", "symbol"), [
    ("BTCUSDT", "spot", "BTC-USDT"), ("BTCUSDT", "usdm", "BTC-USDT-PERP"), ("ETHBTC", "spot", "ETH-BTC"),
    ("1000PEPEUSDT", "usdm", "1000PEPE-USDT-PERP"), ("USDCUSDT", "spot", "USDC-USDT"),
    ("BNBFDUSD", "spot", "BNB-FDUSD"),
    ("BTCUSDT_251226", "usdm", "BTC-USDT-251226"), ("BTCUSD_PERP", "coinm", "BTC-USD-PERP"),
    ("ETHUSD_210924", "coinm", "ETH-USD-210924")])
def test_binance_symbols(raw: str, market: BinanceMarket, symbol: str) -> None:
    assert binance_symbol(raw, market) == symbol


@pytest.mark.parametrize(("raw", "market"), [("BTCUSD_PERP", "usdm"), ("ETHUSD_210924", "usdm"),
                                             ("BTCUSDT_251226", "spot"), ("BTCUSDT_PERP", "coinm"),
                                             ("BTCUSDT", "coinm"), ("btcusdt", "spot"), ("USDT", "spot"),
                                             ("BTC-USDT", "spot")])
def test_binance_symbols_that_cannot_be_mapped_are_refused(raw: str, market: BinanceMarket) -> None:
    with pytest.raises(MessageError):
        binance_symbol(raw, market)


@pytest.mark.parametrize(("raw", "market"), [("BTCUSD_PERP", "coinm"), ("ETHUSD_210924", "coinm"),
                                             ("BTCUSDT_250627", "usdm"), ("BTCUSDT", None)])
def test_a_binance_symbol_names_its_own_market_when_it_can(raw: str, market: str | None) -> None:
    assert binance_symbol_market(raw) == market


@pytest.mark.parametrize(("inst", "symbol", "kind"), [
    ("BTC-USDT", "BTC-USDT", "spot"), ("BTC-USDT-SWAP", "BTC-USDT-PERP", "perp"),
    ("BTC-USD-SWAP", "BTC-USD-PERP", "perp"), ("BTC-USDT-250627", "BTC-USDT-250627", "dated")])
def test_okx_instruments(inst: str, symbol: str, kind: str) -> None:
    assert okx_instrument(inst)[:2] == (symbol, kind)


@pytest.mark.parametrize(("raw", "market", "symbol", "inverse"), [
    ("BTCUSDT", "linear", "BTC-USDT-PERP", False), ("BTCUSDT", "spot", "BTC-USDT", False),
    ("BTCUSD", "linear", "BTC-USD-PERP", True), ("BTCPERP", "linear", "BTC-USDC-PERP", False),
    ("BTC-26DEC25", "linear", "BTC-USDC-251226", False)])
def test_bybit_symbols(raw: str, market: str, symbol: str, inverse: bool) -> None:
    assert bybit_symbol(raw, market) == (symbol, inverse)


@pytest.mark.parametrize(("year", "month", "day"), [(2025, 12, 26), (2026, 3, 27), (2026, 1, 30), (2024, 5, 31),
                                                    (2026, 7, 31)])
def test_cme_expiry_is_the_last_friday_of_the_month(year: int, month: int, day: int) -> None:
    assert last_friday(year, month) == dt.date(year, month, day)


def test_a_one_digit_cme_year_is_read_near_the_message_time() -> None:
    assert cme_contract("BTCZ5", 2025)[2] == dt.date(2025, 12, 26)
    assert cme_contract("BTCH0", 2029)[2] == dt.date(2030, 3, 29)
    assert cme_contract("BTCZ4", 2025)[2] == dt.date(2024, 12, 27)


def test_sgx_symbols_name_usd_perpetuals() -> None:
    assert sgx_symbol("BTC-PERP") == "BTC-USD-PERP" and sgx_symbol("ETH-USD-PERP") == "ETH-USD-PERP"


def test_every_source_lists_the_messages_it_accepts() -> None:
    assert set(SOURCES) == {"binance", "okx", "bybit", "hyperliquid", "cme", "sgx", "synthetic"}
    for source in SOURCES:
        assert accepted_messages(source)
    assert "markPriceUpdate" in accepted_messages("binance")
    assert "TradeSummary48" in accepted_messages("cme")


def test_an_unknown_source_is_a_value_error() -> None:
    with pytest.raises(UnknownSourceError):
        Normalizer("kraken")
    with pytest.raises(ValueError):
        accepted_messages("kraken")


def test_a_market_is_refused_for_a_source_without_markets() -> None:
    with pytest.raises(ValueError):
        Normalizer("okx", market="spot")


def test_streaming_yields_outcomes_in_order_and_ends_with_the_summary() -> None:
    trade = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 5, "m": True, "M": True}
    items = list(Normalizer("binance").iter_normalize([trade, "{", trade]))
    assert [type(i) for i in items] == [Emitted, Rejection, Rejection, Summary]
    summary = items[-1]
    assert isinstance(summary, Summary)
    assert (summary.counts.inputs, summary.counts.accepted, summary.counts.rejected) == (3, 1, 2)


def test_a_stream_stopped_early_does_not_leak_held_diffs_into_the_next_batch() -> None:
    diff = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [["1", "1"]], "a": []}
    trade = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 5, "m": True, "M": True}
    normalizer = Normalizer("binance", "BTCUSDT")
    stream = normalizer.iter_normalize([diff, trade, diff])
    assert isinstance(next(stream), Emitted)  # the diff before it is held
    stream.close()
    result = normalizer.normalize([{"lastUpdateId": 0, "bids": [], "asks": []}])
    assert result.event_index == [0] and result.counts.inputs == 1
