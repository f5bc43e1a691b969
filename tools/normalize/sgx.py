"""SGX perpetual futures in the simplified JSON of the spec (§3.7): `trade` and `book` messages.

price = price / 10^price_decimals; size_base = qty × contract_size (the message's, else BTC 0.2 and
ETH 5); aggressor B buy, S sell, null unknown; `BTC-PERP` → `BTC-USD-PERP`. Book entries are price
levels with absolute quantities (0 deletes a level in a delta); `level` is informational.

`seq` runs per order book (orderbook_id, else symbol) across both message types: seq <= last is
stale; a jump is a gap. A delta after a jump becomes a `gap=true` event; a jump seen on a trade
drops a synced book with an empty `gap=true` marker; a snapshot after a jump is applied (the gap is
still reported). Deltas wait for a snapshot, first and after every gap.
"""

from __future__ import annotations

from typing import Any

from quantdesk.tools.normalize.book import BookState
from quantdesk.tools.normalize.canonical import best_first, book_event, trade_event
from quantdesk.tools.normalize.contracts import SGX_CONTRACTS, scale
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import GapReport, MessageError
from quantdesk.tools.normalize.parser import Options, VenueParser
from quantdesk.tools.normalize.symbols import sgx_symbol
from quantdesk.tools.normalize.values import (
    MAX_LEVELS,
    Level,
    amount,
    as_list,
    as_object,
    choice,
    field,
    flag,
    integer,
    positive,
    to_int,
)

EXCHANGE = "sgx"
MESSAGES = ("trade", "book (snapshot, delta)")
_TYPES = {"trade": "trade", "book": "book"}
_AGGRESSOR = {"B": "buy", "S": "sell"}
_MAX_NS = 7_258_118_400 * 10**9  # 2200-01-01


class SgxParser(VenueParser):
    source = "sgx"

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._last_seq: dict[str, int] = {}

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        m = as_object(msg)
        kind = choice(field(m, "msg_type"), _TYPES, "msg_type")
        raw = m.get("symbol", self.options.symbol)
        if type(raw) is not str or not raw:
            raise MessageError("malformed", "no symbol: the message has none and no default symbol was given")
        symbol = sgx_symbol(raw)
        ns = integer(m, "timestamp_ns", minimum=1)
        if ns >= _MAX_NS:
            raise MessageError("invalid_value", "timestamp_ns is beyond the year 2200")
        ts = ns // 1_000_000
        capture = capture_ms if capture_ms is not None else ts
        seq = integer(m, "seq", minimum=0)
        decimals = to_int(m.get("price_decimals", 0), "price_decimals", minimum=0)
        if decimals > 18:
            raise MessageError("invalid_value", "price_decimals must be 0..18")
        contract = self._contract(m, symbol)
        book_id = m.get("orderbook_id", raw)
        if type(book_id) not in (int, str):
            raise MessageError("wrong_type", "orderbook_id must be an integer or a string")
        key = f"{book_id}"
        if kind == "trade":
            self._trade(index, m, symbol, raw, key, seq, ts, capture, decimals, contract, out)
        else:
            state = self.book(EXCHANGE, symbol, raw, "book")
            self._book(index, m, state, key, seq, ts, capture, decimals, contract, out)

    def _contract(self, m: dict[str, Any], symbol: str) -> float:
        value = m.get("contract_size")
        if value is not None:
            return positive(value, "contract_size")
        base = symbol.split("-")[0]
        size = self.options.contract_sizes.get(base, SGX_CONTRACTS.get(base))
        if size is None:
            raise MessageError("unknown_instrument", f"no contract size known for SGX {base}: send contract_size in "
                               f"the message or pass contract_sizes {{\"{base}\": <base units per contract>}}")
        return size

    def _sequence(self, index: int, symbol: str, raw: str, key: str, seq: int, out: Emitter) -> bool:
        """True when `seq` jumps past the next expected number (a gap); repeats and older ones are stale."""
        last = self._last_seq.get(key)
        if last is not None and seq <= last:
            raise MessageError("stale", f"seq {seq} is at or before the last one ({last})")
        self._last_seq[key] = seq
        if last is not None and seq != last + 1:
            out.gap(GapReport(index, EXCHANGE, symbol, raw, "book", f"seq {last + 1}", f"seq {seq}"))
            return True
        return False

    def _trade(self, index: int, m: dict[str, Any], symbol: str, raw: str, key: str, seq: int, ts: int, capture: int,
               decimals: int, contract: float, out: Emitter) -> None:
        px = _scaled(field(m, "price"), decimals, "price")
        qty = scale(positive(field(m, "qty"), "qty"), contract)
        aggressor = m.get("aggressor")
        side = "unknown" if aggressor is None else choice(aggressor, _AGGRESSOR, "aggressor")
        match_id = field(m, "match_id")
        if type(match_id) not in (str, int) or match_id == "":
            raise MessageError("wrong_type", "match_id must be a non-empty string or an integer")
        gap = self._sequence(index, symbol, raw, key, seq, out)
        state = self._books.get((EXCHANGE, symbol, raw, "book"))
        if gap and state is not None and state.synced:
            state.gaps += 1
            state.desync(f"seq gap at input {index}")
            out.emit(index, book_event(EXCHANGE, symbol, raw, ts, capture, [], [], is_snapshot=False, best_bid=None,
                                       best_ask=None, seq_last=seq, gap=True))
        out.emit(index, trade_event(EXCHANGE, symbol, raw, ts, capture, side, px, qty, str(match_id),
                                    self.notional(symbol, px, qty), seq_last=seq))

    def _book(self, index: int, m: dict[str, Any], state: BookState, key: str, seq: int, ts: int, capture: int,
              decimals: int, contract: float, out: Emitter) -> None:
        snapshot = flag(m, "is_snapshot")
        bids = _levels(field(m, "bids"), "bids", decimals, contract)
        asks = _levels(field(m, "asks"), "asks", decimals, contract)
        previous = self._last_seq.get(key)
        gap = self._sequence(index, state.symbol, state.raw_symbol, key, seq, out)
        if snapshot:
            self.replace(state, [lv for lv in bids if lv[1] > 0], [lv for lv in asks if lv[1] > 0], seq)
            self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True, seq_last=seq)
            return
        bids, asks = best_first(bids, asks)
        if gap and state.synced:
            self.publish_gap(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=bids, asks=asks,
                             expected=f"seq {previous + 1 if previous is not None else 0}", received=f"seq {seq}",
                             seq_last=seq, seq_prev=previous)
            return
        if not state.synced:
            raise MessageError("awaiting_snapshot", f"the {state.raw_symbol} book waits for a snapshot")
        state.book.apply(bids, asks)
        state.last_seq = seq
        self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=bids, asks=asks, is_snapshot=False,
                     seq_last=seq, seq_prev=previous)


def _scaled(value: object, decimals: int, what: str) -> float:
    if type(value) is int:
        if value <= 0:
            raise MessageError("invalid_value", f"{what!r} must be positive")
        return value / int(10**decimals)
    return positive(value, what) / int(10**decimals)


def _levels(value: object, what: str, decimals: int, contract: float) -> list[Level]:
    rows = as_list(value, what)
    if len(rows) > MAX_LEVELS:
        raise MessageError("invalid_value", f"{what} carries too many levels")
    out: list[Level] = []
    for i, row in enumerate(rows):
        lv = as_object(row, f"{what}[{i}]")
        px = _scaled(field(lv, "price"), decimals, f"{what}[{i}].price")
        qty = amount(field(lv, "qty"), f"{what}[{i}].qty")
        out.append((px, scale(qty, contract)))
    return out
