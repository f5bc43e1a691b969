"""Bybit v5 public topics: publicTrade.{symbol} and orderbook.{depth}.{symbol} (snapshot and delta).

Category (the message does not say it): the `market` option (spot | linear | inverse); else a
trade with `L` (tick direction, sent for derivatives only) is a derivative and one without is spot.
Books carry no such sign: the option, else the market of a canonical default symbol, else what the
feed's own trades of that symbol showed (the batch is scanned for them first, so a book that comes
before the first trade is labelled right too), else linear with a warning; trades that later show
a symbol is spot after its books were assumed linear add a warning too. A derivative quoted in USD
is inverse: its sizes are USD contracts, size_base = contracts / price.

Book: a `snapshot` (or any message with u = 1, a service restart) resets the book; a delta must
have u = last u + 1. u <= last is stale (repeats included); a jump emits a `gap=true` event and
deltas are refused until the next snapshot. Book times are `cts` (matching-engine time, comparable
with trade `T`) when present, else `ts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from quantdesk.tools.normalize.canonical import best_first, trade_event
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import MessageError
from quantdesk.tools.normalize.parser import Options, VenueParser, stamp
from quantdesk.tools.normalize.recorded import read_text, unwrap
from quantdesk.tools.normalize.symbols import bybit_symbol, parse_canonical
from quantdesk.tools.normalize.values import (
    Level,
    as_list,
    as_object,
    choice,
    epoch_ms,
    field,
    integer,
    levels,
    optional_integer,
    positive,
    price,
    text,
)

EXCHANGE = "bybit"
MESSAGES = ("publicTrade.{symbol}", "orderbook.{depth}.{symbol} snapshot", "orderbook.{depth}.{symbol} delta")
_SIDES = {"Buy": "buy", "Sell": "sell"}
_TYPES = {"snapshot": "snapshot", "delta": "delta"}
Market = Literal["spot", "linear", "inverse"]


class BybitParser(VenueParser):
    source = "bybit"
    markets = ("spot", "linear", "inverse")

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._trade_markets: dict[str, set[bool]] = {}  # venue symbol -> derivative flags its trades showed
        self._assumed_linear: set[str] = set()  # symbols whose books were labelled linear without evidence
        self._default: tuple[str, Market] | None = None
        parsed = parse_canonical(options.symbol) if options.symbol else None
        if parsed is not None:
            base, quote, kind = parsed
            self._default = (base + quote, "spot" if kind == "spot" else "linear")

    def market(self, derivative: bool | None, raw: str) -> Market:
        """spot | linear | inverse for a symbol: option, else shape, else default symbol, else linear."""
        if self.options.market is not None:
            return cast(Market, self.options.market)
        if derivative is not None:
            return "linear" if derivative else "spot"
        if self._default is not None and self._default[0] == raw:
            return self._default[1]
        return "linear"

    def prime(self, payloads: Sequence[object]) -> None:
        """Learn each symbol's category from the batch's trades before its books are read."""
        if self.options.market is not None:
            return
        for payload in payloads:
            if isinstance(payload, (bytes, str)) and ("publicTrade" not in payload if isinstance(payload, str)
                                                       else b"publicTrade" not in payload):
                continue
            try:
                msg = unwrap(read_text(payload) if isinstance(payload, (bytes, str)) else payload)[0]
            except MessageError:
                continue
            if type(msg) is dict and str(msg.get("topic", "")).startswith("publicTrade.") \
                    and type(data := msg.get("data")) is list:
                for item in data:
                    if type(item) is dict and type(raw := item.get("s")) is str:
                        self._trade_markets.setdefault(raw, set()).add(item.get("L") is not None)

    def book_market(self, raw: str, out: Emitter) -> Market:
        """A book's category: option, default symbol, the symbol's trades, else linear (with a warning)."""
        if self.options.market is not None:
            return cast(Market, self.options.market)
        if self._default is not None and self._default[0] == raw:
            return self._default[1]
        seen = self._trade_markets.get(raw)
        if seen == {False}:
            return "spot"
        if seen == {True}:
            return "linear"
        if raw not in self._assumed_linear:
            self._assumed_linear.add(raw)
            why = "its trades are both spot and derivative" if seen else "no trade of it says spot or derivative"
            out.warn(f"bybit-book-market:{raw}", f"bybit books of {raw} carry no category and {why}: they are "
                     "labelled linear (-PERP); pass market='spot' (or 'linear') to say which feed this is")
        return "linear"

    def _learn(self, raw: str, derivative: bool, out: Emitter) -> None:
        self._trade_markets.setdefault(raw, set()).add(derivative)
        if not derivative and raw in self._assumed_linear:
            self._assumed_linear.discard(raw)  # said once
            out.warn(f"bybit-book-market:{raw}", f"bybit books of {raw} were labelled linear (-PERP) before "
                     "spot trades of it arrived: pass market='spot' to normalize a spot feed")

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        m = as_object(msg)
        if "op" in m or "success" in m:  # subscription acks and pongs
            out.non_event(index, "control")
            return
        topic = text(m, "topic")
        if topic.startswith("publicTrade."):
            self._trades(index, m, capture_ms, out)
        elif topic.startswith("orderbook."):
            self._book(index, m, topic, capture_ms, out)
        else:
            raise MessageError("unsupported_message", "this bybit topic is not normalized (accepted: publicTrade.*, "
                               "orderbook.*)")

    def _symbol(self, raw: str, derivative: bool | None) -> tuple[str, bool]:
        return bybit_symbol(raw, self.market(derivative, raw))

    def _trades(self, index: int, m: dict[str, Any], cap: int | None, out: Emitter) -> None:
        events = []
        for i, item in enumerate(as_list(field(m, "data"), "data")):
            t = as_object(item, f"data[{i}]")
            raw = text(t, "s")
            derivative = t.get("L") is not None
            symbol, inverse = self._symbol(raw, derivative)
            px = price(field(t, "p"), "p")
            qty = positive(field(t, "v"), "v")
            if inverse:
                qty /= px
            side = choice(field(t, "S"), _SIDES, "S")
            trade_id = text(t, "i")
            ts, capture = stamp(epoch_ms(integer(t, "T"), "T"), cap)
            self._learn(raw, derivative, out)
            events.append(trade_event(EXCHANGE, symbol, raw, ts, capture, side, px, qty, trade_id,
                                      self.notional(symbol, px, qty), seq_last=optional_integer(t, "seq")))
        if not events:
            out.non_event(index, "empty")
        for event in events:
            out.emit(index, event)

    def _book(self, index: int, m: dict[str, Any], topic: str, cap: int | None, out: Emitter) -> None:
        parts = topic.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            raise MessageError("malformed", "the orderbook topic is not orderbook.<depth>.<symbol>")
        kind = choice(field(m, "type"), _TYPES, "type")
        d = as_object(field(m, "data"), "data")
        raw = text(d, "s")
        update_id = integer(d, "u", minimum=0)
        bids, asks = levels(field(d, "b"), "b"), levels(field(d, "a"), "a")
        cts = optional_integer(m, "cts")
        ts, capture = stamp(epoch_ms(cts if cts is not None else integer(m, "ts"), "ts"), cap)
        symbol, inverse = bybit_symbol(raw, self.book_market(raw, out))
        if inverse:
            bids, asks = _base_sizes(bids), _base_sizes(asks)
        state = self.book(EXCHANGE, symbol, raw, f"orderbook.{parts[1]}")
        if kind == "snapshot" or update_id == 1:
            self.replace(state, bids, asks, update_id)
            self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True,
                         seq_last=update_id)
            return
        if not state.synced or state.last_seq is None:
            raise MessageError("awaiting_snapshot", f"no valid snapshot of {topic} to apply this delta to")
        last = state.last_seq
        if update_id <= last:
            raise MessageError("stale", f"update id {update_id} is not after the book's {last}")
        bids, asks = best_first(bids, asks)
        if update_id != last + 1:
            self.publish_gap(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=bids, asks=asks,
                             expected=f"u = {last + 1}", received=f"u = {update_id}", seq_last=update_id,
                             seq_prev=last)
            return
        state.book.apply(bids, asks)
        state.last_seq = update_id
        self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=bids, asks=asks, is_snapshot=False,
                     seq_last=update_id, seq_prev=last)


def _base_sizes(side: list[Level]) -> list[Level]:
    return [(p, s / p) for p, s in side]
