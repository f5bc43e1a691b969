"""The desk engine: orders, matching, fills, positions, balances, funding, liquidation and equity, on one clock.

Everything that changes state happens under one re-entrant lock, in steps: a step is one SQLite
transaction (an order with its immediate fills, one trade print with the resting fills it causes,
one funding settlement, one liquidation, one cancel-all) followed by the publication of its events.
A step that fails leaves the store as it was and the engine reloads its state from the store.

The market moves only through `advance_to` (see `advance.py`), which processes every book, trade,
funding time, liquidation and equity sample in between in one fixed order. Orders are matched by
the rules in README.md beside this module.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from quantdesk.server.errors import Conflict, InvalidArgument, NotFound, Problem, QuantdeskError
from quantdesk.tools.desk.accounting import (
    BALANCE_DECIMALS,
    add_balance,
    apply_perp_fill,
    cross_liquidation_price,
    fee_usd,
    isolated_liquidation_price,
    maintenance_margin,
    slippage_bps,
    spot_cash_flows,
    unrealized_pnl,
)
from quantdesk.tools.desk.book import LiveBook
from quantdesk.tools.desk.clock import Clock, SimulatedClock
from quantdesk.tools.desk.config import DeskConfig
from quantdesk.tools.desk.events import (
    POSITION_KEYS,
    EquityEvent,
    FillEvent,
    FundingEvent,
    LiquidationEvent,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PositionEvent,
)
from quantdesk.tools.desk.gate import AccountSnapshot, OpenGate, OrderGate, OrderIntent
from quantdesk.tools.desk.instruments import SETTLEMENT_ASSET, Instrument, InstrumentTable
from quantdesk.tools.desk.ledger import Ledger
from quantdesk.tools.desk.model import (
    NO_REASONS,
    OPEN_STATUSES,
    EquitySample,
    Fill,
    FundingPayment,
    IntentContext,
    Liquidity,
    MarginMode,
    Order,
    OrderRequest,
    Position,
    Reason,
    side_sign,
)
from quantdesk.tools.desk.resting import RestingOrders, pop, top
from quantdesk.tools.desk.validation import check_shape, grid_problems

if TYPE_CHECKING:
    from quantdesk.tools.bus.bus import BusEvent
    from quantdesk.tools.desk.advance import AdvanceReport, MarketProcessor
    from quantdesk.tools.desk.feed import MarketFeed

DEFAULT_LEVERAGE = 5.0
_TOOL_CONTEXT = IntentContext()
_DEFERRED: Any = object()
"""`_conn` inside a deferred step: no transaction is open; its rows wait in memory for `commit_pending`."""
_FAILED_KEPT = 64
PRINT_GROUP_FILLS = 1000
"""An advance commits a group of trade prints once they have made this many fills (or at the next breaker)."""
MAX_ADVANCE_MS = 31 * 86_400_000
_OPEN_LIMIT = ("open", "partially_filled")


@dataclass(slots=True)
class MarketState:
    """What the engine knows of one symbol's market at the current time."""

    book: LiveBook | None = None
    last_price: float | None = None
    last_trade_ms: int | None = None
    mark: float | None = None
    index: float | None = None
    updated_ms: int | None = None
    premium_samples: list[float] = field(default_factory=list)
    period_start_ms: int | None = None
    last_funding: FundingPayment | None = None

    def reference_mark(self) -> float | None:
        return self.mark if self.mark is not None else self.last_price


@dataclass(slots=True)
class PlaceResult:
    """An order as placed (or replayed) and the fills it made at once; a fresh object per call, to read."""

    order: Order
    fills: list[Fill]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CancelResult:
    order_id: str
    client_order_id: str | None
    symbol: str
    ok: bool
    status: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "client_order_id": self.client_order_id, "symbol": self.symbol,
                "ok": self.ok, "status": self.status, "error": self.error}


@dataclass(slots=True)
class EngineMetrics:
    orders_submitted: int = 0
    orders_accepted: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    fills: int = 0
    fills_by_liquidity: Counter[str] = field(default_factory=Counter)
    cancels: int = 0
    liquidations: int = 0
    funding_settlements: int = 0
    equity_samples: int = 0
    market_events: int = 0


