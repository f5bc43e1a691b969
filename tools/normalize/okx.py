"""OKX v5 public channels: trades, books (snapshot + update), books5, bbo-tbt.

Sizes of SWAP and dated FUTURES instruments are contracts: size_base = contracts × ctVal for
linear instruments, contracts × ctVal(USD) / price for coin-margined ones (`contracts.py`, or the
`contract_sizes` option keyed by instId). An instrument without a known contract value is
rejected as `unknown_instrument`. SPOT sizes are base units already.

`books`, `books-l2-tbt`, `books50-l2-tbt`: continuity is `prevSeqId == last seqId` (the snapshot has
prevSeqId -1); an update whose seqId is at or before the book's is stale; any other break emits a
`gap=true` event and updates are refused until the next snapshot. The signed CRC32 checksum over
the best 25 levels is verified after every message; a mismatch is a gap too (cause `checksum`: an
update was lost or misapplied), so the message becomes a `gap=true` event and the book waits for a
snapshot. OKX deprecated the field on 2026-06-23 (it is then always 0): a checksum of 0 is counted
as skipped, not verified.
"""

from __future__ import annotations

from typing import Any

from quantdesk.tools.normalize.book import BookState
from quantdesk.tools.normalize.canonical import best_first, trade_event
from quantdesk.tools.normalize.checksum import okx_book_checksum
from quantdesk.tools.normalize.contracts import OKX_CONTRACTS, ContractSize
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import MessageError
from quantdesk.tools.normalize.parser import Options, VenueParser, stamp
from quantdesk.tools.normalize.symbols import okx_instrument
from quantdesk.tools.normalize.values import (
    as_list,
    as_object,
    choice,
    epoch_ms,
    field,
    positive,
    price,
    text,
    text_levels,
    to_int,
)

EXCHANGE = "okx"
BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
SNAPSHOT_CHANNELS = frozenset({"books5", "bbo-tbt"})
TRADE_CHANNELS = frozenset({"trades", "trades-all"})
MESSAGES = ("trades", "trades-all", "books (snapshot, update)", "books-l2-tbt", "books50-l2-tbt", "books5", "bbo-tbt")

_SIDES = {"buy": "buy", "sell": "sell"}
_CONTROL_EVENTS = frozenset({"subscribe", "unsubscribe", "error", "login", "notice", "channel-conn-count",
                             "channel-conn-count-error"})
_ACTIONS = {"snapshot": "snapshot", "update": "update"}
TextLevel = tuple[float, float, str, str]


