"""CME MDP 3.0 in the simplified JSON of the spec (§3.6): TradeSummary48 and Book46, plus SnapshotFullRefresh52.

Prices: md_entry_px × 10^px_exponent × display_factor (exponent -9 and factor 1 when absent).
Sizes: contracts × unit (BTC 5, MBT 0.1, ETH 50, MET 0.1 base units; `contract_sizes` keyed by
product root or symbol adds others). Symbols: `BTCZ5` → `BTC-USD-251226` (last Friday of the
contract month; MBT shares BTC's canonical symbol, told apart by `raw_symbol`). Side: aggressor 1
buy, 2 sell, 0 or absent unknown. Trade summaries with action Change (correction) or Delete (bust)
are counted as `trade_correction`, not emitted.

The book is level-indexed (≤ 10 levels a side): New inserts and shifts worse levels down,
Change and Overlay replace a level, Delete removes it and shifts up, DeleteThru clears the side,
DeleteFrom removes levels 1..n (unverified against the CME book-management pages: implementations
differ). Implied entries (E/F) are skipped; a J entry resets the book. Events are price-keyed
deltas: every level whose size changed, 0 for levels that left the book.

RptSeq is per instrument across templates: an entry with RptSeq <= last was already applied (A/B feed
arbitration) and is skipped; a message of such entries only is rejected as `stale`. A jump is a
gap: the book emits a `gap=true` marker and waits for a SnapshotFullRefresh52 (our simplified
recovery message: `rpt_seq` and level entries without actions) or a J reset. The first message of an
instrument starts its sequence on an empty book, as at the start of a session.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from quantdesk.tools.normalize.book import BookState
from quantdesk.tools.normalize.canonical import best_first, book_event, trade_event
from quantdesk.tools.normalize.contracts import CME_UNITS, scale
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import GapReport, MessageError
from quantdesk.tools.normalize.parser import Options, VenueParser
from quantdesk.tools.normalize.symbols import cme_contract
from quantdesk.tools.normalize.values import (
    Level,
    as_list,
    as_object,
    field,
    integer,
    positive,
    text,
    to_float,
    to_int,
)

EXCHANGE = "cme"
MESSAGES = ("TradeSummary48", "Book46 (New, Change, Delete, DeleteThru, DeleteFrom, Overlay)", "SnapshotFullRefresh52")
MAX_DEPTH = 10
_SIDES = {0: "unknown", 1: "buy", 2: "sell"}
_BOOK_TYPES = frozenset({"0", "1"})
_SKIPPED_TYPES = frozenset({"E", "F"})
_MAX_NS = 7_258_118_400 * 10**9  # 2200-01-01


@dataclass(frozen=True, slots=True)
class _Entry:
    rpt_seq: int
    action: int
    entry_type: str
    level: int
    price: float | None
    size: float


@dataclass(slots=True, eq=False)
class _Instrument:
    symbol: str
    raw_symbol: str
    unit: float
    last_seq: int | None = None
    bids: list[Level] | None = None
    asks: list[Level] | None = None
    state: BookState | None = None


class CmeParser(VenueParser):
    source = "cme"

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._instruments: dict[str, _Instrument] = {}

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        m = as_object(msg)
        template = text(m, "template")
        if template not in ("TradeSummary48", "Book46", "SnapshotFullRefresh52"):
            raise MessageError("unsupported_message", "this cme template is not normalized (accepted: "
                               + ", ".join(MESSAGES) + ")")
        ns = integer(m, "transact_time_ns", minimum=1)
        if ns >= _MAX_NS:
            raise MessageError("invalid_value", "transact_time_ns is beyond the year 2200")
        ts_ms = ns // 1_000_000
        capture = capture_ms if capture_ms is not None else ts_ms
        raw = m.get("symbol", self.options.symbol)
        if type(raw) is not str or not raw:
            raise MessageError("malformed", "no symbol: the message has none and no default symbol was given")
        inst = self._instrument(raw, dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).year)
        entries = as_list(field(m, "entries"), "entries")
        if template == "TradeSummary48":
            self._trades(index, inst, entries, ts_ms, capture, out)
        elif template == "Book46":
            self._book(index, inst, entries, ts_ms, capture, out)
        else:
            self._snapshot(index, inst, m, entries, ts_ms, capture, out)

    def _instrument(self, raw: str, year: int) -> _Instrument:
        inst = self._instruments.get(raw)
        if inst is None:
            root, _, expiry = cme_contract(raw, year)
            override = self.options.contract_sizes.get(raw, self.options.contract_sizes.get(root))
            base, unit = CME_UNITS.get(root, (root, override if override is not None else 0.0))
            if override is not None:
                unit = override
            if unit <= 0:
                raise MessageError("unknown_instrument", f"no contract unit known for CME product {root}: pass "
                                   f"contract_sizes {{\"{root}\": <base units per contract>}}")
            inst = self._instruments[raw] = _Instrument(f"{base}-USD-{expiry:%y%m%d}", raw, unit)
        return inst

    def _book_state(self, inst: _Instrument) -> BookState:
        if inst.state is None:
            inst.state = self.book(EXCHANGE, inst.symbol, inst.raw_symbol, "book46")
            inst.state.synced = True  # a new instrument starts on an empty book, as at the start of a session
            inst.bids, inst.asks = [], []
        return inst.state

    # -- sequence --------------------------------------------------------------------------------

    def _sequence(self, index: int, inst: _Instrument, entries: list[_Entry],
                  out: Emitter) -> tuple[list[_Entry], bool]:
        """The entries not seen before, and whether a gap precedes them; updates the instrument's RptSeq."""
        fresh: list[_Entry] = []
        gap = False
        last = inst.last_seq
        for entry in entries:
            if last is not None and entry.rpt_seq <= last:
                continue
            if last is not None and entry.rpt_seq != last + 1 and not gap:
                gap = True
                channel = inst.state.channel if inst.state is not None else "book46"
                out.gap(GapReport(index, EXCHANGE, inst.symbol, inst.raw_symbol, channel, f"RptSeq {last + 1}",
                                  f"RptSeq {entry.rpt_seq}"))
            last = entry.rpt_seq
            fresh.append(entry)
        if entries and not fresh:
            raise MessageError("stale", f"every RptSeq in the message is at or before {inst.last_seq}")
        inst.last_seq = last
        return fresh, gap

    def _gap_marker(self, index: int, inst: _Instrument, fresh: list[_Entry], ts: int, capture: int,
                    out: Emitter) -> None:
        """Drop the book after a gap and tell consumers with an empty `gap=true` event."""
        state = self._book_state(inst)
        state.gaps += 1
        state.last_seq = inst.last_seq
        state.desync(f"RptSeq gap at input {index}")
        inst.bids, inst.asks = [], []
        out.emit(index, book_event(EXCHANGE, inst.symbol, inst.raw_symbol, ts, capture, [], [], is_snapshot=False,
                                   best_bid=None, best_ask=None, seq_first=fresh[0].rpt_seq,
                                   seq_last=fresh[-1].rpt_seq, gap=True))

    # -- templates -------------------------------------------------------------------------------

    def _trades(self, index: int, inst: _Instrument, raw_entries: list[Any], ts: int, capture: int,
                out: Emitter) -> None:
        parsed = []
        for i, item in enumerate(raw_entries):
            e = as_object(item, f"entries[{i}]")
            px = _price(e, i)
            if px is None or px <= 0:
                raise MessageError("invalid_value", f"entries[{i}] has no positive md_entry_px")
            contracts = positive(field(e, "md_entry_size"), f"entries[{i}].md_entry_size")
            side = _SIDES.get(to_int(e.get("aggressor_side", 0), "aggressor_side"))
            if side is None:
                raise MessageError("invalid_value", f"entries[{i}].aggressor_side must be 0, 1 or 2")
            trade_id = str(to_int(field(e, "md_trade_entry_id"), "md_trade_entry_id", minimum=0))
            action = to_int(e.get("md_update_action", 0), "md_update_action")
            seq = integer(e, "rpt_seq", minimum=0)
            parsed.append((_Entry(seq, action, "T", 0, px, contracts), side, trade_id))
        fresh, gap = self._sequence(index, inst, [p[0] for p in parsed], out)
        by_seq = {p[0].rpt_seq: p for p in parsed}
        marked = gap and inst.state is not None and inst.state.synced
        if marked:
            self._gap_marker(index, inst, fresh, ts, capture, out)
        events = []
        for entry in fresh:
            _, side, trade_id = by_seq[entry.rpt_seq]
            if entry.action != 0 or entry.price is None:
                continue
            size = scale(entry.size, inst.unit)
            events.append(trade_event(EXCHANGE, inst.symbol, inst.raw_symbol, ts, capture, side, entry.price, size,
                                      trade_id, self.notional(inst.symbol, entry.price, size),
                                      seq_first=entry.rpt_seq, seq_last=entry.rpt_seq))
        for event in events:
            out.emit(index, event)
        if not events and not marked:
            out.non_event(index, "trade_correction" if fresh else "empty")

    def _book(self, index: int, inst: _Instrument, raw_entries: list[Any], ts: int, capture: int,
              out: Emitter) -> None:
        parsed = [_book_entry(as_object(item, f"entries[{i}]"), i) for i, item in enumerate(raw_entries)]
        state = self._book_state(inst)
        previous = inst.last_seq
        fresh, gap = self._sequence(index, inst, parsed, out)
        state.last_seq = inst.last_seq
        if gap:
            self._gap_marker(index, inst, fresh, ts, capture, out)
            return
        if not fresh:
            out.non_event(index, "empty")
            return
        if not state.synced and not any(e.entry_type == "J" for e in fresh):
            raise MessageError("awaiting_snapshot", f"the {inst.raw_symbol} book waits for a snapshot after a gap")
        before_bids, before_asks = inst.bids or [], inst.asks or []
        try:
            bids, asks, reset = _apply_ops(before_bids, before_asks, fresh, inst.unit)
        except MessageError as err:
            state.desync(err.reason)
            inst.bids, inst.asks = [], []
            raise
        if reset:
            state.synced = True
        if bids == before_bids and asks == before_asks and not reset and all(
                e.entry_type in _SKIPPED_TYPES for e in fresh):
            out.non_event(index, "empty", {"implied_entries": len(fresh)})
            return
        inst.bids, inst.asks = bids, asks
        _mirror(state, bids, asks)
        delta_bids, delta_asks = _delta(before_bids, bids), _delta(before_asks, asks)
        delta_bids, delta_asks = best_first(delta_bids, delta_asks)
        if not self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, bids=delta_bids, asks=delta_asks,
                            is_snapshot=False, seq_first=fresh[0].rpt_seq, seq_last=fresh[-1].rpt_seq,
                            seq_prev=previous):
            inst.bids, inst.asks = [], []

    def _snapshot(self, index: int, inst: _Instrument, m: dict[str, Any], raw_entries: list[Any], ts: int,
                  capture: int, out: Emitter) -> None:
        seq = integer(m, "rpt_seq", minimum=0)
        bids: dict[int, Level] = {}
        asks: dict[int, Level] = {}
        for i, item in enumerate(raw_entries):
            e = as_object(item, f"entries[{i}]")
            entry_type = text(e, "md_entry_type")
            if entry_type in _SKIPPED_TYPES:
                continue
            if entry_type not in _BOOK_TYPES:
                raise MessageError("invalid_value", f"entries[{i}].md_entry_type must be 0, 1, E or F")
            level = integer(e, "md_price_level", minimum=1)
            px = _price(e, i)
            if px is None or px <= 0 or level > MAX_DEPTH:
                raise MessageError("invalid_value", f"entries[{i}] needs a positive price at level 1..{MAX_DEPTH}")
            size = scale(positive(field(e, "md_entry_size"), f"entries[{i}].md_entry_size"), inst.unit)
            (bids if entry_type == "0" else asks)[level] = (px, size)
        state = self._book_state(inst)
        if state.synced and inst.last_seq is not None and seq < inst.last_seq:
            raise MessageError("stale", f"snapshot RptSeq {seq} is older than the book's {inst.last_seq}")
        ordered_bids = [bids[k] for k in sorted(bids)]
        ordered_asks = [asks[k] for k in sorted(asks)]
        if not (_ordered(ordered_bids, descending=True) and _ordered(ordered_asks, descending=False)):
            raise MessageError("invalid_value", "snapshot levels are not in price order")
        inst.last_seq = seq
        inst.bids, inst.asks = ordered_bids, ordered_asks
        self.replace(state, ordered_bids, ordered_asks, seq)
        if not self.publish(index, state, out, timestamp_ms=ts, capture_ms=capture, is_snapshot=True, seq_last=seq):
            inst.bids, inst.asks = [], []


