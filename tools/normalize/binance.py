"""Binance spot, USD-M and COIN-M futures: trade, aggTrade, depthUpdate, partial depth, bookTicker, REST snapshots.

The market: the symbol decides when it can (COIN-M symbols are `BASEUSD_PERP` or `BASEUSD_YYMMDD`,
quoted in USD; `BASEUSDT_YYMMDD` is a USD-M delivery contract); for plain pairs, which spot and USD-M
share, the `market` option when given; otherwise the message shape (futures `trade` has `X`, spot has
`M`; spot `aggTrade` has `M`; futures `depthUpdate` has `pu`; futures `bookTicker` has `e`; the
futures REST snapshot has `E`/`T`); for a `trade` with neither `M` nor `X`, the market of a canonical
default symbol (`BTC-USDT-PERP`); otherwise the message is rejected as ambiguous. Exchanges are
`binance` (spot), `binance_futures` (USD-M) and `binance_coinm` (COIN-M).

COIN-M quantities are contracts worth a fixed USD amount (venues.json: 100 USD for BTC, 10 USD for
the others; `contract_sizes` keyed by venue symbol overrides): base = contracts x USD / price, in
trades, book levels and book tickers alike. Futures books and tickers are stamped with the matching
engine's time `T`, as trades are; `E` only where `T` is absent.

Book sync ("How to manage a local order book correctly"): diffs that arrive before a snapshot
(or after a gap) are held, at most `max_pending` per book; a snapshot (REST or partial depth)
replays them: spot drops `u <= lastUpdateId` and needs `U <= lastUpdateId + 1` first, then
`U <= last u + 1`; USD-M drops `u < lastUpdateId`, needs `U <= lastUpdateId` first, then
`pu == last u`. A break emits a `gap=true` event and the book waits for the next snapshot;
diffs still held at the end of the input are rejected as `awaiting_snapshot`.
Trades: ids at or below the highest seen for (exchange, symbol, stream) are stale.
`markPriceUpdate` (and `!markPrice@arr` arrays) are counted as `mark_price` non-events with the
parsed fields in `detail`; USD-M trades with `X` INSURANCE_FUND, ADL or NA are `off_book_trade`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from quantdesk.tools.normalize.book import BookState
from quantdesk.tools.normalize.canonical import best_first, trade_event
from quantdesk.tools.normalize.contracts import ContractSize, binance_coinm_usd
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import MessageError
from quantdesk.tools.normalize.parser import Options, VenueParser, stamp_optional
from quantdesk.tools.normalize.symbols import (
    BinanceMarket,
    binance_raw,
    binance_symbol,
    binance_symbol_market,
    split_pair,
)
from quantdesk.tools.normalize.values import (
    INT64_MAX,
    Level,
    amount,
    as_object,
    epoch_ms,
    field,
    flag,
    integer,
    levels,
    optional_integer,
    positive,
    price,
    text,
    to_float,
    to_int,
)

EXCHANGES: dict[BinanceMarket, str] = {"spot": "binance", "usdm": "binance_futures", "coinm": "binance_coinm"}
OFF_BOOK = frozenset({"INSURANCE_FUND", "ADL", "NA"})
_PARTIAL = re.compile(r"^depth(5|10|20)$")
MESSAGES = ("trade", "aggTrade", "depthUpdate", "partial depth (depth5/10/20)", "bookTicker",
            "REST depth snapshot", "markPriceUpdate", "combined stream {stream, data}",
            "COIN-M (BASEUSD_PERP, BASEUSD_YYMMDD: sizes from USD contracts)")

Handler = Callable[[int, dict[str, Any], str | None, int | None, Emitter], None]


@dataclass(frozen=True, slots=True)
class _TradeStream:
    """What a (symbol, market, stream) resolves to, cached: trades repeat a few symbols millions of times."""

    exchange: str
    symbol: str
    key: tuple[str, str, str]
    usd_rate: float
    contract: ContractSize | None  # COIN-M: quantities are USD contracts


@dataclass(slots=True)  # not frozen: one per diff, and frozen dataclasses are slow to build
class _Diff:
    index: int
    first_id: int
    last_id: int
    prev_id: int | None
    bids: list[Level]
    asks: list[Level]
    timestamp_ms: int | None
    capture_ms: int | None
    futures: bool


def _stream_parts(stream: str | None) -> tuple[str | None, str | None]:
    """(upper-case symbol, stream kind) of a combined-stream name such as `btcusdt@depth20@100ms`."""
    if stream is None:
        return None, None
    name, _, rest = stream.partition("@")
    return name.upper() or None, rest.partition("@")[0] or None


class BinanceParser(VenueParser):
    source = "binance"
    markets = ("spot", "usdm", "coinm")

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._last_trade: dict[tuple[str, str, str], int] = {}
        self._trade_streams: dict[tuple[str, BinanceMarket, bool], _TradeStream] = {}
        self._contracts: dict[str, ContractSize] = {}
        self._default_raw: str | None = None
        self._default_market: BinanceMarket | None = None
        if options.symbol:
            parsed = binance_raw(options.symbol)
            if parsed is None:
                self._default_raw = options.symbol
            else:
                self._default_raw, self._default_market = parsed
        self._handlers: dict[str, Handler] = {
            "trade": self._trade, "aggTrade": self._agg_trade, "depthUpdate": self._depth,
            "bookTicker": self._book_ticker, "markPriceUpdate": self._mark_price}

    @property
    def default_raw(self) -> str | None:
        """The venue symbol of the default symbol, if one was given."""
        return self._default_raw

    @property
    def last_trade_ids(self) -> dict[tuple[str, str, str], int]:
        """Highest trade id seen per (exchange, symbol, stream); shared with the columnar lane."""
        return self._last_trade

    def market_of(self, shape: bool | None, raw: str | None) -> BinanceMarket:
        """The symbol's own market (COIN-M, USD-M delivery), else the option, else the shape (True: futures),
        else the default symbol's market, else ambiguous. `market="spot"` keeps suffixed symbols refused."""
        option = cast("BinanceMarket | None", self.options.market)
        by_symbol = binance_symbol_market(raw) if raw is not None else None
        if by_symbol is not None and option != "spot":
            return by_symbol
        if option is not None:
            return option
        if shape is not None:
            return "usdm" if shape else "spot"
        if self._default_market is not None and (raw is None or raw == self._default_raw):
            return self._default_market
        raise MessageError("ambiguous_market", "cannot tell spot from USD-M for this message: pass market")

    def coinm_contract(self, raw: str) -> ContractSize:
        """The USD value of one COIN-M contract of `raw`: `contract_sizes[raw]`, else the venue data."""
        size = self._contracts.get(raw)
        if size is None:
            override = self.options.contract_sizes.get(raw)
            usd = override if override is not None else binance_coinm_usd(split_pair(raw.partition("_")[0])[0])
            size = self._contracts[raw] = ContractSize(usd, "usd")
        return size

    def _base_levels(self, raw: str, market: BinanceMarket, side: list[Level]) -> list[Level]:
        if market != "coinm":
            return side
        size = self.coinm_contract(raw)
        return [(p, size.to_base(s, p)) for p, s in side]

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        stream: str | None = None
        if type(msg) is dict and len(msg) == 2 and "stream" in msg and "data" in msg:
            name = msg["stream"]
            if type(name) is not str:
                raise MessageError("wrong_type", "'stream' must be a string")
            stream, msg = name, msg["data"]
        if type(msg) is list:
            self._mark_price_array(index, msg, out)
            return
        m = as_object(msg)
        e = m.get("e")
        if e is None:
            if "lastUpdateId" in m:
                self._snapshot(index, m, stream, capture_ms, out)
            elif "result" in m and "id" in m:
                out.non_event(index, "control")
            elif "u" in m and "b" in m and "B" in m:
                self._book_ticker(index, m, stream, capture_ms, out)
            else:
                raise MessageError("unsupported_message", "not a binance market-data message")
            return
        if type(e) is not str:
            raise MessageError("wrong_type", "'e' must be a string")
        handler = self._handlers.get(e)
        if handler is None:
            raise MessageError("unsupported_message", "this binance event type is not normalized (accepted: "
                               + ", ".join(self._handlers) + ")")
        handler(index, m, stream, capture_ms, out)

    def finish(self, out: Emitter) -> None:
        for state in self._books.values():
            while state.pending:
                d: _Diff = state.pending.popleft()
                out.reject(d.index, "awaiting_snapshot", f"no usable snapshot of {state.raw_symbol} followed this diff")

    # -- trades --------------------------------------------------------------------------------

    def _trade(self, index: int, m: dict[str, Any], stream: str | None, cap: int | None, out: Emitter) -> None:
        self._any_trade(index, m, cap, out, agg=False)

    def _agg_trade(self, index: int, m: dict[str, Any], stream: str | None, cap: int | None, out: Emitter) -> None:
        self._any_trade(index, m, cap, out, agg=True)

    def _any_trade(self, index: int, m: dict[str, Any], cap: int | None, out: Emitter, *, agg: bool) -> None:
        # The columnar lane (binance_columnar.py) mirrors these checks; keep them in step.
        fields = _plain_trade(m, agg)
        if fields is None:  # something is off: the checked reads name the field and raise
            fields = _checked_trade(m, agg)
        raw, trade_time, px, qty, seller_aggressor, trade_id, first, last = fields
        shape: bool | None
        if agg:
            shape = m.get("M") is None
        else:
            shape = True if m.get("X") is not None else False if m.get("M") is not None else None
        market = self.market_of(shape, raw)
        info = self._trade_streams.get((raw, market, agg))
        if info is None:
            symbol = binance_symbol(raw, market)
            exchange = EXCHANGES[market]
            info = self._trade_streams[(raw, market, agg)] = _TradeStream(
                exchange, symbol, (exchange, symbol, "aggTrade" if agg else "trade"), self.usd_rate(symbol),
                self.coinm_contract(raw) if market == "coinm" else None)
        x = m.get("X")
        if market != "spot" and x is not None:
            if type(x) is not str:
                raise MessageError("wrong_type", "'X' must be a string")
            if x in OFF_BOOK:
                out.non_event(index, "off_book_trade", {"symbol": info.symbol, "trade_id": str(trade_id), "type": x})
                return
        seen = self._last_trade.get(info.key)
        if seen is not None and trade_id <= seen:
            raise MessageError("stale", late_trade(trade_id, seen))
        self._last_trade[info.key] = trade_id
        if trade_time >= 10**14:
            trade_time = epoch_ms(trade_time, "T")
        if info.contract is not None:
            qty = info.contract.to_base(qty, px)
        notional = None if math.isnan(info.usd_rate) else px * qty * info.usd_rate
        out.emit(index, trade_event(info.exchange, info.symbol, raw, trade_time,
                                    cap if cap is not None else trade_time, "sell" if seller_aggressor else "buy",
                                    px, qty, str(trade_id), notional, first, last))

    # -- books ---------------------------------------------------------------------------------

    def _depth(self, index: int, m: dict[str, Any], stream: str | None, cap: int | None, out: Emitter) -> None:
        raw = text(m, "s")
        first_id = integer(m, "U", minimum=0)
        last_id = integer(m, "u", minimum=0)
        prev_id = optional_integer(m, "pu")
        bids = levels(field(m, "b"), "b")
        asks = levels(field(m, "a"), "a")
        if first_id > last_id:
            raise MessageError("invalid_value", f"first update id {first_id} is after the last {last_id}")
        market = self.market_of(prev_id is not None, raw)
        symbol = binance_symbol(raw, market)
        bids, asks = self._base_levels(raw, market, bids), self._base_levels(raw, market, asks)
        ts, capture = stamp_optional(_exchange_time(m), cap, out)
        kind = _stream_parts(stream)[1]
        if kind is not None and _PARTIAL.match(kind):
            # Futures partial depth arrives as depthUpdate: a top-N snapshot, not a diff.
            state = self.book(EXCHANGES[market], symbol, raw, kind)
            self._apply_snapshot(index, state, bids, asks, last_id, ts, capture, out, first_id, prev_id)
            return
        state = self.book(EXCHANGES[market], symbol, raw, "depth")
        diff = _Diff(index, first_id, last_id, prev_id, bids, asks, ts, capture, market != "spot")
        if state.synced:
            self._apply_diff(state, diff, out)
        else:
            self._hold(state, diff, out)

    def _snapshot(self, index: int, m: dict[str, Any], stream: str | None, cap: int | None, out: Emitter) -> None:
        last_update = integer(m, "lastUpdateId", minimum=0)
        bids = levels(field(m, "bids"), "bids")
        asks = levels(field(m, "asks"), "asks")
        stream_symbol, kind = _stream_parts(stream)
        own = m.get("symbol")  # COIN-M REST snapshots name their symbol
        raw = stream_symbol or (own if type(own) is str and own else None) or self._default_raw
        if raw is None:
            raise MessageError("malformed", "a depth snapshot carries no symbol: pass `symbol` or a combined stream")
        market = self.market_of(m.get("E") is not None or m.get("T") is not None, raw)
        symbol = binance_symbol(raw, market)
        bids, asks = self._base_levels(raw, market, bids), self._base_levels(raw, market, asks)
        ts, capture = stamp_optional(_exchange_time(m), cap, out)
        channel = kind if kind is not None and _PARTIAL.match(kind) else "depth"
        state = self.book(EXCHANGES[market], symbol, raw, channel)
        self._apply_snapshot(index, state, bids, asks, last_update, ts, capture, out, None, None)

    def _apply_snapshot(self, index: int, state: BookState, bids: list[Level], asks: list[Level], seq: int,
                        ts: int | None, capture: int | None, out: Emitter, seq_first: int | None,
                        seq_prev: int | None) -> None:
        if state.synced and state.last_seq is not None and seq < state.last_seq:
            raise MessageError("stale", f"snapshot {seq} is older than the book ({state.last_seq})")
        self.replace(state, bids, asks, seq)
        if self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True,
                        seq_first=seq_first, seq_last=seq, seq_prev=seq_prev):
            self._replay(state, out)

    def _hold(self, state: BookState, diff: _Diff, out: Emitter) -> None:
        limit = self.options.max_pending
        if limit <= 0:
            out.reject(diff.index, "awaiting_snapshot", f"the {state.raw_symbol} book has no snapshot yet")
            return
        if len(state.pending) >= limit:
            old: _Diff = state.pending.popleft()
            out.reject(old.index, "awaiting_snapshot", f"more than {limit} diffs waited for a snapshot")
        state.pending.append(diff)
        out.hold(diff.index)

    def _replay(self, state: BookState, out: Emitter) -> None:
        pending = state.pending
        for _ in range(len(pending)):
            diff: _Diff = pending.popleft()
            if state.synced:
                self._apply_diff(state, diff, out)
            else:
                pending.append(diff)  # a replayed diff broke the book again: the rest wait for the next snapshot

    def _apply_diff(self, state: BookState, d: _Diff, out: Emitter) -> None:
        last = state.last_seq if state.last_seq is not None else -1
        first = state.fresh
        if d.last_id < last if (d.futures and first) else d.last_id <= last:
            out.reject(d.index, "stale", f"update ids {d.first_id}..{d.last_id} end before the book ({last})")
            return
        if first:
            ok = d.first_id <= (last if d.futures else last + 1)
            expected, received = f"U <= {last if d.futures else last + 1}", f"U = {d.first_id}"
        elif d.futures and d.prev_id is not None:
            ok = d.prev_id == last
            expected, received = f"pu = {last}", f"pu = {d.prev_id}"
        else:
            ok = d.first_id <= last + 1
            expected, received = f"U = {last + 1}", f"U = {d.first_id}"
        bids, asks = best_first(d.bids, d.asks)
        if not ok:
            self.publish_gap(d.index, state, out, timestamp_ms=d.timestamp_ms, capture_ms=d.capture_ms, bids=bids,
                             asks=asks, expected=expected, received=received, seq_first=d.first_id,
                             seq_last=d.last_id, seq_prev=d.prev_id)
            return
        state.book.apply(d.bids, d.asks)
        state.last_seq = d.last_id
        state.fresh = False
        self.publish(d.index, state, out, timestamp_ms=d.timestamp_ms, capture_ms=d.capture_ms, bids=bids,
                     asks=asks, is_snapshot=False, seq_first=d.first_id, seq_last=d.last_id, seq_prev=d.prev_id)

    def _book_ticker(self, index: int, m: dict[str, Any], stream: str | None, cap: int | None, out: Emitter) -> None:
        raw = text(m, "s")
        update_id = integer(m, "u", minimum=0)
        bid_px, bid_qty = amount(field(m, "b"), "b"), amount(field(m, "B"), "B")
        ask_px, ask_qty = amount(field(m, "a"), "a"), amount(field(m, "A"), "A")
        market = self.market_of(m.get("e") is not None, raw)
        symbol = binance_symbol(raw, market)
        ts, capture = stamp_optional(_exchange_time(m), cap, out)
        state = self.book(EXCHANGES[market], symbol, raw, "bookTicker")
        if state.last_seq is not None and update_id < state.last_seq:
            raise MessageError("stale", f"bookTicker update {update_id} is older than {state.last_seq}")
        bids = self._base_levels(raw, market, [(bid_px, bid_qty)] if bid_px > 0 and bid_qty > 0 else [])
        asks = self._base_levels(raw, market, [(ask_px, ask_qty)] if ask_px > 0 and ask_qty > 0 else [])
        self.replace(state, bids, asks, update_id)
        self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True, seq_last=update_id)

    # -- mark price ----------------------------------------------------------------------------

    def _mark_price(self, index: int, m: dict[str, Any], stream: str | None, cap: int | None, out: Emitter) -> None:
        out.non_event(index, "mark_price", _mark_detail(m))

    def _mark_price_array(self, index: int, items: list[Any], out: Emitter) -> None:
        details = []
        for i, item in enumerate(items):
            d = as_object(item, f"item {i}")
            if d.get("e") != "markPriceUpdate":
                raise MessageError("unsupported_message", "arrays are read only for markPriceUpdate (!markPrice@arr)")
            details.append(_mark_detail(d))
        if details:
            out.non_event(index, "mark_price", {"items": details})
        else:
            out.non_event(index, "empty")