class OkxParser(VenueParser):
    source = "okx"

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._sizes: dict[str, ContractSize | None] = {}

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        m = as_object(msg)
        if "event" in m:  # subscribe / unsubscribe / error / channel-conn-count notices
            event = m["event"]
            out.non_event(index, "control", {"event": event if event in _CONTROL_EVENTS else "other"})
            return
        arg = as_object(field(m, "arg"), "'arg'")
        channel = text(arg, "channel")
        data = as_list(field(m, "data"), "data")
        if channel in TRADE_CHANNELS:
            self._trades(index, arg, data, capture_ms, out)
        elif channel in BOOK_CHANNELS:
            self._book(index, m, channel, text(arg, "instId"), data, capture_ms, out)
        elif channel in SNAPSHOT_CHANNELS:
            self._snapshot_channel(index, channel, arg, data, capture_ms, out)
        else:
            raise MessageError("unsupported_message", "this okx channel is not normalized (accepted: "
                               + ", ".join(sorted(TRADE_CHANNELS | BOOK_CHANNELS | SNAPSHOT_CHANNELS)) + ")")

    def contract(self, inst_id: str) -> ContractSize | None:
        """Contract size of a derivative (None for spot); unknown instruments are rejected."""
        if inst_id in self._sizes:
            size = self._sizes[inst_id]
        else:
            _, kind, base, quote = okx_instrument(inst_id)
            override = self.options.contract_sizes.get(inst_id)
            if kind == "spot":
                size = None
            elif override is not None:
                size = ContractSize(override, "usd" if quote == "USD" else "base")
            else:
                size = OKX_CONTRACTS.get((base, quote))
                if size is None:
                    raise MessageError("unknown_instrument", unknown_contract(inst_id))
            self._sizes[inst_id] = size
        return size

    def _trades(self, index: int, arg: dict[str, Any], data: list[Any], cap: int | None, out: Emitter) -> None:
        events = []
        for i, item in enumerate(data):
            t = as_object(item, f"data[{i}]")
            inst_id = t.get("instId", arg.get("instId"))
            if type(inst_id) is not str:
                raise MessageError("malformed", f"data[{i}] has no instId")
            symbol = okx_instrument(inst_id)[0]
            size = self.contract(inst_id)
            px = price(field(t, "px"), "px")
            qty = positive(field(t, "sz"), "sz")
            qty = size.to_base(qty, px) if size is not None else qty
            side = choice(field(t, "side"), _SIDES, "side")
            trade_id = text(t, "tradeId")
            ts, capture = stamp(epoch_ms(to_int(field(t, "ts"), "ts", allow_text=True), "ts"), cap)
            events.append(trade_event(EXCHANGE, symbol, inst_id, ts, capture, side, px, qty, trade_id,
                                      self.notional(symbol, px, qty)))
        if not events:
            out.non_event(index, "empty")
        for event in events:
            out.emit(index, event)

    def _levels(self, d: dict[str, Any], inst_id: str) -> tuple[list[TextLevel], list[TextLevel]]:
        """Bids and asks with their text kept, sizes in base units."""
        size = self.contract(inst_id)
        bids = text_levels(field(d, "bids"), "bids")
        asks = text_levels(field(d, "asks"), "asks")
        if size is not None:
            bids = [(p, size.to_base(s, p), pt, st) for p, s, pt, st in bids]
            asks = [(p, size.to_base(s, p), pt, st) for p, s, pt, st in asks]
        return bids, asks

    def _book(self, index: int, m: dict[str, Any], channel: str, inst_id: str, data: list[Any], cap: int | None,
              out: Emitter) -> None:
        if len(data) != 1:
            raise MessageError("malformed", f"a {channel} message must carry one book, got {len(data)}")
        d = as_object(data[0], "data[0]")
        action = choice(field(m, "action"), _ACTIONS, "action")
        symbol = okx_instrument(inst_id)[0]
        bids, asks = self._levels(d, inst_id)
        ts, capture = stamp(epoch_ms(to_int(field(d, "ts"), "ts", allow_text=True), "ts"), cap)
        seq = _optional_int(d, "seqId")
        prev = _optional_int(d, "prevSeqId")
        checksum = _optional_int(d, "checksum")
        state = self.book(EXCHANGE, symbol, inst_id, channel)
        plain_bids, plain_asks = best_first([(p, s) for p, s, _, _ in bids], [(p, s) for p, s, _, _ in asks])
        if action == "snapshot":
            state.book.clear()
        elif not state.synced:
            raise MessageError("awaiting_snapshot", f"no valid {channel} snapshot of {inst_id} to update")
        elif seq is not None and prev is not None and state.last_seq is not None and prev != state.last_seq:
            if seq <= state.last_seq:
                raise MessageError("stale", f"seqId {seq} is not after the book's {state.last_seq}")
            self.publish_gap(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=plain_bids,
                             asks=plain_asks, expected=f"prevSeqId = {state.last_seq}", received=f"prevSeqId = {prev}",
                             seq_last=seq, seq_prev=prev)
            return
        _apply(state, bids, asks)
        if action == "snapshot":
            state.resync(seq)
        else:
            state.last_seq = seq if seq is not None else state.last_seq
        if checksum is not None and not self._checksum_ok(state, checksum, out):
            self.publish_gap(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=plain_bids,
                             asks=plain_asks, expected=f"checksum = {okx_book_checksum(state.book)}",
                             received=f"checksum = {checksum}", seq_last=seq, seq_prev=prev, checksum=checksum,
                             cause="checksum")
            return
        if action == "snapshot":
            self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True, seq_last=seq,
                         seq_prev=prev, checksum=checksum)
        else:
            self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=plain_bids, asks=plain_asks,
                         is_snapshot=False, seq_last=seq, seq_prev=prev, checksum=checksum)

    def _checksum_ok(self, state: BookState, checksum: int, out: Emitter) -> bool:
        if checksum == 0:
            out.checksum(verified=False)
            return True
        if okx_book_checksum(state.book) == checksum:
            out.checksum(verified=True)
            return True
        return False

    def _snapshot_channel(self, index: int, channel: str, arg: dict[str, Any], data: list[Any], cap: int | None,
                          out: Emitter) -> None:
        if len(data) != 1:
            raise MessageError("malformed", f"a {channel} message must carry one book, got {len(data)}")
        d = as_object(data[0], "data[0]")
        inst_id = d.get("instId", arg.get("instId"))
        if type(inst_id) is not str:
            raise MessageError("malformed", "no instId")
        symbol = okx_instrument(inst_id)[0]
        bids, asks = self._levels(d, inst_id)
        ts, capture = stamp(epoch_ms(to_int(field(d, "ts"), "ts", allow_text=True), "ts"), cap)
        seq = _optional_int(d, "seqId")
        state = self.book(EXCHANGE, symbol, inst_id, channel)
        if seq is not None and state.last_seq is not None and seq < state.last_seq:
            raise MessageError("stale", f"seqId {seq} is older than the book's {state.last_seq}")
        state.book.clear()
        _apply(state, bids, asks)
        state.resync(seq)
        self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True, seq_last=seq)


def unknown_contract(inst_id: str) -> str:
    """How to give the contract value of an instrument the table does not know (the caller has the key)."""
    unit = "USD" if okx_instrument(inst_id)[3] == "USD" else "base units"
    return (f"no contract value (ctVal) known for {inst_id}: pass contract_sizes {{\"{inst_id}\": <ctVal>}} "
            f"to normalize_events or normalize_file (CLI: --contract-size {inst_id}=<ctVal>); ctVal is in "
            f"{unit}, from GET /api/v5/public/instruments")


def _apply(state: BookState, bids: list[TextLevel], asks: list[TextLevel]) -> None:
    book = state.book
    for p, s, pt, st in bids:
        book.set_bid(p, s, (pt, st))
    for p, s, pt, st in asks:
        book.set_ask(p, s, (pt, st))


def _optional_int(d: dict[str, Any], key: str) -> int | None:
    value = d.get(key)
    return None if value is None else to_int(value, key, allow_text=True)