def _price(e: dict[str, Any], i: int) -> float | None:
    mantissa = e.get("md_entry_px")
    if mantissa is None:
        return None
    value = to_int(mantissa, f"entries[{i}].md_entry_px")
    exponent = to_int(e.get("px_exponent", -9), f"entries[{i}].px_exponent", minimum=-18)
    if exponent > 18:
        raise MessageError("invalid_value", f"entries[{i}].px_exponent is out of range")
    factor = to_float(e.get("display_factor", 1), f"entries[{i}].display_factor")
    # Integer division by a power of ten is correctly rounded; a float power would not be.
    scaled = value / 10**-exponent if exponent < 0 else float(value * 10**exponent)
    result = scaled * factor if factor != 1 else scaled
    if not math.isfinite(result):
        raise MessageError("invalid_value", f"entries[{i}] price is not finite")
    return result


def _book_entry(e: dict[str, Any], i: int) -> _Entry:
    entry_type = text(e, "md_entry_type")
    if entry_type not in _BOOK_TYPES and entry_type not in _SKIPPED_TYPES and entry_type != "J":
        raise MessageError("invalid_value", f"entries[{i}].md_entry_type must be 0, 1, E, F or J")
    action = to_int(field(e, "md_update_action"), f"entries[{i}].md_update_action")
    if not 0 <= action <= 5:
        raise MessageError("invalid_value", f"entries[{i}].md_update_action must be 0..5")
    seq = integer(e, "rpt_seq", minimum=0)
    if entry_type == "J":
        return _Entry(seq, action, entry_type, 1, None, 0.0)
    level = integer(e, "md_price_level", minimum=1)
    if level > MAX_DEPTH:
        raise MessageError("invalid_value", f"entries[{i}].md_price_level must be 1..{MAX_DEPTH}")
    px = _price(e, i)
    if action in (0, 1, 2, 5) and (px is None or px <= 0):
        raise MessageError("invalid_value", f"entries[{i}] needs a positive md_entry_px")
    size = to_float(e.get("md_entry_size", 0), f"entries[{i}].md_entry_size")
    if size < 0 or (action in (0, 1, 5) and size <= 0):
        raise MessageError("invalid_value", f"entries[{i}].md_entry_size must be positive")
    return _Entry(seq, action, entry_type, level, px, size)


