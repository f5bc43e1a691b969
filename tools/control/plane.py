"""The control plane: the trading-state latch, the gate every order intent passes, circuit breakers, and
the operator actions (pause, resume, kill switch, reset, cancel-all, deleverage).

States: `running` <-> `paused` (no new exposure; cancels and reduce-only orders still go through; resting
orders stay); either -> `killed`, a one-way latch: entering it is written durably (fsynced) before
anything else happens, then every open order is cancelled (and, with `flatten`, every perpetual
position is closed by reduce-only market orders, at most once per kill episode). Only
`reset` (an admin action with a reason) leaves `killed`, and it goes to `paused`. A control store
that cannot be read is `unknown`: every order is refused until an admin resets it to `paused`.
Operator actions take the engine's lock first, so they are ordered with every order and fill.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from quantdesk.server.errors import Conflict, InvalidArgument, Problem
from quantdesk.tools.control.decisions import DecisionLog
from quantdesk.tools.control.events import DecisionRecorded, RiskEventOccurred, StateChanged
from quantdesk.tools.control.risk import pre_trade_reasons
from quantdesk.tools.control.store import ControlSql, ControlState, ControlStore, ControlStoreError, RiskLimits
from quantdesk.tools.desk.gate import AccountSnapshot, OrderIntent
from quantdesk.tools.desk.model import IntentContext, OrderRequest, Reason, Side

if TYPE_CHECKING:
    from quantdesk.tools.bus.bus import BusEvent
    from quantdesk.tools.desk.engine import DeskEngine, PlaceResult

STATE_ROW = "trading_state"
LIMITS_ROW = "risk_limits"
STATE_CODES = {"running": 1, "paused": 2, "killed": 3, "unknown": 0}


def iso(t_ms: int | None) -> str | None:
    if t_ms is None:
        return None
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ControlView:
    record: ControlState | None
    limits: RiskLimits | None
    error: str | None
    ok: bool = field(init=False)
    state: str = field(init=False)
    """Worked out once: the gate reads them for every order."""

    def __post_init__(self) -> None:
        ok = self.record is not None and self.limits is not None
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "state", self.record.state if ok and self.record is not None else "unknown")


@dataclass(slots=True)
class ControlMetrics:
    kill_switch_trips: int = 0
    trips_by_actor: dict[str, int] | None = None
    breaker_trips: int = 0


class ControlPlane:
    def __init__(self, sql: ControlSql, *, clock_ms: Callable[[], int], publish: Callable[[BusEvent], object],
                 fresh: bool) -> None:
        self.sql = sql
        self.store = ControlStore(sql)
        self.log = DecisionLog(sql)
        self._clock_ms = clock_ms
        self._publish = publish
        self.engine: DeskEngine | None = None
        self.metrics = ControlMetrics(trips_by_actor={})
        self._recent: deque[int] = deque()
        if fresh and not self.store.exists(STATE_ROW) and not self.store.exists(LIMITS_ROW):
            now = clock_ms()
            with sql.transaction(durable=True) as conn:
                self.store.put(conn, STATE_ROW, ControlState("running", 0, "new desk", "system", now))
                self.store.put(conn, LIMITS_ROW, RiskLimits())
        self._version: int | None = None
        self._begun_at: int | None = None
        """The engine's commit count when `begin` last read the state (see `begin`)."""
        self._view = self._read()

    # --- reading, failing closed -----------------------------------------------------------------------

    def _read(self) -> ControlView:
        try:
            record = self.store.read(STATE_ROW, ControlState)
            limits = self.store.read(LIMITS_ROW, RiskLimits)
        except ControlStoreError as exc:
            return ControlView(None, None, str(exc))
        return ControlView(record, limits, None)

    def view(self) -> ControlView:
        """The control state, re-read whenever another connection has written to the database."""
        try:
            version = self.sql.data_version()
        except sqlite3.Error as exc:
            return ControlView(None, None, f"the control store cannot be read ({type(exc).__name__})")
        if version != self._version:
            self._view = self._read()
            self._version = version
        return self._view

    def attach(self, engine: DeskEngine) -> None:
        """Gate the engine; a desk that restarts killed finishes its kill (no order may stay open)."""
        self.engine = engine
        engine.gate = self
        if self.view().state == "killed" and engine.open_orders:
            engine.cancel_all(None, Reason("KILL_SWITCH", "cancelled when the killed desk restarted"))

    def _engine(self) -> DeskEngine:
        if self.engine is None:
            raise RuntimeError("the control plane is not attached to a desk engine")
        return self.engine

    # --- the gate --------------------------------------------------------------------------------------

    def begin(self) -> None:
        """A placement (one order or a batch) starts: re-read the control state if another connection wrote.

        Once per engine commit: the orders of one commit group (placed through the doors within a turn or
        two of the event loop, none answered yet) share one reading, which saves a PRAGMA (two lock system
        calls) per order; the control plane's own writes set the state directly or force a re-read."""
        commits = self.engine.commits if self.engine is not None else None
        if commits is None or commits != self._begun_at:
            self.view()
            self._begun_at = commits

    def check(self, intent: OrderIntent) -> list[Reason]:
        view = self._view  # as `begin` read it, under the same engine lock (a batch reads it once)
        context = intent.context
        reasons: list[Reason] = []
        if not view.ok:
            return [Reason("CONTROL_STATE_UNKNOWN", f"control state unknown: {view.error}; every order is refused "
                                                    "until an admin resets the kill switch")]
        if view.state == "killed" and not context.operator:
            why = view.record.kill_reason if view.record else None
            reasons.append(Reason("TRADING_HALTED", f"the kill switch is latched ({why}); reset_kill_switch goes to "
                                                    "paused"))
        elif view.state == "paused" and intent.increases_exposure and not context.operator:
            reasons.append(Reason("TRADING_PAUSED", "trading is paused: only orders that reduce exposure are "
                                                    "accepted"))
        if context.operator:
            return reasons
        now = intent.timestamp_ms
        while self._recent and self._recent[0] <= now - 1000:
            self._recent.popleft()
        assert view.limits is not None
        reasons += pre_trade_reasons(intent, view.limits, len(self._recent))
        if not reasons:
            self._recent.append(now)
        return reasons

    def forces_reduce_only(self) -> bool:
        return self._view.state == "paused"  # read by check() a moment before, under the same engine lock

    def record(self, conn: sqlite3.Connection, intent: OrderIntent | None, request: OrderRequest,
               context: IntentContext, timestamp_ms: int, reasons: list[Reason], order_id: str | None) -> str:
        passed = not reasons
        summary = context.summary or _summary(request)
        if intent is not None:
            details: dict[str, Any] = {"client_order_id": request.client_order_id,
                                       "estimated_price": intent.estimated_price, "notional_usd": intent.notional_usd,
                                       "position_before": intent.position_before,
                                       "position_after": intent.position_after,
                                       "equity_usd": intent.account.equity_usd}
        else:
            details = {"client_order_id": request.client_order_id}
        # staged: the engine writes a step's entries in one statement when the step commits (`flush`)
        row = self.log.stage_row(
            timestamp_ms, "order_intent", context.source, request.symbol, summary,
            [v.to_dict() for v in context.agent_votes] if context.agent_votes else [], context.signal_id,
            order_id if passed else None, passed, [(r.code, r.message) for r in reasons] if reasons else [], details)
        engine = self._engine()
        engine.emit(DecisionRecorded(row))
        decision_id: str = row[1]
        if reasons:
            engine.emit(RiskEventOccurred(timestamp_ms, reasons[0].code, reasons[0].message, request.symbol,
                                          {"decision_id": decision_id, "codes": [r.code for r in reasons]}))
        return decision_id

    def flush(self, conn: sqlite3.Connection) -> None:
        self.log.write_staged(conn)

    def discard(self) -> None:
        self.log.discard_staged()

    def breach(self, account: AccountSnapshot) -> Reason | None:
        """The circuit breaker this account trips, if any (nothing is done here: see `after_update`)."""
        view = self._view  # as last read; a damaged store already refuses orders, and a breaker needs no re-read
        if not view.ok or view.state == "killed" or view.limits is None:
            return None
        limits = view.limits
        if limits.max_daily_loss_pct is not None and account.daily_loss_pct >= limits.max_daily_loss_pct:
            return Reason("DAILY_LOSS_LIMIT",
                          f"daily loss {account.daily_loss_pct:.2%} >= {limits.max_daily_loss_pct:.2%}")
        if limits.max_drawdown_pct is not None and account.drawdown_pct >= limits.max_drawdown_pct:
            return Reason("DRAWDOWN_LIMIT", f"drawdown {account.drawdown_pct:.2%} >= {limits.max_drawdown_pct:.2%}")
        return None

    def after_update(self, account: AccountSnapshot) -> None:
        """Circuit breakers: a daily-loss or drawdown breach trips the kill switch itself."""
        breach = self.breach(account)
        if breach is None:
            return
        code, message = breach.code, breach.message
        self.metrics.breaker_trips += 1
        details = {"equity_usd": account.equity_usd, "peak_equity_usd": account.peak_equity_usd,
                   "day_start_equity_usd": account.day_start_equity_usd}
        self.kill(f"{code}: {message}", flatten=False, actor="risk_engine", interrupt=False,
                  risk_event=(code, message, details))

    # --- status and limits ---------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self._clock_ms()

    def status(self) -> dict[str, Any]:
        view = self.view()
        r = view.record if view.ok else None
        state = view.state
        account = self.engine.account() if self.engine is not None else None
        limits = view.limits
        return {
            "state": state, "control_store_ok": view.ok, "control_store_error": view.error,
            "is_trading_allowed": state == "running", "is_new_exposure_allowed": state == "running",
            "are_reduce_only_orders_allowed": state in ("running", "paused"), "execution_mode": "paper",
            "reason": r.reason if r else None, "actor": r.actor if r else None,
            "episode": r.episode if r else None, "updated_at": iso(r.updated_ms) if r else None,
            "paused_at": iso(r.paused_at_ms) if r else None, "killed_at": iso(r.killed_at_ms) if r else None,
            "kill_reason": r.kill_reason if r else None,
            "flattened_this_episode": bool(r and r.state == "killed" and r.flattened_episode == r.episode),
            "daily_loss_pct": account.daily_loss_pct if account else None,
            "drawdown_pct": account.drawdown_pct if account else None,
            "max_daily_loss_pct": limits.max_daily_loss_pct if limits else None,
            "max_drawdown_pct": limits.max_drawdown_pct if limits else None,
            "timestamp": iso(self.now_ms()), "timestamp_ms": self.now_ms(),
        }

    def limits(self) -> RiskLimits:
        view = self.view()
        if view.limits is None:
            raise Conflict(f"the risk limits cannot be read: {view.error}")
        return view.limits

    def _settle(self) -> None:
        """Before the control plane writes: the engine's pending group of orders is written first, so a control
        record never commits the engine's staged decisions without their orders (and keeps them in order)."""
        if self.engine is not None:
            self.engine.commit_pending()

    def set_limits(self, changes: dict[str, Any], actor: str) -> RiskLimits:
        engine = self._engine()
        with engine.lock:
            self._settle()
            current = self.limits()
            updated = replace(current, **changes)
            now = self.now_ms()
            with self.sql.transaction(durable=True) as conn:
                self.store.put(conn, LIMITS_ROW, updated)
                logged = self._control_decision(conn, now, "set_risk_limits", actor, f"risk limits changed: {changes}",
                                                None, {"changes": changes})
            self._version = self._begun_at = None
            self._publish(logged)
            return updated

    # --- operator actions ------------------------------------------------------------------------------

    def _control_decision(self, conn: sqlite3.Connection, now: int, command: str, actor: str, summary: str,
                          symbol: str | None, details: dict[str, Any]) -> DecisionRecorded:
        """Log a control action in the caller's transaction; publish the returned event once it commits."""
        row = self.log.stage(timestamp_ms=now, decision_type="control", source=f"control:{command}", symbol=symbol,
                             summary=summary, agent_votes=[], signal_id=None, order_id=None, risk_passed=True,
                             reasons=[], details={"actor": actor, **details})
        self.log.write_staged(conn)
        return DecisionRecorded(row)

    def _transition(self, new: ControlState, previous: str, command: str, details: dict[str, Any],
                    risk_event: tuple[str, str, dict[str, Any]] | None = None) -> None:
        """Write the new state durably (fsync) with its log entries, then tell the bus."""
        self._settle()
        with self.sql.transaction(durable=True) as conn:
            self.store.put(conn, STATE_ROW, new)
            logged = self._control_decision(conn, new.updated_ms, command, new.actor,
                                            f"{command}: {previous} -> {new.state} ({new.reason})", None,
                                            {"previous_state": previous, "state": new.state, "reason": new.reason,
                                             **details})
            if risk_event is not None:
                event = self.log.add_risk_event(conn, new.updated_ms, *risk_event)
        self._version = self._begun_at = None
        self._view = ControlView(new, self._view.limits if self._view.limits else self._read().limits, None)
        self._publish(logged)
        if risk_event is not None:
            self._publish(RiskEventOccurred(event.timestamp_ms, event.code, event.message, None, event.details))
        self._publish(StateChanged(new.updated_ms, previous, new.state, new.actor, new.reason, new.episode))

    def pause(self, reason: str, actor: str) -> dict[str, Any]:
        with self._engine().lock:
            view = self.view()
            if view.state != "running":
                action = "already_paused" if view.state == "paused" else "refused"
                return {"action": action, "state": view.state, "reason": reason,
                        "paused_at": iso(view.record.paused_at_ms) if view.ok and view.record else None}
            assert view.record is not None
            now = self.now_ms()
            new = replace(view.record, state="paused", reason=reason, actor=actor, updated_ms=now, paused_at_ms=now)
            self._transition(new, "running", "pause", {})
            return {"action": "paused", "state": "paused", "reason": reason, "paused_at": iso(now)}

    def resume(self, reason: str | None, actor: str) -> dict[str, Any]:
        with self._engine().lock:
            view = self.view()
            if view.state != "paused":
                action = "already_running" if view.state == "running" else "refused"
                return {"action": action, "state": view.state, "reason": reason,
                        "message": "resume refused: the kill switch is latched (reset_kill_switch goes to paused)"
                        if view.state == "killed" else ("resume refused: the control state is unknown"
                                                        if view.state == "unknown" else None)}
            assert view.record is not None
            now = self.now_ms()
            new = replace(view.record, state="running", reason=reason or "resumed", actor=actor, updated_ms=now,
                          paused_at_ms=None)
            self._transition(new, "paused", "resume", {})
            return {"action": "resumed", "state": "running", "reason": new.reason, "message": None}

    def kill(self, reason: str, *, flatten: bool, actor: str, interrupt: bool = True,
             risk_event: tuple[str, str, dict[str, Any]] | None = None) -> dict[str, Any]:
        engine = self._engine()
        if interrupt:
            engine.request_interrupt()
        with engine.lock:
            engine.clear_interrupt()
            view = self.view()
            previous = view.state
            already = previous == "killed"
            record = view.record if view.ok else None
            now = self.now_ms()
            if already:
                assert record is not None
                current = record
            else:
                episode = (record.episode if record else 0) + 1
                current = ControlState("killed", episode, reason, actor, now, None, now, reason,
                                       record.flattened_episode if record else None)
                self._transition(current, previous, "kill_switch", {"flatten": flatten}, risk_event)
                self.metrics.kill_switch_trips += 1
                assert self.metrics.trips_by_actor is not None
                self.metrics.trips_by_actor[actor] = self.metrics.trips_by_actor.get(actor, 0) + 1
            cancelled = engine.cancel_all(None, Reason("KILL_SWITCH", f"cancelled by the kill switch: {reason}"))
            flattened: list[PlaceResult] = []
            already_flattened = current.flattened_episode == current.episode
            if flatten and not already_flattened:
                flattened = self._flatten(engine, "kill_switch")
                done = replace(current, flattened_episode=current.episode)
                self._settle()
                with self.sql.transaction(durable=True) as conn:
                    self.store.put(conn, STATE_ROW, done)
                self._version = self._begun_at = None
            return {"action": "killed", "already_killed": already, "state": "killed", "reason": current.kill_reason,
                    "episode": current.episode, "killed_at": iso(current.killed_at_ms), "latched_durably": True,
                    "cancelled": [c.to_dict() for c in cancelled], "cancel_instructions": self.cancel_instructions(),
                    "flatten_requested": flatten, "already_flattened": flatten and already_flattened,
                    "flatten_orders": [r.order.to_dict() for r in flattened],
                    "flatten_fills": [f.to_dict() for r in flattened for f in r.fills]}

    def _flatten(self, engine: DeskEngine, command: str) -> list[PlaceResult]:
        results = []
        for symbol, position in list(engine.positions.items()):
            if position.size == 0.0:
                continue
            request = OrderRequest(symbol, "sell" if position.size > 0 else "buy", "market", abs(position.size),
                                   reduce_only=True)
            results.append(engine.place_order(request, IntentContext(source=f"control:{command}", operator=True,
                                                                     summary=f"flatten {symbol} ({command})")))
        return results

    def reset(self, reason: str, actor: str) -> dict[str, Any]:
        with self._engine().lock:
            view = self.view()
            if view.state not in ("killed", "unknown"):
                raise Conflict(f"the desk is {view.state}, not killed: reset_kill_switch only leaves the killed (or "
                               "unknown) state")
            now = self.now_ms()
            record = view.record if view.ok else None
            new = ControlState("paused", record.episode if record else 0, reason, actor, now, now, None, None,
                               record.flattened_episode if record else None)
            limits = view.limits
            if limits is None:
                # an unreadable store is rebuilt: the limits come back as they were if they can be read, else defaults
                try:
                    limits = self.store.read(LIMITS_ROW, RiskLimits)
                except ControlStoreError:
                    limits = RiskLimits()
                self._settle()
                with self.sql.transaction(durable=True) as conn:
                    self.store.put(conn, LIMITS_ROW, limits)
            self._transition(new, view.state, "reset_kill_switch", {})
            self._view = ControlView(new, limits, None)
            return {"action": "reset", "previous_state": view.state, "state": "paused", "reason": reason,
                    "paused_at": iso(now), "message": "the latch is cleared; the desk is paused: resume to trade"}

    def cancel_all(self, symbols: list[str] | None, actor: str) -> dict[str, Any]:
        """Symbols are canonical (BTC-USDT-PERP) or venue symbols (BTCUSDT: its spot and its perpetual)."""
        engine = self._engine()
        if symbols is not None:
            table = engine.instruments
            problems = [Problem(f"$.symbols[{i}]", f"unknown symbol {s!r}") for i, s in enumerate(symbols)
                        if s not in table.by_symbol and not any(x.venue_symbol == s for x in table.instruments)]
            if problems:
                raise InvalidArgument.from_problems(problems)
            symbols = list(dict.fromkeys(x.symbol for x in table.instruments
                                         if x.symbol in symbols or x.venue_symbol in symbols))
        with engine.lock:
            results = engine.cancel_all(symbols, Reason("CANCEL_ALL", "cancelled by cancel-all"))
            self._settle()
            with self.sql.transaction() as conn:
                logged = self._control_decision(conn, self.now_ms(), "cancel_all", actor,
                                                f"cancel-all: {len(results)} orders cancelled", None,
                                                {"symbols": symbols, "cancelled": [r.order_id for r in results]})
            self._publish(logged)
            return {"cancelled": [r.to_dict() for r in results], "count": len(results), "symbols": symbols,
                    "cancel_instructions": self.cancel_instructions(symbols)}

    def deleverage(self, symbol: str, reduce_pct: float, actor: str) -> dict[str, Any]:
        """`symbol` is canonical (BTC-USDT-PERP) or a venue symbol (BTCUSDT: its perpetual)."""
        engine = self._engine()
        venue_perp = next((i for i in engine.instruments.perpetuals() if i.venue_symbol == symbol), None)
        instrument = venue_perp or engine.instruments.get(symbol)
        symbol = instrument.symbol
        if not instrument.is_perpetual:
            raise InvalidArgument.from_problems([Problem("$.symbol", f"{symbol} is spot: deleverage reduces "
                                                                     "perpetual positions")])
        with engine.lock:
            engine.sync()
            size = engine.positions[symbol].size if symbol in engine.positions else 0.0
            quantity = abs(size) if reduce_pct >= 1.0 else instrument.floor_quantity(abs(size) * reduce_pct)
            base = {"symbol": symbol, "reduce_pct": reduce_pct, "position_size_before": size}
            if size == 0.0 or quantity <= 0.0:
                return {**base, "action": "no_position" if size == 0.0 else "too_small",
                        "side": None, "quantity": 0.0, "position_size_after": size, "order": None, "fills": []}
            side: Side = "sell" if size > 0 else "buy"
            request = OrderRequest(symbol, side, "market", quantity, reduce_only=True)
            result = engine.place_order(request, IntentContext(
                source="control:deleverage", operator=True,
                summary=f"deleverage {symbol} by {reduce_pct:.0%} ({actor})"))
            after = engine.positions[symbol].size
            return {**base, "action": "deleveraged" if result.fills else "not_filled", "side": side,
                    "quantity": quantity, "position_size_after": after, "order": result.order.to_dict(),
                    "fills": [f.to_dict() for f in result.fills]}

    def cancel_instructions(self, symbols: list[str] | None = None) -> list[dict[str, str]]:
        """The AIS document's shape: per venue symbol, `cancel_all_orders` (perpetual) then
        `cancel_spot_all_orders` (spot), in the instrument file's order of venue symbols."""
        engine = self._engine()
        chosen = [i for i in engine.instruments.instruments if symbols is None or i.symbol in symbols]
        out = []
        for venue_symbol in dict.fromkeys(i.venue_symbol for i in chosen):
            for perpetual in (True, False):
                if any(i.venue_symbol == venue_symbol and i.is_perpetual == perpetual for i in chosen):
                    tool = "cancel_all_orders" if perpetual else "cancel_spot_all_orders"
                    out.append({"tool": tool, "symbol": venue_symbol})
        return out


_SUMMARIES: dict[tuple[Any, ...], str] = {}
"""Summaries of recent order shapes: formatting floats with :g costs more than a dictionary lookup, and a desk
places the same shapes again and again (bounded: cleared when full)."""


def _summary(r: OrderRequest) -> str:
    key = (r.side, r.quantity, r.symbol, r.order_type, r.price, r.stop_price, r.time_in_force, r.reduce_only,
           r.post_only)
    text = _SUMMARIES.get(key)
    if text is None:
        if len(_SUMMARIES) >= 4096:
            _SUMMARIES.clear()
        text = _SUMMARIES[key] = _format_summary(r)
    return text


def _format_summary(r: OrderRequest) -> str:
    price = f" @ {r.price:g}" if r.price is not None else ""
    stop = f" stop {r.stop_price:g}" if r.stop_price is not None else ""
    flags = "".join([" reduce-only" if r.reduce_only else "", " post-only" if r.post_only else ""])
    return f"{r.side} {r.quantity:g} {r.symbol} {r.order_type}{price}{stop} {r.time_in_force}{flags}"