def late_trade(trade_id: int, seen: int) -> str:
    if trade_id == seen:
        return f"trade id {trade_id} was already seen"
    return f"trade id {trade_id} is older than the last one seen ({seen})"


_TradeFields = tuple[str, int, float, float, bool, int, int | None, int | None]


def _plain_trade(m: dict[str, Any], agg: bool) -> _TradeFields | None:
    """The trade fields when every one has its documented type and a plain value, else None (no exceptions)."""
    raw, t, p, q, maker, tid = m.get("s"), m.get("T"), m.get("p"), m.get("q"), m.get("m"), m.get("a" if agg else "t")
    if not (type(raw) is str and raw and type(t) is int and 0 < t < 10**14 and type(p) is str and type(q) is str
            and type(maker) is bool and type(tid) is int and 0 <= tid <= INT64_MAX):
        return None
    first = last = None
    if agg:
        first, last = m.get("f"), m.get("l")
        if not ((first is None or (type(first) is int and 0 <= first <= INT64_MAX))
                and (last is None or (type(last) is int and 0 <= last <= INT64_MAX))):
            return None
    try:
        px, qty = float(p), float(q)
    except ValueError:
        return None
    if not (0.0 < px < math.inf and 0.0 < qty < math.inf):
        return None
    return raw, t, px, qty, maker, tid, first, last