def _apply_ops(bids: list[Level], asks: list[Level], entries: list[_Entry],
               unit: float) -> tuple[list[Level], list[Level], bool]:
    """The book after the entries, computed on copies; an impossible operation raises."""
    new_bids, new_asks = list(bids), list(asks)
    reset = False
    for e in entries:
        if e.entry_type == "J":
            new_bids.clear()
            new_asks.clear()
            reset = True
            continue
        if e.entry_type in _SKIPPED_TYPES:
            continue
        side = new_bids if e.entry_type == "0" else new_asks
        i = e.level - 1
        if e.action == 3:  # DeleteThru: the whole side
            side.clear()
        elif e.action == 4:  # DeleteFrom: levels 1..n
            del side[: e.level]
        elif e.action == 0:  # New
            if i > len(side):
                raise MessageError("invalid_book_operation", f"New at level {e.level} on a {len(side)}-level side")
            assert e.price is not None
            side.insert(i, (e.price, scale(e.size, unit)))
            del side[MAX_DEPTH:]
        else:
            if i >= len(side):
                raise MessageError("invalid_book_operation", f"action {e.action} at missing level {e.level}")
            if e.action in (1, 2) and side[i][0] != e.price:
                raise MessageError("invalid_book_operation",
                                   f"level {e.level} holds price {side[i][0]}, the entry says {e.price}")
            if e.action == 2:
                del side[i]
            else:
                assert e.price is not None
                side[i] = (e.price, scale(e.size, unit))
    if not (_ordered(new_bids, descending=True) and _ordered(new_asks, descending=False)):
        raise MessageError("invalid_book_operation", "the operations leave a side out of price order")
    return new_bids, new_asks, reset


def _ordered(side: list[Level], *, descending: bool) -> bool:
    prices = [p for p, _ in side]
    return all((a > b) if descending else (a < b) for a, b in zip(prices, prices[1:], strict=False))


def _delta(before: list[Level], after: list[Level]) -> list[Level]:
    old, new = dict(before), dict(after)
    changed = [(p, s) for p, s in after if old.get(p) != s]
    return changed + [(p, 0.0) for p in old if p not in new]


def _mirror(state: BookState, bids: list[Level], asks: list[Level]) -> None:
    state.book.clear()
    state.book.apply(bids, asks)