class DeskEngine:
    def __init__(self, *, instruments: InstrumentTable, ledger: Ledger, config: DeskConfig, clock: Clock,
                 feed_factory: Callable[[int], MarketFeed], publish: Callable[[BusEvent], object],
                 gate: OrderGate | None = None,
                 publish_all: Callable[[list[BusEvent]], object] | None = None) -> None:
        self.instruments = instruments
        self.ledger = ledger
        self.config = config
        self.clock = clock
        self.gate: OrderGate = gate or OpenGate()
        self._feed_factory = feed_factory
        self._publish = publish
        self._publish_all = publish_all
        self.lock = threading.RLock()
        self.metrics = EngineMetrics()
        self._interrupt = threading.Event()
        self._processor: MarketProcessor | None = None
        self._conn: Any = None
        self._events: list[BusEvent] = []
        self._dirty_orders: dict[str, Order] = {}
        self._new_orders: set[str] = set()
        """Orders created in the current step: inserted; the other dirty ones are stored already: updated."""
        self._dirty_positions: dict[str, Position] = {}
        self._entries: list[tuple[Any, ...]] = []
        self._fills: list[tuple[Any, ...]] = []
        """`Fill.state()` of the step's fills, to write."""
        self._group_fills = 0
        self._group_breach = self._group_changed = False
        self._pending = False
        """Deferred steps (see `_step`) have changes that only live in memory so far."""
        self._pending_events: list[BusEvent] = []
        self._generation = 1
        """The commit group deferred steps add to now; it goes up by one at each commit or abandonment."""
        self._failed: dict[int, BaseException] = {}
        self._listeners: list[Callable[[BaseException | None], None]] = []
        self.pending_steps = 0
        """Deferred steps in the pending group."""
        self.commits = 0
        """Transactions committed by this engine (a step, or a group of deferred steps)."""
        self.markets: dict[str, MarketState] = {s: MarketState() for s in instruments.by_symbol}
        self._load()

    # --- state -------------------------------------------------------------------------------------

    def _load(self) -> None:
        stored = self.ledger.load()
        meta = stored.meta
        if "origin_ms" not in meta:
            self._create()
            stored = self.ledger.load()
            meta = stored.meta
        self.origin_ms = int(meta["origin_ms"])
        self.now_ms = int(meta["now_ms"])
        self._saved_now = self.now_ms
        self.peak_equity = float(meta["peak_equity_usd"])
        self.day_start_equity = float(meta["day_start_equity_usd"])
        self.day_key = int(meta["day_key"])
        self.open_orders: dict[str, Order] = {o.order_id: o for o in stored.open_orders}
        self.by_client = stored.client_ids
        self.balances = stored.balances
        self.positions = stored.positions
        self.settings: dict[str, tuple[float, MarginMode]] = stored.settings
        self._order_seq = stored.counters["order"]
        self._fill_seq = stored.counters["fill"]
        self._journal_seq = stored.counters["journal"]
        self.resting: dict[str, RestingOrders] = {s: RestingOrders() for s in self.instruments.by_symbol}
        self._reserved: dict[str, float] = {}
        self._reserved_by_order: dict[str, tuple[str, float]] = {}
        self._reduce_only: dict[str, dict[str, Order]] = {s: {} for s in self.instruments.by_symbol}
        for order in self.open_orders.values():
            self._index(order)
            self._rebook(order)
            if order.reduce_only:
                self._reduce_only[order.symbol][order.order_id] = order
        for symbol, funding in stored.last_funding.items():
            self.markets[symbol].last_funding = funding
        if isinstance(self.clock, SimulatedClock) and self.clock.now_ms() < self.now_ms:
            self.clock.set(self.now_ms)

    def _create(self) -> None:
        """First start: the clock's origin, the starting deposit and every perpetual's default settings."""
        if self.config.start_time_ms is not None:
            origin = self.config.start_time_ms
        else:
            origin = self.clock.now_ms()
        origin -= origin % 1000
        balances: dict[str, float] = {}
        with self.ledger.transaction() as conn:
            seq = 0
            for asset, amount in sorted(self.config.initial_balances.items()):
                seq += 1
                value = add_balance(balances, asset, amount)
                self.ledger.put_deposit(conn, seq, asset, amount, origin)
                self.ledger.put_entries(conn, [(seq, origin, "deposit", asset, amount, value, None, None)])
            for instrument in self.instruments.perpetuals():
                seq += 1
                self.ledger.put_setting(conn, seq, instrument.symbol, min(DEFAULT_LEVERAGE, instrument.max_leverage),
                                        "cross", origin)
            equity = balances.get(SETTLEMENT_ASSET, 0.0)
            self.ledger.put_meta(conn, {"origin_ms": str(origin), "now_ms": str(origin),
                                        "peak_equity_usd": repr(equity), "day_start_equity_usd": repr(equity),
                                        "day_key": str(_day_key(origin))})

    def reload(self) -> None:
        """Throw away the in-memory state and read it back from the store (after a failed step)."""
        with self.lock:
            if self._pending or self._listeners:
                self._abandon(RuntimeError("the desk was reloaded from its store before these orders were written"))
            else:
                self._reload_state()

    def _reload_state(self) -> None:
        markets = self.markets
        self._load()
        self.markets = markets

    @contextmanager
    def _step(self, defer: bool = False) -> Iterator[Any]:
        """One transaction; events are published after it commits. Re-entrant: an inner step joins the outer.

        A deferred step (`defer`, an order placed through a door) opens no transaction: its changes are made in
        memory and its rows wait with those of the steps deferred after it, until `commit_pending` writes the
        group in one transaction (group commit: one commit for the concurrent orders of several callers). The
        caller must not answer before its generation (`pending_generation`) is committed (`on_commit`). Any
        other step, and every read of the ledger, commits what is pending first.
        """
        if self._conn is not None:
            yield self._conn
            return
        if defer:
            events: list[BusEvent] = []
            self._events = events
            self._conn = _DEFERRED
            try:
                yield _DEFERRED
            except BaseException as exc:
                self._conn = None
                self._events = []
                self._abandon(exc)
                raise
            self._conn = None
            self._events = []
            if events:
                self._pending_events.extend(events)
                self._pending = True
                self.pending_steps += 1
            return
        if self._pending:
            self.commit_pending()
        events = []
        self._events = events
        try:
            with self.ledger.transaction() as conn:
                self._conn = conn
                try:
                    yield conn
                    self._flush(conn)
                finally:
                    self._conn = None
        except BaseException:
            self._events = []
            self._drop_buffers()
            self.gate.discard()
            self._reload_state()
            raise
        self.commits += 1
        self._events = []
        self._publish_events(events)

    def _flush(self, conn: Any) -> None:
        """Write what the step changed so far, one statement per table, each row once (an order may change
        several times in a step); the buffers start empty again."""
        if self._dirty_orders:
            new = self._new_orders
            if new:
                self.ledger.insert_orders(conn, [o for o in self._dirty_orders.values() if o.order_id in new])
                stored = [o for o in self._dirty_orders.values() if o.order_id not in new]
                new.clear()
            else:
                stored = list(self._dirty_orders.values())
            if stored:
                self.ledger.update_orders(conn, stored)
            self._dirty_orders.clear()
        if self._fills:
            self.ledger.put_fill_states(conn, self._fills)
            self._fills.clear()
        if self._entries:
            self.ledger.put_entries(conn, self._entries)
            self._entries.clear()
        if self._dirty_positions:
            self.ledger.put_positions(conn, list(self._dirty_positions.values()))
            self._dirty_positions.clear()
        self.gate.flush(conn)
        if self.now_ms != self._saved_now:
            # events at or before the desk time count as processed: a restart resumes after them
            self.ledger.put_meta(conn, {"now_ms": str(self.now_ms)})
            self._saved_now = self.now_ms

    @property
    def pending_generation(self) -> int | None:
        """The commit group that holds changes made by deferred steps and not yet written, if any."""
        return self._generation if self._pending else None

    def on_commit(self, generation: int, listener: Callable[[BaseException | None], None]) -> bool:
        """Have `listener(None)` called once `generation` is committed (`listener(error)` if it is abandoned);
        False, and no call, when it is committed already; its error when it was abandoned. The listener runs in
        the committing thread."""
        with self.lock:
            failed = self._failed.get(generation)
            if failed is not None:
                raise failed
            if generation < self._generation:
                return False
            self._listeners.append(listener)
            return True

    def commit_pending(self) -> None:
        """Write what deferred steps left in memory in one transaction, publish their events, and tell the
        callers waiting on this group. On a failure the desk goes back to what is stored and they get the error."""
        with self.lock:
            inside = self._conn is _DEFERRED
            if not (self._pending or inside):
                return
            try:
                with self.ledger.transaction() as conn:
                    self._flush(conn)
            except BaseException as exc:
                if not inside:  # inside a deferred step its own handler abandons the group
                    self._abandon(exc)
                raise
            events, self._pending_events = self._pending_events, []
            listeners, self._listeners = self._listeners, []
            self._pending = False
            self.pending_steps = 0
            self._generation += 1
            self.commits += 1
        self._publish_events(events)
        for listener in listeners:
            listener(None)

    def _abandon(self, error: BaseException) -> None:
        """A deferred step or a group commit failed: nothing of the group is written; the desk reloads what is
        stored and every caller waiting on the group gets the error."""
        self._drop_buffers()
        self.gate.discard()
        self._pending_events = []
        self._pending = False
        self.pending_steps = 0
        listeners, self._listeners = self._listeners, []
        self._failed[self._generation] = error
        if len(self._failed) > _FAILED_KEPT:
            del self._failed[min(self._failed)]
        self._generation += 1
        self._reload_state()
        for listener in listeners:
            listener(error)

    def _readable(self) -> None:
        """Before reading desk rows back from the ledger: write those that so far only live in memory."""
        if self._conn is _DEFERRED or (self._conn is None and self._pending):
            self.commit_pending()
        elif self._conn is not None:
            self._flush(self._conn)

    def _publish_events(self, events: list[BusEvent]) -> None:
        if not events:
            return
        if self._publish_all is not None:
            self._publish_all(events)
        else:
            for event in events:
                self._publish(event)

    def _drop_buffers(self) -> None:
        self._dirty_orders.clear()
        self._new_orders.clear()
        self._fills.clear()
        self._entries.clear()
        self._dirty_positions.clear()

    def emit(self, event: BusEvent) -> None:
        """Queue an event to publish when the current step commits (dropped if it rolls back)."""
        self._events.append(event)

    def _save_meta(self, conn: Any) -> None:
        self._saved_now = self.now_ms
        self.ledger.put_meta(conn, {"now_ms": str(self.now_ms), "peak_equity_usd": repr(self.peak_equity),
                                    "day_start_equity_usd": repr(self.day_start_equity),
                                    "day_key": str(self.day_key)})

    # --- market ----------------------------------------------------------------------------------

    def processor(self) -> MarketProcessor:
        """The market processor, built on first need (it loads numpy and the feed)."""
        if self._processor is None:
            from quantdesk.tools.desk.advance import MarketProcessor

            feed = self._feed_factory(self.origin_ms)
            self._processor = MarketProcessor(self, feed)
            self._processor.prime(self.now_ms)
            if self.metrics.equity_samples == 0 and not self.ledger.list_equity(since_ms=None, until_ms=None,
                                                                                 limit=1):
                self.sample_equity(self.now_ms)
        return self._processor

    @property
    def feed(self) -> MarketFeed:
        return self.processor().feed

    def sync(self, max_step_ms: int | None = None) -> None:
        """Bring the market up to the clock (real clock; a simulated clock moves only by `advance`).

        A caller (an order) catches up completely, so it acts at the present; the runner passes
        `max_step_ms` so that a long catch-up after a restart releases the lock between steps.
        """
        with self.lock:
            processor = self.processor()
            if self.clock.mode != "real":
                return
            target = self.clock.now_ms()
            while target > self.now_ms:
                report = processor.advance(min(target, self.now_ms + (max_step_ms or MAX_ADVANCE_MS)))
                if max_step_ms is not None or report.interrupted:
                    return

    def advance(self, until_ms: int) -> AdvanceReport:
        if self.clock.mode != "simulated":
            raise Conflict("the desk runs on the real clock; advance_clock works only with a simulated clock "
                           "(start the server with QUANTDESK_DESK_CLOCK=simulated)")
        with self.lock:
            if until_ms < self.now_ms:
                raise InvalidArgument.from_problems([Problem("$.until_ms", f"is before the desk's time {self.now_ms}")])
            if until_ms - self.now_ms > MAX_ADVANCE_MS:
                raise InvalidArgument.from_problems([Problem("$.seconds", "one call advances at most 31 days")])
            self._interrupt.clear()
            report = self.processor().advance(until_ms)
            assert isinstance(self.clock, SimulatedClock)
            self.clock.set(self.now_ms)
            with self._step() as conn:
                self._save_meta(conn)
            return report

    @contextmanager
    def print_group(self) -> Iterator[None]:
        """Trade prints handled inside share one transaction (each print whole, with every fill and trigger it
        caused): a crash loses or keeps them together, and the desk time stored with them says so. A print
        that trips a circuit breaker ends the group (see `group_done`); the breaker acts once it commits."""
        self._group_fills = self.metrics.fills
        self._group_breach = False
        with self._step():
            yield
        if self._group_changed:
            self._group_changed = False
            self._after_change()

    @property
    def group_done(self) -> bool:
        """The current print group should commit now: a breaker is due, or it holds enough fills."""
        return self._group_breach or self.metrics.fills - self._group_fills >= PRINT_GROUP_FILLS

    def _changed(self) -> None:
        """After a change of money or positions: the breakers now, or, inside a print group, a note that the
        group must end here and run them once it commits (nothing may act on uncommitted state)."""
        if self._conn is None:
            self._after_change()
            return
        self._group_changed = True
        account = self.account()
        if account.equity_usd > self.peak_equity:
            self.peak_equity = account.equity_usd
        if self.gate.breach(account) is not None:
            self._group_breach = True

    def request_interrupt(self) -> None:
        """Ask a running advance to stop at its next step (the kill switch must not wait for a long advance)."""
        self._interrupt.set()

    def clear_interrupt(self) -> None:
        """The kill that asked has the lock now: later advances run normally."""
        self._interrupt.clear()

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def set_market(self, symbol: str, *, book: LiveBook | None = None, mark: float | None = None,
                   index: float | None = None, trade: tuple[int, float] | None = None, at_ms: int) -> None:
        market = self.markets[symbol]
        if book is not None:
            market.book = book
        if mark is not None and mark == mark:
            market.mark = mark
        if index is not None and index == index:
            market.index = index
        if trade is not None:
            market.last_trade_ms, market.last_price = trade
        market.updated_ms = at_ms

    def market(self, instrument: Instrument) -> MarketState:
        self.processor()
        return self.markets[instrument.symbol]

    # --- accounts --------------------------------------------------------------------------------

    def position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            leverage, mode = self.settings.get(symbol, (DEFAULT_LEVERAGE, "cross"))
            position = self.positions[symbol] = Position(symbol, margin_mode=mode, leverage=leverage)
        return position

    def peek_position(self, symbol: str) -> Position:
        """The position, or a flat one with the symbol's settings when it has never traded (not stored)."""
        position = self.positions.get(symbol)
        if position is None:
            leverage, mode = self.settings.get(symbol, (DEFAULT_LEVERAGE, "cross"))
            position = Position(symbol, margin_mode=mode, leverage=leverage)
        return position

    def _mark(self, symbol: str, fallback: float = 0.0) -> float:
        mark = self.markets[symbol].reference_mark()
        return mark if mark is not None else fallback

    def holding(self, asset: str) -> float:
        return self.balances.get(asset, 0.0)

    def account(self) -> AccountSnapshot:
        return self._snapshot(self._account_core())

    def _snapshot(self, core: tuple[float, ...]) -> AccountSnapshot:
        """The account from `_account_core` plus what resting orders change (reservations, their count)."""
        equity, wallet, gross, net, isolated, cross_im, cross_upnl = core
        available = wallet - self._reserved.get(SETTLEMENT_ASSET, 0.0) - isolated - cross_im + cross_upnl
        return AccountSnapshot(self.now_ms, equity, wallet, available, gross, net, max(self.peak_equity, equity),
                               self.day_start_equity, len(self.open_orders))

    def _account_core(self) -> tuple[float, ...]:
        """What only balances, positions and marks change: (equity, wallet, gross, net, isolated margin,
        cross initial margin, cross unrealized P&L). A batch keeps it from one order to the next until a fill."""
        balances = self.balances
        wallet = balances.get(SETTLEMENT_ASSET, 0.0)
        upnl = gross = net = isolated = cross_im = cross_upnl = spot_value = 0.0
        markets = self.markets
        for symbol, p in self.positions.items():
            size = p.size
            if size == 0.0:
                continue
            market = markets[symbol]
            mark = market.mark if market.mark is not None else market.last_price
            if mark is None:
                mark = p.entry_price
            pnl = size * (mark - p.entry_price)
            upnl += pnl
            notional = size * mark
            gross += abs(notional)
            net += notional
            if p.margin_mode == "isolated":
                isolated += p.isolated_margin_usd
            else:
                cross_im += abs(notional) / p.leverage
                cross_upnl += pnl
        if len(balances) > 1:
            for asset, amount in balances.items():
                if asset == SETTLEMENT_ASSET or amount == 0.0:
                    continue
                spot = self.instruments.spot_for(asset)
                price = self._mark(spot.symbol) if spot else 0.0
                spot_value += amount * price
                gross += abs(amount * price)
                net += amount * price
        return wallet + upnl + spot_value, wallet, gross, net, isolated, cross_im, cross_upnl

    def _cross_excess(self) -> float:
        """Cross collateral plus cross unrealized P&L minus cross maintenance margin (liquidation below 0)."""
        excess = self.balances.get(SETTLEMENT_ASSET, 0.0)
        for symbol, p in self.positions.items():
            if p.size == 0.0:
                continue
            if p.margin_mode == "isolated":
                excess -= p.isolated_margin_usd
                continue
            mark = self._mark(symbol, p.entry_price)
            rate = self.instruments.by_symbol[symbol].maintenance_margin_rate or 0.0
            excess += unrealized_pnl(p, mark) - maintenance_margin(p, mark, rate)
        return excess

    def liquidation_price(self, position: Position) -> float | None:
        rate = self.instruments.by_symbol[position.symbol].maintenance_margin_rate or 0.0
        if position.size == 0.0:
            return None
        if position.margin_mode == "isolated":
            return isolated_liquidation_price(position, rate)
        mark = self._mark(position.symbol, position.entry_price)
        own = unrealized_pnl(position, mark) - maintenance_margin(position, mark, rate)
        return cross_liquidation_price(position, rate, self._cross_excess() - own)

    def liquidation_plan(self) -> tuple[dict[str, tuple[float, float]], float, dict[str, float]]:
        """What the market processor scans for: isolated (size, liquidation price) per symbol, the cross
        excess now and each cross symbol's sensitivity d(excess)/d(mark) = size - |size| x rate."""
        isolated: dict[str, tuple[float, float]] = {}
        slopes: dict[str, float] = {}
        for symbol, p in self.positions.items():
            if p.size == 0.0:
                continue
            rate = self.instruments.by_symbol[symbol].maintenance_margin_rate or 0.0
            if p.margin_mode == "isolated":
                price = isolated_liquidation_price(p, rate)
                if price is not None:
                    isolated[symbol] = (p.size, price)
            else:
                slopes[symbol] = p.size - abs(p.size) * rate
        return isolated, (self._cross_excess() if slopes else 0.0), slopes

    # --- reservations and resting orders ------------------------------------------------------------

    def _reservation(self, order: Order) -> tuple[str, float] | None:
        if not order.is_open or order.reduce_only:
            return None
        instrument = self.instruments.by_symbol[order.symbol]
        price = order.price if order.price is not None else order.stop_price
        if price is None:
            return None
        remaining = order.remaining
        if instrument.is_perpetual:
            leverage = self.settings.get(order.symbol, (DEFAULT_LEVERAGE, "cross"))[0]
            return SETTLEMENT_ASSET, remaining * price / leverage
        if order.side == "buy":
            return instrument.quote, remaining * price * (1.0 + instrument.taker_fee_bps * 1e-4)
        return instrument.base, remaining

    def _rebook(self, order: Order) -> None:
        by_order = self._reserved_by_order
        old = by_order.pop(order.order_id, None)
        if old is not None:
            self._reserved[old[0]] = self._reserved.get(old[0], 0.0) - old[1]
        if order.status in OPEN_STATUSES and not order.reduce_only:
            new = self._reservation(order)
            if new is not None and new[1] > 0:
                by_order[order.order_id] = new
                self._reserved[new[0]] = self._reserved.get(new[0], 0.0) + new[1]
        if not by_order and self._reserved:
            self._reserved.clear()  # no drift: with nothing reserved the totals are exactly zero

    def _opened(self, order: Order) -> None:
        self.open_orders[order.order_id] = order
        if order.reduce_only:
            self._reduce_only[order.symbol][order.order_id] = order

    def _closed(self, order: Order) -> None:
        self.open_orders.pop(order.order_id, None)
        self._reduce_only[order.symbol].pop(order.order_id, None)

    def _index(self, order: Order) -> None:
        if order.status == "pending_trigger":
            self.resting[order.symbol].add_stop(order)
        elif order.status in _OPEN_LIMIT and order.price is not None:
            self.resting[order.symbol].add_limit(order)

    def _is_resting_limit(self, order_id: str) -> bool:
        order = self.open_orders.get(order_id)
        return order is not None and order.status in _OPEN_LIMIT

    def _is_pending_stop(self, order_id: str) -> bool:
        order = self.open_orders.get(order_id)
        return order is not None and order.status == "pending_trigger"

    def trigger_levels(self, symbol: str) -> tuple[float, float, float, float]:
        """(highest resting buy, lowest resting sell, lowest buy stop, highest sell stop); inf when none."""
        inf = float("inf")
        r = self.resting[symbol]
        bid = top(r.bids, self._is_resting_limit)
        ask = top(r.asks, self._is_resting_limit)
        buy_stop = top(r.buy_stops, self._is_pending_stop)
        sell_stop = top(r.sell_stops, self._is_pending_stop)
        return (-bid[0] if bid else -inf, ask[0] if ask else inf, buy_stop[0] if buy_stop else inf,
                -sell_stop[0] if sell_stop else -inf)

    # --- orders ------------------------------------------------------------------------------------

    def _next_ids(self) -> tuple[int, str]:
        """The next order's sequence and id; the order is saved (inserted) in the current step."""
        self._order_seq += 1
        order_id = f"ord-{self._order_seq:08d}"
        self._new_orders.add(order_id)
        return self._order_seq, order_id

    def place_order(self, request: OrderRequest, context: IntentContext | None = None, *,
                    defer: bool = False) -> PlaceResult:
        """Place one order. With `defer`, its rows join the pending commit group (see `_step`): the caller
        answers only once `pending_generation` is committed."""
        context = context or _TOOL_CONTEXT
        with self.lock:
            self.sync()
            replayed = self._replayed(request)
            if replayed is not None:
                return replayed
            instrument, request = self._checked(request)
            self.gate.begin()
            with self._step(defer):
                outcome = self._place(request, instrument, context)
            if isinstance(outcome, InvalidArgument):
                raise outcome
            if outcome.fills:
                self._after_change()
            return outcome

    def place_orders(self, requests: Sequence[OrderRequest], context: IntentContext | None = None, *,
                     contexts: Sequence[IntentContext] | None = None,
                     defer: bool = False) -> list[PlaceResult | QuantdeskError]:
        """Place several orders at one instant, in order, in one transaction: each comes out exactly as if
        placed alone one after the other (same checks, decisions, fills, events, idempotent replays), and
        each gets its own result: a PlaceResult, or the error that a lone place_order would have raised
        (a malformed order changes nothing but leaves its decision-log entry). When an order's fills trip
        a circuit breaker, what came before commits, the kill switch latches, and the rest is refused.
        `contexts` gives each order its own intent context (votes, signal); else `context` is every order's.
        `defer` as for `place_order`.
        """
        if contexts is not None and len(contexts) != len(requests):
            raise ValueError("contexts must give one context per request")
        context = context or _TOOL_CONTEXT
        results: list[PlaceResult | QuantdeskError] = []
        with self.lock:
            self.sync()
            i, n = 0, len(requests)
            while i < n:
                self.gate.begin()
                filled = False
                # balances, positions and marks change only by fills here: the account's core is kept until one;
                # after a fill the account is also the next order's (nothing moves in between)
                core = self._account_core()
                account: AccountSnapshot | None = None
                with self._step(defer):
                    while i < n:
                        request = requests[i]
                        i += 1
                        try:
                            replayed = self._replayed(request)
                            if replayed is not None:
                                results.append(replayed)
                                continue
                            instrument, checked = self._checked(request)
                        except QuantdeskError as exc:
                            results.append(exc)
                            continue
                        outcome = self._place(checked, instrument, contexts[i - 1] if contexts else context,
                                              account or self._snapshot(core))
                        results.append(outcome)
                        account = None
                        if isinstance(outcome, PlaceResult) and outcome.fills:
                            filled = True
                            core = self._account_core()
                            account = self._snapshot(core)
                            if account.equity_usd > self.peak_equity:
                                self.peak_equity = account.equity_usd
                            if self.gate.breach(account) is not None:
                                break  # commit what came before; the breaker trips below
                if filled:
                    self._after_change()
        return results

    def _replayed(self, request: OrderRequest) -> PlaceResult | None:
        """A repeated client_order_id: the first order and its fills, placing nothing."""
        if request.client_order_id is None or request.client_order_id not in self.by_client:
            return None
        self._readable()  # the first order may be earlier in this batch, or in the pending group
        order = self.get_order(self.by_client[request.client_order_id])
        return PlaceResult(order, self.ledger.list_fills(symbol=None, order_id=order.order_id, since_ms=None,
                                                         until_ms=None, liquidity=None, limit=1000)[::-1],
                           replayed=True)

    def _checked(self, request: OrderRequest) -> tuple[Instrument, OrderRequest]:
        """The instrument and the order's shape: errors naming the field, before anything changes."""
        instrument = self.instruments.get(request.symbol)
        check_shape(request, instrument)
        if request.time_in_force == "GTC" and request.order_type in ("market", "stop_market"):
            # what a market order does not fill at once it never will: it is immediate-or-cancel
            r = request
            request = OrderRequest(r.symbol, r.side, r.order_type, r.quantity, r.price, r.stop_price, "IOC",
                                   r.post_only, r.reduce_only, r.client_order_id)
        return instrument, request

    def _place(self, request: OrderRequest, instrument: Instrument, context: IntentContext,
               account: AccountSnapshot | None = None) -> PlaceResult | InvalidArgument:
        """One order inside the current step: grid, intent, risk, decision, then the order and its fills.
        A grid problem leaves only its decision-log entry and comes back as the error to raise."""
        self.metrics.orders_submitted += 1
        market = self.markets[request.symbol]
        notes: list[Reason] = NO_REASONS
        if request.reduce_only:
            request, notes = self._clamp_reduce_only(request, instrument)
        now = self.now_ms
        grid = grid_problems(request, instrument, market)
        if grid:
            self.gate.record(self._conn, None, request, context, now,
                             [Reason(code, message) for _, code, message in grid], None)
            for _, code, _ in grid:
                self.metrics.rejections[code] += 1
            return InvalidArgument.from_problems([Problem(path, f"{code}: {message}") for path, code, message
                                                  in grid])
        intent = self._intent(request, instrument, market, context, account)
        reasons = self._engine_reasons(request, instrument, market)
        refused = self.gate.check(intent)
        if refused:
            reasons += refused
        seq, order_id = self._next_ids()
        status: Any = "rejected" if reasons else ("pending_trigger" if request.stop_price is not None else "open")
        order = Order(order_id, request.client_order_id, request.symbol, request.side, request.order_type,
                      request.time_in_force, request.quantity, request.quantity, request.price, request.stop_price,
                      request.post_only, request.reduce_only or context.operator, status, now, now, context.source,
                      seq, signal_id=context.signal_id, reasons=reasons or notes)
        if not reasons and instrument.is_perpetual and not order.reduce_only and self.gate.forces_reduce_only() \
                and not intent.increases_exposure:
            # paused: an order accepted because it reduces stays unable to increase for its whole life
            order.reduce_only = True
        fills: list[Fill] = []
        order.decision_id = self.gate.record(self._conn, intent, request, context, now, reasons, order_id)
        if order.client_order_id is not None:
            self.by_client[order.client_order_id] = order_id
        if reasons:
            for reason in reasons:
                self.metrics.rejections[reason.code] += 1
            self._save_order(order)
            self.emit(OrderRejected(now, order.state()))
        else:
            self.metrics.orders_accepted += 1
            self._opened(order)
            self.emit(OrderAccepted(now, order.state()))
            fills = self._work(order, instrument)
            self._save_order(order)
        return PlaceResult(order, fills)

    def _clamp_reduce_only(self, request: OrderRequest, instrument: Instrument) -> tuple[OrderRequest, list[Reason]]:
        """A reduce-only order never asks for more than the live position (it would be refused or flip it)."""
        if not request.reduce_only or not instrument.is_perpetual:
            return request, NO_REASONS
        size = self.positions[request.symbol].size if request.symbol in self.positions else 0.0
        if size == 0.0 or (size > 0) == (request.side == "buy") or request.quantity <= abs(size):
            return request, NO_REASONS
        r = request
        clamped = OrderRequest(r.symbol, r.side, r.order_type, abs(size), r.price, r.stop_price, r.time_in_force,
                               r.post_only, r.reduce_only, r.client_order_id)
        return clamped, [Reason("REDUCE_ONLY_CLAMPED", f"quantity {request.quantity:g} clamped to the live position "
                                                       f"{abs(size):g}")]

    def _intent(self, request: OrderRequest, instrument: Instrument, market: MarketState,
                context: IntentContext, account: AccountSnapshot | None = None) -> OrderIntent:
        book = market.book
        limit = request.price
        estimate: float | None
        if request.order_type == "market":
            estimate = book.estimate(request.side, request.quantity, None) if book else None
        elif request.order_type == "stop_market":
            estimate = request.stop_price
        else:
            estimate = limit
        mark = market.reference_mark()
        price = estimate if estimate is not None else (mark or 0.0)
        notional = request.quantity * price
        if account is None:
            account = self.account()
        sign = side_sign(request.side)
        fee = notional * instrument.taker_fee_bps * 1e-4
        required_usd = required_base = available_base = 0.0
        if instrument.is_perpetual:
            before = self.positions[request.symbol].size if request.symbol in self.positions else 0.0
            after = before + sign * request.quantity
            leverage = self.settings.get(request.symbol, (DEFAULT_LEVERAGE, "cross"))[0]
            if not request.reduce_only:
                increase = max(0.0, abs(after) - abs(before)) if before * after >= 0 else abs(after)
                required_usd = increase * price / leverage + fee
        else:
            before = self.holding(instrument.base)
            after = before + sign * request.quantity
            leverage = 1.0
            if request.side == "buy":
                required_usd = notional + fee
            else:
                required_base = request.quantity
                available_base = before - self._reserved.get(instrument.base, 0.0)
        position_value = (mark or price)
        delta = (after - before) * position_value
        return OrderIntent(
            request, context, self.now_ms, instrument.is_perpetual, estimate, notional, mark, before, after,
            required_usd, account.available_usd, required_base, available_base,
            account.gross_exposure_usd - abs(before * position_value) + abs(after * position_value),
            account.net_exposure_usd + delta, leverage, instrument.max_leverage, account)

    def _engine_reasons(self, request: OrderRequest, instrument: Instrument, market: MarketState) -> list[Reason]:
        """What the market itself refuses: no data, a post-only that would take, a stop already triggered."""
        reasons = []
        book = market.book
        if book is None or (book.best_bid is None and book.best_ask is None):
            return [Reason("NO_MARKET_DATA", f"no market data for {instrument.symbol} at {self.now_ms}")]
        if request.order_type == "market" and book.touch(request.side) is None:
            reasons.append(Reason("NO_LIQUIDITY", f"the {instrument.symbol} book has no "
                                                  f"{'asks' if request.side == 'buy' else 'bids'}"))
        if request.post_only and request.price is not None and request.stop_price is None \
                and book.crosses(request.side, request.price):
            reasons.append(Reason("POST_ONLY_WOULD_TAKE", f"a post-only {request.side} at {request.price:g} would "
                                                          f"trade against the book (touch {book.touch(request.side)})"))
        if request.stop_price is not None:
            last = market.last_price if market.last_price is not None else market.reference_mark()
            if last is not None and ((request.side == "buy" and last >= request.stop_price)
                                     or (request.side == "sell" and last <= request.stop_price)):
                reasons.append(Reason("STOP_WOULD_TRIGGER_IMMEDIATELY",
                                      f"last price {last:g} is already through the stop {request.stop_price:g}"))
        if request.reduce_only and instrument.is_perpetual:
            size = self.positions[request.symbol].size if request.symbol in self.positions else 0.0
            if size == 0.0 or (size > 0) == (request.side == "buy"):
                reasons.append(Reason("REDUCE_ONLY_WOULD_INCREASE_POSITION",
                                      f"a reduce-only {request.side} would open or increase a position "
                                      f"(position {size:g})"))
        return reasons

    def _work(self, order: Order, instrument: Instrument) -> list[Fill]:
        """Execute what an accepted (or just triggered) order can do now; rest or expire the remainder."""
        if order.status == "pending_trigger":
            self.resting[order.symbol].add_stop(order)
            self._rebook(order)
            return []
        book = self.markets[order.symbol].book
        assert book is not None
        limit = order.price if order.order_type in ("limit", "stop_limit") else None
        fills: list[Fill] = []
        if limit is not None and order.post_only and book.crosses(order.side, limit):
            self._finish(order, "rejected", Reason("POST_ONLY_WOULD_TAKE", "the triggered post-only order would "
                                                   "trade against the book"))
            return fills
        if order.time_in_force == "FOK":
            available = book.fillable(order.side, limit)
            want = self._executable_quantity(order)
            if available + 1e-12 < want or want <= 0:
                self._finish(order, "expired", Reason("FOK_NOT_FILLABLE", f"the book offers {available:g} of "
                                                      f"{want:g} within the limit"))
                return fills
        if limit is None or book.crosses(order.side, limit):
            fills = self._take(order, instrument, limit)
        if not order.is_open:
            return fills
        if limit is None:
            self._finish(order, "expired", Reason("NO_LIQUIDITY_REMAINING", f"the book had no more liquidity for "
                                                  f"the last {order.remaining:g}"))
        elif order.time_in_force in ("IOC", "FOK"):
            self._finish(order, "expired", Reason("IOC_REMAINDER", f"{order.remaining:g} left unfilled at the limit"))
        else:
            self.resting[order.symbol].add_limit(order)
            self._rebook(order)
        return fills

    def _executable_quantity(self, order: Order) -> float:
        remaining = order.quantity - order.filled_quantity
        if remaining < 0.0:
            remaining = 0.0
        if not order.reduce_only:
            return remaining
        size = self.positions[order.symbol].size if order.symbol in self.positions else 0.0
        if size == 0.0 or (size > 0) == (order.side == "buy"):
            return 0.0
        return min(remaining, abs(size))

    def _take(self, order: Order, instrument: Instrument, limit: float | None) -> list[Fill]:
        book = self.markets[order.symbol].book
        assert book is not None
        if order.reference_price is None:
            order.reference_price = book.touch(order.side)
        wanted = self._executable_quantity(order)
        levels = book.take(order.side, wanted, limit, instrument.quantity_decimals)
        if len(levels) == 1:
            price, quantity = levels[0]
            return [self._fill(order, instrument, quantity, price, "taker")]
        return [self._fill(order, instrument, quantity, price, "taker") for price, quantity in levels]

    def _fill(self, order: Order, instrument: Instrument, quantity: float, price: float, liquidity: Liquidity,
              *, reference: float | None = None, insurance: Callable[[float, float], float] | None = None) -> Fill:
        """Book one fill: position or balances, fee, ledger rows, the order's progress, events."""
        bps = instrument.maker_fee_bps if liquidity == "maker" else instrument.taker_fee_bps
        fee = fee_usd(quantity, price, bps)
        self._journal_seq += 1
        self._fill_seq += 1
        seq, now, symbol = self._journal_seq, self.now_ms, order.symbol
        fill_id = f"fill-{self._fill_seq:08d}"
        entry = self._entry
        realized = covered = 0.0
        perpetual = instrument.is_perpetual
        if perpetual:
            position = self.positions.get(symbol) or self.position(symbol)
            margin_before, size_before = position.isolated_margin_usd, position.size
            realized = apply_perp_fill(position, instrument, order.side, quantity, price)
            position.fees_usd += fee
            if position.size == 0.0:
                position.opened_ms = None
            elif size_before == 0.0 or (size_before > 0) != (position.size > 0):
                position.opened_ms = now
            position.updated_ms = now
            # two balance changes (as `_entry`, written out: this runs for every fill)
            entries, balances = self._entries, self.balances
            after_pnl = round(balances.get(SETTLEMENT_ASSET, 0.0) + realized, BALANCE_DECIMALS)
            after_fee = round(after_pnl - fee, BALANCE_DECIMALS)
            balances[SETTLEMENT_ASSET] = after_fee
            if realized != 0.0:  # an opening fill changes no balance but by its fee
                entries.append((seq, now, "realized_pnl", SETTLEMENT_ASSET, realized, after_pnl, symbol, fill_id))
            entries.append((seq, now, "fee", SETTLEMENT_ASSET, -fee, after_fee, symbol, fill_id))
            if insurance is not None:
                covered = insurance(realized - fee, margin_before)
                if covered:
                    entry(seq, "insurance", SETTLEMENT_ASSET, covered, symbol, fill_id)
        else:
            for asset, amount in spot_cash_flows(instrument, order.side, quantity, price):
                entry(seq, "trade", asset, amount, symbol, fill_id)
            entry(seq, "fee", instrument.quote, -fee, symbol, fill_id)
        previous = order.filled_quantity
        filled = round(previous + quantity, instrument.quantity_decimals)
        order.average_price = ((order.average_price or 0.0) * previous + price * quantity) / filled
        order.filled_quantity = filled
        order.fees_usd += fee
        order.updated_ms = now
        ref = reference if reference is not None else order.reference_price
        state = (fill_id, seq, order.order_id, symbol, order.side, quantity, price, quantity * price, fee, liquidity,
                 ref, slippage_bps(order.side, price, ref), realized, covered, now)
        fill = Fill(*state)
        self._fills.append(state)
        metrics = self.metrics
        metrics.fills += 1
        metrics.fills_by_liquidity[liquidity] += 1
        events = self._events
        events.append(FillEvent(fill, state))
        if perpetual:
            self._dirty_positions[symbol] = position
            events.append(PositionEvent(now, self.position_state(position)))
        if filled >= order.quantity - 1e-12:
            order.status = "filled"
            self._closed(order)
        else:
            order.status = "partially_filled"
        self._rebook(order)
        self._dirty_orders[order.order_id] = order
        if perpetual and self._reduce_only[symbol]:
            self._enforce_reduce_only(symbol)
        return fill

    def _entry(self, seq: int, kind: str, asset: str, amount: float, symbol: str | None, ref: str | None) -> None:
        """A balance change: applied now, its ledger row written when the step commits."""
        value = add_balance(self.balances, asset, amount)
        self._entries.append((seq, self.now_ms, kind, asset, amount, value, symbol, ref))

    def _save_order(self, order: Order) -> None:
        self._dirty_orders[order.order_id] = order

    def _finish(self, order: Order, status: Literal["cancelled", "expired", "rejected"], reason: Reason) -> None:
        order.status = status
        order.reasons = [*order.reasons, reason]
        order.updated_ms = self.now_ms
        self._closed(order)
        self._rebook(order)
        self._save_order(order)
        if status == "cancelled":
            self.metrics.cancels += 1
            self.emit(OrderCancelled(self.now_ms, order.state()))
        elif status == "expired":
            self.emit(OrderExpired(self.now_ms, order.state()))
        else:
            self.emit(OrderRejected(self.now_ms, order.state()))

    def _enforce_reduce_only(self, symbol: str) -> None:
        """After the position moved: every open reduce-only order on it shrinks to it or is cancelled."""
        if not self._reduce_only[symbol]:
            return
        size = self.positions[symbol].size if symbol in self.positions else 0.0
        for order in list(self._reduce_only[symbol].values()):
            if size == 0.0 or (size > 0) == (order.side == "buy"):
                self._finish(order, "cancelled", Reason("REDUCE_ONLY_POSITION_CLOSED",
                                                        f"the position is {size:g}; a reduce-only {order.side} "
                                                        "would open or increase it"))
            elif order.remaining > abs(size) + 1e-12:
                order.quantity = self.instruments.by_symbol[symbol].round_quantity(order.filled_quantity + abs(size))
                order.reasons = [*order.reasons, Reason("REDUCE_ONLY_SHRUNK",
                                                        f"remaining quantity cut to the position {abs(size):g}")]
                order.updated_ms = self.now_ms
                self._save_order(order)
                self.emit(OrderAmended(self.now_ms, order.state()))

    def get_order(self, order_id: str) -> Order:
        order = self.open_orders.get(order_id)
        if order is None:
            with self.lock:
                self._readable()
                order = self.ledger.get_order(order_id)
        if order is None:
            raise NotFound(f"order_id {order_id!r}: no such order")
        return order

    def find_order(self, order_id: str | None, client_order_id: str | None) -> Order:
        if order_id is not None:
            return self.get_order(order_id)
        if client_order_id is not None and client_order_id in self.by_client:
            return self.get_order(self.by_client[client_order_id])
        raise NotFound(f"client_order_id {client_order_id!r}: no such order")

    def cancel_order(self, order_id: str | None, client_order_id: str | None) -> Order:
        with self.lock:
            order = self.find_order(order_id, client_order_id)
            if not order.is_open:
                field_name = "order_id" if order_id is not None else "client_order_id"
                raise Conflict(f"{field_name} {order_id or client_order_id!r}: the order is {order.status}; only "
                               "open orders can be cancelled")
            with self._step():
                self._finish(order, "cancelled", Reason("CANCELLED", "cancelled on request"))
            return order

    def cancel_all(self, symbols: list[str] | None, reason: Reason) -> list[CancelResult]:
        """Cancel every open order (of these symbols), in one step; per-order results, [] when none."""
        with self.lock:
            wanted = set(symbols) if symbols is not None else None
            targets = [o for o in self.open_orders.values() if wanted is None or o.symbol in wanted]
            if not targets:
                return []
            with self._step():
                for order in targets:
                    self._finish(order, "cancelled", reason)
            return [CancelResult(o.order_id, o.client_order_id, o.symbol, True, o.status) for o in targets]

    # --- market-driven steps (called by the market processor) --------------------------------------

    def on_print(self, symbol: str, at_ms: int, price: float, size: float) -> int:
        """A trade printed: fill resting limits it went through, then trigger stops. Returns fills made."""
        self.now_ms = max(self.now_ms, at_ms)
        self.set_market(symbol, trade=(at_ms, price), at_ms=at_ms)
        instrument = self.instruments.by_symbol[symbol]
        resting = self.resting[symbol]
        made = 0
        with self._step():
            for heap, buying in ((resting.bids, True), (resting.asks, False)):
                capacity = size
                while capacity > 1e-12:
                    entry = top(heap, self._is_resting_limit)
                    # through the price: a buy rests above the print, a sell below it
                    if entry is None or not (abs(entry[0]) > price if buying else abs(entry[0]) < price):
                        break
                    order = self.open_orders[entry[2]]
                    quantity = round(min(self._executable_quantity(order), capacity), instrument.quantity_decimals)
                    if quantity <= 0:
                        pop(heap)
                        if order.reduce_only:
                            self._enforce_reduce_only(symbol)
                        continue
                    assert order.price is not None
                    self._fill(order, instrument, quantity, order.price, "maker", reference=order.price)
                    if order.status == "filled" and heap and heap[0] is entry:
                        pop(heap)  # what `top` would drop next time round, without asking again
                    capacity -= quantity
                    made += 1
            triggered = []
            for heap, buy_stop in ((resting.buy_stops, True), (resting.sell_stops, False)):
                # a buy stop triggers at or above its stop, a sell stop at or below
                while (entry := top(heap, self._is_pending_stop)) is not None and (
                        entry[0] <= price if buy_stop else -entry[0] >= price):
                    pop(heap)
                    triggered.append(self.open_orders[entry[2]])
            for order in sorted(triggered, key=lambda o: o.seq):
                if order.is_open:
                    made += len(self._trigger(order, instrument))
        if made or triggered:
            self._changed()
        return made

    def _trigger(self, order: Order, instrument: Instrument) -> list[Fill]:
        order.status = "open"
        order.triggered_ms = self.now_ms
        order.updated_ms = self.now_ms
        self._rebook(order)
        self.emit(OrderTriggered(self.now_ms, order.state()))
        book = self.markets[order.symbol].book
        if instrument.kind == "spot" and order.side == "buy" and book is not None:
            estimate = book.estimate("buy", order.remaining, order.price) or order.stop_price or 0.0
            cost = order.remaining * estimate * (1.0 + instrument.taker_fee_bps * 1e-4)
            if cost > self.balances.get(instrument.quote, 0.0) - self._reserved.get(instrument.quote, 0.0) + 1e-9:
                self._finish(order, "cancelled", Reason("INSUFFICIENT_BALANCE", f"the triggered buy needs {cost:.2f} "
                                                        f"{instrument.quote}, more than is available"))
                return []
        fills = self._work(order, instrument)
        self._save_order(order)
        return fills

    def check_liquidations(self, at_ms: int) -> int:
        """Liquidate every isolated position below maintenance, and every cross position if the cross
        account is; each liquidation is its own step. Returns how many positions were liquidated."""
        self.now_ms = max(self.now_ms, at_ms)
        done = 0
        for symbol, position in list(self.positions.items()):
            if position.size == 0.0 or position.margin_mode != "isolated":
                continue
            rate = self.instruments.by_symbol[symbol].maintenance_margin_rate or 0.0
            mark = self._mark(symbol, position.entry_price)
            if position.isolated_margin_usd + unrealized_pnl(position, mark) < maintenance_margin(position, mark, rate):
                self._liquidate(symbol)
                done += 1
        if any(p.size != 0.0 and p.margin_mode == "cross" for p in self.positions.values()) \
                and self._cross_excess() < 0:
            for symbol, position in list(self.positions.items()):
                if position.size != 0.0 and position.margin_mode == "cross":
                    self._liquidate(symbol)
                    done += 1
        if done:
            self._after_change()
        return done

    def _liquidate(self, symbol: str) -> None:
        instrument = self.instruments.by_symbol[symbol]
        position = self.positions[symbol]
        mark = self._mark(symbol, position.entry_price)
        liquidation_price = self.liquidation_price(position)
        size, mode = position.size, position.margin_mode
        with self._step():
            for order in [o for o in self.open_orders.values() if o.symbol == symbol]:
                self._finish(order, "cancelled", Reason("LIQUIDATION", "cancelled by the liquidation of the "
                                                                       "position"))
            seq, order_id = self._next_ids()
            side: Any = "sell" if size > 0 else "buy"
            price = instrument.round_price(mark)
            order = Order(order_id=order_id, client_order_id=None, symbol=symbol, side=side, order_type="market",
                          time_in_force="IOC", quantity=abs(size), original_quantity=abs(size), price=None,
                          stop_price=None, post_only=False, reduce_only=True, status="open", created_ms=self.now_ms,
                          updated_ms=self.now_ms, source="liquidation", seq=seq, reference_price=price,
                          reasons=[Reason("LIQUIDATION", f"equity below maintenance margin at mark {mark:g}")])
            self._opened(order)

            def cover(cash: float, margin_before: float) -> float:
                # the account never goes below zero: the simulated insurance fund takes the rest
                if mode == "isolated":
                    return max(0.0, -margin_before - cash)
                return max(0.0, -(self.balances.get(SETTLEMENT_ASSET, 0.0)))

            fill = self._fill(order, instrument, abs(size), price, "liquidation", reference=price, insurance=cover)
            self.metrics.liquidations += 1
            self.emit(LiquidationEvent(self.now_ms, symbol, mode, size, mark, liquidation_price,
                                        fill.realized_pnl_usd, fill.fee_usd, fill.insurance_usd, fill.fill_id))

    def settle_funding(self, symbol: str, at_ms: int, rate: float, premium: float) -> None:
        market = self.markets[symbol]
        mark = market.reference_mark()
        if mark is None:
            return
        position = self.positions.get(symbol)
        size = position.size if position is not None else 0.0
        payment = -size * mark * rate
        self._journal_seq += 1
        record = FundingPayment(self._journal_seq, symbol, at_ms, rate, premium, mark, size, payment)
        with self._step() as conn:
            self.ledger.put_funding(conn, record)
            if payment != 0.0:
                self._entry(record.seq, "funding", SETTLEMENT_ASSET, payment, symbol, None)
            if position is not None:
                position.funding_usd += payment
                position.updated_ms = at_ms
                self._dirty_positions[symbol] = position
            market.last_funding = record
            self.metrics.funding_settlements += 1
            self.emit(FundingEvent(record.to_dict()))
        if payment != 0.0:
            self.check_liquidations(at_ms)
            self._after_change()

    def sample_equity(self, at_ms: int) -> EquitySample:
        account = self.account()
        day = _day_key(at_ms)
        if day != self.day_key:
            self.day_key, self.day_start_equity = day, account.equity_usd
        self.peak_equity = max(self.peak_equity, account.equity_usd)
        upnl = sum(unrealized_pnl(p, self._mark(s, p.entry_price)) for s, p in self.positions.items() if p.size)
        sample = EquitySample(at_ms, account.equity_usd, account.wallet_usd, upnl,
                              account.equity_usd - account.wallet_usd - upnl, account.gross_exposure_usd,
                              account.net_exposure_usd, account.drawdown_pct)
        with self._step() as conn:
            self.ledger.put_equity(conn, sample)
            self._save_meta(conn)
            self.metrics.equity_samples += 1
            self.emit(EquityEvent(sample.to_dict()))
        self.gate.after_update(self.account())
        return sample

    def _after_change(self) -> None:
        """After a committed change of money or positions: liquidations first, then the circuit breakers."""
        if self._conn is not None:
            return
        account = self.account()
        if account.equity_usd > self.peak_equity:
            self.peak_equity = account.equity_usd
        self.gate.after_update(account)

    # --- settings ----------------------------------------------------------------------------------

    def set_leverage(self, symbol: str, leverage: float) -> Position:
        with self.lock:
            instrument = self._perpetual(symbol)
            if not 1.0 <= leverage <= instrument.max_leverage:
                limit = f"must be within 1..{instrument.max_leverage:g} for {symbol}"
                raise InvalidArgument.from_problems([Problem("$.leverage", limit)])
            mode = self.settings.get(symbol, (DEFAULT_LEVERAGE, "cross"))[1]
            previous = self.settings.get(symbol, (DEFAULT_LEVERAGE, "cross"))
            self.settings[symbol] = (leverage, mode)
            position = self.peek_position(symbol)
            old_leverage = position.leverage
            position.leverage = leverage
            if position.size and mode == "cross" and self.account().available_usd < 0:
                self.settings[symbol], position.leverage = previous, old_leverage
                raise Conflict(f"leverage {leverage:g} would need more margin for the open {symbol} position than "
                               "is available")
            self._save_setting(symbol, position)
            return position

    def set_margin_mode(self, symbol: str, mode: MarginMode) -> Position:
        with self.lock:
            self._perpetual(symbol)
            position = self.peek_position(symbol)
            if position.size != 0.0 or any(o.symbol == symbol for o in self.open_orders.values()):
                raise Conflict(f"symbol {symbol}: the margin mode cannot change while a position or open orders "
                               "exist (close and cancel them first)")
            leverage = self.settings.get(symbol, (DEFAULT_LEVERAGE, "cross"))[0]
            self.settings[symbol] = (leverage, mode)
            position.margin_mode = mode
            self._save_setting(symbol, position)
            return position

    def _save_setting(self, symbol: str, position: Position) -> None:
        leverage, mode = self.settings[symbol]
        self._journal_seq += 1
        with self._step() as conn:
            self.ledger.put_setting(conn, self._journal_seq, symbol, leverage, mode, self.now_ms)
            if symbol in self.positions:
                self._dirty_positions[symbol] = position
            for order in [o for o in self.open_orders.values() if o.symbol == symbol]:
                self._rebook(order)
            self.emit(PositionEvent(self.now_ms, self.position_state(position)))

    def _perpetual(self, symbol: str) -> Instrument:
        instrument = self.instruments.get(symbol)
        if not instrument.is_perpetual:
            raise InvalidArgument.from_problems([Problem("$.symbol", f"{symbol} is a spot instrument: leverage and "
                                                                     "margin mode apply to perpetuals")])
        return instrument

    # --- views ----------------------------------------------------------------------------------------

    def describe_position(self, p: Position) -> dict[str, Any]:
        return dict(zip(POSITION_KEYS, self.position_state(p), strict=True))

    def position_state(self, p: Position) -> tuple[Any, ...]:
        """`describe_position`'s values in POSITION_KEYS order, as plain values (what a position event keeps).

        Computed on every fill, so written out flat: the liquidation price inlines `liquidation_price`."""
        symbol, size, entry = p.symbol, p.size, p.entry_price
        market = self.markets[symbol]
        mark = market.mark if market.mark is not None else market.last_price
        if mark is None:
            mark = entry
        rate = self.instruments.by_symbol[symbol].maintenance_margin_rate or 0.0
        notional = abs(size) * mark
        upnl = size * (mark - entry) if size else 0.0
        isolated = p.margin_mode == "isolated"
        if size == 0.0:
            liquidation: float | None = None
        elif isolated:
            liquidation = isolated_liquidation_price(p, rate)
        else:
            own = upnl - notional * rate
            liquidation = cross_liquidation_price(p, rate, self._cross_excess() - own)
        return (symbol, "long" if size > 0 else ("short" if size < 0 else "flat"), size, entry if size else None,
                mark or None, notional, upnl, p.realized_pnl_usd, p.fees_usd, p.funding_usd,
                p.realized_pnl_usd + upnl - p.fees_usd + p.funding_usd, p.margin_mode, p.leverage,
                p.isolated_margin_usd if isolated else None,
                p.isolated_margin_usd if isolated else notional / p.leverage, notional * rate, liquidation,
                p.opened_ms, p.updated_ms)


def _day_key(t_ms: int) -> int:
    day = datetime.fromtimestamp(t_ms / 1000, tz=UTC).date()
    return day.year * 10_000 + day.month * 100 + day.day
