"""Hyperliquid websocket channels: trades, l2Book (every message a full snapshot), bbo.

Side is the aggressor: `B` buy, `A` sell. Coins map to USD-margined perpetuals (`BTC` →
`BTC-USD-PERP`; `kPEPE`, 1000 PEPE, → `1000PEPE-USD-PERP`); spot pairs given by name (`PURR/USDC`)
map to spot; `@index` spot ids and HIP-3 `dex:COIN` perpetuals are rejected. No sequence numbers:
books have no gaps, only crossed-book checks.
"""

from __future__ import annotations

from typing import Any

from quantdesk.tools.normalize.canonical import trade_event
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import MessageError
from quantdesk.tools.normalize.parser import VenueParser, stamp
from quantdesk.tools.normalize.symbols import hyperliquid_symbol
from quantdesk.tools.normalize.values import (
    MAX_LEVELS,
    Level,
    as_list,
    as_object,
    choice,
    epoch_ms,
    field,
    integer,
    positive,
    price,
    text,
    to_int,
)

EXCHANGE = "hyperliquid"
MESSAGES = ("trades", "l2Book", "bbo")
_SIDES = {"B": "buy", "A": "sell"}
_CONTROL = frozenset({"subscriptionResponse", "pong", "error"})


class HyperliquidParser(VenueParser):
    source = "hyperliquid"

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        m = as_object(msg)
        channel = text(m, "channel")
        if channel in _CONTROL:
            out.non_event(index, "control")
        elif channel == "trades":
            self._trades(index, as_list(field(m, "data"), "data"), capture_ms, out)
        elif channel == "l2Book":
            data = as_object(field(m, "data"), "data")
            sides = as_list(field(data, "levels"), "levels")
            if len(sides) != 2:
                raise MessageError("malformed", "levels must be [bids, asks]")
            self._snapshot(index, data, "l2Book", _levels(sides[0], "bids"), _levels(sides[1], "asks"), capture_ms,
                           out)
        elif channel == "bbo":
            data = as_object(field(m, "data"), "data")
            pair = as_list(field(data, "bbo"), "bbo")
            if len(pair) != 2:
                raise MessageError("malformed", "bbo must be [bid, ask]")
            bid = [] if pair[0] is None else _levels([pair[0]], "bbo[0]")
            ask = [] if pair[1] is None else _levels([pair[1]], "bbo[1]")
            self._snapshot(index, data, "bbo", bid, ask, capture_ms, out)
        else:
            raise MessageError("unsupported_message", "this hyperliquid channel is not normalized (accepted: "
                               + ", ".join(MESSAGES) + ")")

    def _trades(self, index: int, data: list[Any], cap: int | None, out: Emitter) -> None:
        events = []
        for i, item in enumerate(data):
            t = as_object(item, f"data[{i}]")
            coin = text(t, "coin")
            symbol = hyperliquid_symbol(coin)
            side = choice(field(t, "side"), _SIDES, "side")
            px = price(field(t, "px"), "px")
            qty = positive(field(t, "sz"), "sz")
            trade_id = str(to_int(field(t, "tid"), "tid", minimum=0, allow_text=True))
            ts, capture = stamp(epoch_ms(integer(t, "time"), "time"), cap)
            events.append(trade_event(EXCHANGE, symbol, coin, ts, capture, side, px, qty, trade_id,
                                      self.notional(symbol, px, qty)))
        if not events:
            out.non_event(index, "empty")
        for event in events:
            out.emit(index, event)

    def _snapshot(self, index: int, data: dict[str, Any], channel: str, bids: list[Level], asks: list[Level],
                  cap: int | None, out: Emitter) -> None:
        coin = text(data, "coin")
        symbol = hyperliquid_symbol(coin)
        ts, capture = stamp(epoch_ms(integer(data, "time"), "time"), cap)
        state = self.book(EXCHANGE, symbol, coin, channel)
        self.replace(state, bids, asks, None)
        self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True)


def _levels(value: object, what: str) -> list[Level]:
    rows = as_list(value, what)
    if len(rows) > MAX_LEVELS:
        raise MessageError("invalid_value", f"{what} carries too many levels")
    out: list[Level] = []
    for i, row in enumerate(rows):
        lv = as_object(row, f"{what}[{i}]")
        out.append((price(field(lv, "px"), f"{what}[{i}].px"), positive(field(lv, "sz"), f"{what}[{i}].sz")))
    return out