def _checked_trade(m: dict[str, Any], agg: bool) -> _TradeFields:
    raw = text(m, "s")
    trade_time = integer(m, "T")
    epoch_ms(trade_time, "T")  # validates; the caller converts µs and ns
    px = price(field(m, "p"), "p")
    qty = positive(field(m, "q"), "q")
    seller_aggressor = flag(m, "m")
    trade_id = integer(m, "a" if agg else "t", minimum=0)
    first = optional_integer(m, "f", minimum=0) if agg else None
    last = optional_integer(m, "l", minimum=0) if agg else None
    return raw, trade_time, px, qty, seller_aggressor, trade_id, first, last


def _exchange_time(m: dict[str, Any]) -> int | None:
    """The matching engine's time `T` where the message has it (USD-M and COIN-M books, like trades), else the
    event time `E`, else None (spot bookTicker, partial depth, REST snapshots carry neither)."""
    for key in ("T", "E"):
        value = optional_integer(m, key)
        if value is not None:
            return epoch_ms(value, key)
    return None


def _mark_detail(m: dict[str, Any]) -> dict[str, Any]:
    """The fields of a markPriceUpdate, parsed (delivery contracts send an empty funding rate and T = 0)."""
    raw = text(m, "s")
    market = binance_symbol_market(raw) or "usdm"
    detail: dict[str, Any] = {
        "exchange": EXCHANGES[market], "symbol": binance_symbol(raw, market), "raw_symbol": raw,
        "timestamp_ms": epoch_ms(integer(m, "E"), "E"), "mark_price": price(field(m, "p"), "p")}
    for key, name in (("i", "index_price"), ("P", "estimated_settle_price")):
        value = m.get(key)
        detail[name] = amount(value, key) if value is not None else None
    rate = m.get("r")
    detail["funding_rate"] = to_float(rate, "r") if rate is not None and rate != "" else None
    next_time = m.get("T")
    detail["next_funding_time_ms"] = (
        epoch_ms(to_int(next_time, "T"), "T") if next_time is not None and next_time != 0 else None)
    return detail
