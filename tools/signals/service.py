"""The signals service as the server runs it: generators, the signal store, the strategy loop on the desk clock,
profiles, halt/resume on the control plane's latch, and the metrics.

Lock order: the engine's lock, then this service's. A cycle runs whole under the engine's lock (it reads the
market, places orders and logs its decisions at one desk instant); `run` releases the lock between cycles and
stops as soon as a kill asks the engine to stop (`engine.interrupted`), so a halt waits for one cycle at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from quantdesk.server.errors import Conflict, InvalidArgument, Problem, QuantdeskError
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.control.events import DecisionRecorded
from quantdesk.tools.desk.model import IntentContext, OrderRequest, Vote
from quantdesk.tools.signals import store
from quantdesk.tools.signals.generators import DEFAULT_WEIGHTS, GENERATORS, Generator, MarketContext
from quantdesk.tools.signals.loop import Plan, plan, size
from quantdesk.tools.signals.model import LAYER_TTL_SECONDS, ProfileChanged, Signal, SignalCreated, iso
from quantdesk.tools.signals.profiles import DEFAULT_PROFILE, PROFILES

if TYPE_CHECKING:
    from quantdesk.tools.desk.engine import DeskEngine
    from quantdesk.tools.desk.service import DeskService
    from quantdesk.tools.risk.service import RiskService

logger = logging.getLogger("quantdesk.signals")
SOURCE = "signals:strategy"
DEFAULT_CYCLE_SECONDS = 60
HISTORY = 240
"""Cycle prices kept in memory per symbol (the generators look back 20)."""


@dataclass(slots=True)
class SignalCounters:
    cycles: int = 0
    signals: int = 0
    decisions: int = 0
    orders: int = 0
    orders_rejected: int = 0
    loop_errors: int = 0


class SignalService:
    def __init__(self, desk: DeskService, risk: RiskService | None, bus: EventBus, sql: store.SignalsSql, *,
                 background: bool = True) -> None:
        self.desk = desk
        self.risk = risk
        self.bus = bus
        self.sql = sql
        store.ensure_schema(sql)
        self._lock = threading.RLock()
        self.generators: dict[str, Generator] = {name: cls() for name, cls in GENERATORS.items()}
        self.counters = SignalCounters()
        self.verdicts: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.cycle_ms: deque[float] = deque(maxlen=2048)
        """Wall time of recent cycles, ms (system latency)."""
        self._seq = store.next_seq(sql)
        self.latest: dict[tuple[str, str], Signal] = {(s.symbol, s.signal_type): s for s in store.latest_signals(sql)}
        self.history: dict[str, deque[float]] = {}
        self.history_t: dict[str, int] = {}
        self.entries: dict[str, str] = {}
        self.brackets: dict[str, tuple[float, float]] = {}
        """Per traded symbol, the stop-loss and take-profit prices the open position was sized with."""
        """Per traded symbol, the signal whose order opened the position the strategy holds."""
        self.reported_expired: set[str] = set()
        self._kelly: dict[str, tuple[float | None, float | None, str]] | None = None
        """Per signal type, Kelly inputs from the strategy's closed trades; rebuilt after a close."""
        self.last_cycle_ms: int | None = store.get_meta(sql, "last_cycle_ms")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if desk.error is None:
            self._load_history()
            self._load_entries()
        if background and desk.error is None:
            self._thread = threading.Thread(target=self._run_background, name="strategy-loop", daemon=True)
            self._thread.start()

    @property
    def engine(self) -> DeskEngine:
        return self.desk.engine

    # --- settings -----------------------------------------------------------------------------------

    @property
    def profile_name(self) -> str:
        name = store.get_meta(self.sql, "profile")
        return str(name) if name is not None else DEFAULT_PROFILE

    @property
    def cycle_seconds(self) -> int:
        value = store.get_meta(self.sql, "cycle_seconds")
        return int(value) if value is not None else DEFAULT_CYCLE_SECONDS

    @property
    def enabled(self) -> bool:
        return bool(store.get_meta(self.sql, "loop_enabled"))

    @property
    def weights(self) -> dict[str, float]:
        stored = store.get_meta(self.sql, "weights")
        return {**DEFAULT_WEIGHTS, **(stored or {})}

    def traded_symbols(self) -> list[str]:
        """Perpetuals only: they go long and short, and their P&L is the position's (spot has a cost basis)."""
        return [i.symbol for i in self.engine.instruments.perpetuals()]

    def _load_history(self) -> None:
        for instrument in self.engine.instruments.instruments:
            rows = store.prices(self.sql, instrument.symbol, limit=HISTORY)
            self.history[instrument.symbol] = deque((p for _, p in rows), maxlen=HISTORY)
            if rows:
                self.history_t[instrument.symbol] = rows[-1][0]

    def _load_entries(self) -> None:
        # the desk's orders are the one record of what the strategy opened: nothing to keep in step after a crash
        for symbol in self.traded_symbols():
            rows = self.sql.query("SELECT signal_id FROM desk_orders WHERE symbol = ? AND source = ? AND "
                                  "reduce_only = 0 AND filled_quantity > 0 ORDER BY seq DESC LIMIT 1",
                                  (symbol, SOURCE))
            if rows and rows[0][0]:
                self.entries[symbol] = str(rows[0][0])
            # the bracket is in the opening's decision-log entry
            for d in self.desk.control.log.entries(decision_type="strategy", symbol=symbol, limit=50):
                if d.details.get("action", "").startswith("open") and d.selected_order_id and d.details.get("sizing"):
                    sizing = d.details["sizing"]
                    self.brackets[symbol] = (sizing["stop_loss_price_usd"], sizing["take_profit_price_usd"])
                    break

    # --- signals --------------------------------------------------------------------------------------

    def _context(self, engine: DeskEngine, symbol: str, now: int, prices: Any) -> MarketContext:
        instrument = engine.instruments.by_symbol[symbol]
        rate = periods = None
        if instrument.is_perpetual and instrument.funding is not None \
                and instrument.funding.model == "perpetual_funding":
            from quantdesk.tools.desk.advance import funding_rate

            market = engine.markets.get(symbol)
            if market is not None and market.premium_samples:
                rate, _ = funding_rate(instrument.funding, market.premium_samples)
                periods = 365 * 24 / instrument.funding.interval_hours
        regime = confidence = None
        if self.risk is not None:
            for state in list(self.risk.regimes.states.values()):
                tracked = engine.instruments.by_symbol.get(state.symbol)
                if tracked is not None and tracked.base == instrument.base and state.regime != "UNKNOWN":
                    regime, confidence = state.regime, state.confidence
                    break
        return MarketContext(symbol, now, prices, rate, periods, regime, confidence)

    def _mids(self, engine: DeskEngine) -> dict[str, float]:
        out: dict[str, float] = {}
        for instrument in engine.instruments.instruments:
            market = engine.market(instrument)
            book = market.book
            mid = book.mid if book is not None else None
            price = mid if mid is not None else market.reference_mark()
            if price is not None and price > 0:
                out[instrument.symbol] = float(price)
        return out

    def _generate(self, engine: DeskEngine, now: int) -> list[Signal]:
        """Record the cycle's prices and run every generator on every symbol (engine lock held)."""
        import numpy as np

        mids = self._mids(engine)
        made: list[Signal] = []
        for symbol, price in mids.items():
            history = self.history.setdefault(symbol, deque(maxlen=HISTORY))
            if self.history_t.get(symbol) != now:
                history.append(price)
                self.history_t[symbol] = now
            prices = np.fromiter(history, dtype=np.float64, count=len(history))
            ctx = self._context(engine, symbol, now, prices)
            for name, generator in self.generators.items():
                draft = generator.generate(ctx)
                if draft is None:
                    continue
                made.append(Signal(f"sig_{self._seq:010d}", symbol, name, generator.layer,
                                   draft.direction,  # type: ignore[arg-type]
                                   round(draft.strength, 6), round(draft.confidence, 6), now,
                                   LAYER_TTL_SECONDS[generator.layer], price, draft.details))
                self._seq += 1
        try:
            with self.sql.transaction() as conn:
                store.put_prices(conn, now, mids)
                store.put_signals(conn, made)
        except BaseException:
            self._seq = store.next_seq(self.sql)
            raise
        for s in made:
            self.latest[(s.symbol, s.signal_type)] = s
            self.bus.publish(SignalCreated(s))
        self.counters.signals += len(made)
        return made

    def generate(self) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            engine.sync()
            now = engine.now_ms
            with self._lock:
                made = self._generate(engine, now)
            return {"signals": [s.to_dict(now) for s in made], "count": len(made), "desk_time_ms": now,
                    "data_source": engine.feed.data_source}

    def list_signals(self, *, limit: int, signal_type: str | None, symbol: str | None, since_ms: int | None,
                     live_only: bool) -> dict[str, Any]:
        engine = self.engine
        if signal_type is not None and signal_type not in GENERATORS:
            raise InvalidArgument.from_problems([Problem("$.signal_type", f"unknown signal type {signal_type!r}; "
                                                         f"known: {', '.join(GENERATORS)}")])
        if symbol is not None:
            engine.instruments.get(symbol)
        now = engine.now_ms
        rows = store.list_signals(self.sql, symbol=symbol, signal_type=signal_type, since_ms=since_ms,
                                  live_at_ms=now if live_only else None, limit=limit)
        return {"signals": [s.to_dict(now) for s in rows], "count": len(rows), "desk_time_ms": now,
                "desk_time": iso(now), "data_source": engine.feed.data_source}

    # --- the strategy loop ----------------------------------------------------------------------------

    def cycle(self, generate: bool = True) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            engine.sync()
            return self._cycle(engine, generate)

    def _cycle(self, engine: DeskEngine, generate: bool) -> dict[str, Any]:
        started = time.perf_counter()
        now = engine.now_ms
        with self._lock:
            made = self._generate(engine, now) if generate else []
            profile = PROFILES[self.profile_name]
            weights = self.weights
            view = self.desk.control.view()
            limits = view.limits
            decisions: list[dict[str, Any]] = []
            for symbol in self.traded_symbols():
                signals = [s for (sym, _), s in self.latest.items() if sym == symbol]
                position = engine.peek_position(symbol).size
                p = plan(symbol, signals, weights, profile, now, position)
                if p.action == "none" and position != 0.0:
                    self._bracket_exit(p, position)
                if p.action == "none":
                    expired = self._expired_would_trade(p, signals, weights, profile, now, position)
                    if expired is None:
                        continue
                    p = expired
                else:
                    self._check(engine, p, profile, view.state, limits)
                decisions.append(self._act(engine, p, profile, now))
            self.counters.cycles += 1
            self.last_cycle_ms = now
            elapsed = (time.perf_counter() - started) * 1000
            self.cycle_ms.append(elapsed)
        return {"desk_time_ms": now, "desk_time": iso(now), "profile": profile.name,
                "control_state": view.state, "signals_made": len(made), "decisions": decisions,
                "orders_placed": sum(1 for d in decisions if d["order_id"]), "cycle_wall_ms": elapsed,
                "data_source": engine.feed.data_source}

    def _bracket_exit(self, p: Plan, position: float) -> None:
        """Close a position whose price reached the stop-loss or take-profit its sizing set (spec/desk.md §4)."""
        bracket = self.brackets.get(p.symbol)
        history = self.history.get(p.symbol)
        if bracket is None or not history:
            return
        stop, take = bracket
        price = history[-1]
        long = position > 0
        if (price <= stop) if long else (price >= stop):
            p.reasons.append(("stop_loss", f"mid {price:g} reached the stop {stop:g}"))
        elif (price >= take) if long else (price <= take):
            p.reasons.append(("take_profit", f"mid {price:g} reached the take-profit {take:g}"))
        else:
            return
        p.action = "close"

    def _expired_would_trade(self, p: Plan, signals: list[Signal], weights: dict[str, float], profile: Any,
                             now: int, position: float) -> Plan | None:
        """When signals that expired since the last look would have traded had they been live, the cycle logs one
        refusal (signal_ttl_expired) naming them; they are never acted on."""
        fresh = [s for s in signals if not s.live(now) and s.signal_id not in self.reported_expired]
        if not fresh or position != 0.0:
            return None
        stale = {s.signal_id for s in fresh}
        # the same signals with the expired ones stamped now (copies: the stored signals are not touched)
        revived = plan(p.symbol, [replace(s, created_ms=now) if s.signal_id in stale else s for s in signals
                                  if s.live(now) or s.signal_id in stale], weights, profile, now, position)
        if revived.action == "none" or revived.chosen is None or revived.chosen.signal_id not in stale:
            return None
        self.reported_expired.update(stale)
        chosen = next(s for s in fresh if s.signal_id == revived.chosen.signal_id)
        p.action, p.chosen, p.verdict = revived.action, chosen, "REJECTED"
        p.reasons.append(("signal_ttl_expired", f"{chosen.signal_type} signal {chosen.signal_id} expired at "
                                                f"{iso(chosen.expires_ms)} (TTL {chosen.ttl_seconds} s): not acted on"))
        return p

    def _check(self, engine: DeskEngine, p: Plan, profile: Any, state: str, limits: Any) -> None:
        opening = p.action.startswith("open")
        if state in ("killed", "unknown"):
            p.verdict = "REJECTED"
            p.reasons.append(("kill_switch_active", f"the control plane is {state}: no orders"))
            return
        if state == "paused" and opening:
            p.verdict = "REJECTED"
            p.reasons.append(("kill_switch_entry_freeze", "trading is paused: no new exposure (exits still go)"))
            return
        if not opening:
            p.quantity = abs(engine.peek_position(p.symbol).size)
            p.verdict = "APPROVED"
            return
        account = engine.account()
        if account.daily_loss_pct >= profile.daily_loss_limit_pct:
            p.verdict = "REJECTED"
            limit = profile.daily_loss_limit_pct
            p.reasons.append(("daily_loss_limit_exceeded", f"daily loss {account.daily_loss_pct:.2%} >= the "
                                                           f"{profile.name} profile's {limit:.0%}"))
            return
        history = list(self.history.get(p.symbol, ()))
        kind = p.chosen.signal_type if p.chosen is not None else ""
        size(engine, engine.instruments.by_symbol[p.symbol], p, profile, history, self.cycle_seconds, limits,
             self.kelly_inputs(kind))

    def kelly_inputs(self, signal_type: str) -> tuple[float | None, float | None, str]:
        """spec/desk.md §4: Kelly only with at least 30 closed trades of that signal type, else the profile's
        risk per trade alone."""
        from quantdesk.tools.risk.sizing import KELLY_MIN_TRADES

        if self._kelly is None:
            closed: dict[str, list[float]] = {}
            for row in self.contributions()["by_signal"]:
                if not row["open"] and row["signal_type"]:
                    closed.setdefault(row["signal_type"], []).append(row["pnl_usd"])
            self._kelly = {}
            for kind, pnls in closed.items():
                wins, losses = [x for x in pnls if x > 0], [-x for x in pnls if x < 0]
                if len(pnls) >= KELLY_MIN_TRADES and wins and losses:
                    self._kelly[kind] = (len(wins) / len(pnls), (sum(wins) / len(wins)) / (sum(losses) / len(losses)),
                                         f"{len(pnls)} closed strategy trades of {kind} signals")
                else:
                    self._kelly[kind] = (None, None, f"not applied: {len(pnls)} closed strategy trades of {kind} "
                                                     f"signals, {KELLY_MIN_TRADES} (with a win and a loss) needed")
        return self._kelly.get(signal_type, (None, None, f"not applied: no closed strategy trade of {signal_type} "
                                                         "signals yet"))

    def _act(self, engine: DeskEngine, p: Plan, profile: Any, now: int) -> dict[str, Any]:
        order_id = None
        signal_id = p.chosen.signal_id if p.chosen is not None else None
        order_status = None
        if p.action == "close":
            signal_id = self.entries.get(p.symbol, signal_id)  # the exit belongs to the trade it unwinds
        if p.verdict != "REJECTED" and p.quantity > 0:
            position = engine.peek_position(p.symbol).size
            side = "buy" if p.action == "open_long" or (p.action == "close" and position < 0) else "sell"
            votes = tuple(Vote(v["agent_id"], v["confidence"], v["signal_id"], v["direction"])
                          for v in p.votes if v["counted"])
            context = IntentContext(source=SOURCE, agent_votes=votes, signal_id=signal_id,
                                    summary=f"strategy {p.action} {p.symbol} ({profile.name})")
            request = OrderRequest(p.symbol, side, "market", p.quantity,  # type: ignore[arg-type]
                                   reduce_only=p.action == "close")
            try:
                result = engine.place_order(request, context)
            except QuantdeskError as exc:
                p.verdict = "REJECTED"
                p.reasons.append(("order_error", exc.message))
            else:
                order = result.order
                order_id, order_status = order.order_id, order.status
                self.counters.orders += 1
                if order.status == "rejected":
                    self.counters.orders_rejected += 1
                    p.verdict = "REJECTED"
                    p.reasons += [(r.code, r.message) for r in order.reasons]
                elif result.fills and p.action != "close" and signal_id is not None:
                    self.entries[p.symbol] = signal_id
                    if p.sizing is not None:
                        self.brackets[p.symbol] = (p.sizing["stop_loss_price_usd"], p.sizing["take_profit_price_usd"])
                elif p.action == "close" and engine.peek_position(p.symbol).size == 0.0:
                    self.entries.pop(p.symbol, None)
                    self.brackets.pop(p.symbol, None)
                    self._kelly = None  # a trade closed: the Kelly inputs change
        verdict = p.verdict or "REJECTED"
        self.verdicts[verdict] += 1
        if verdict == "REJECTED":
            for code, _ in p.reasons:
                self.rejections[code] += 1
        details = {"verdict": verdict, "action": p.action, "combined_score": p.combined, "profile": profile.name,
                   "quantity": p.quantity, "sizing": p.sizing, "scalars": p.scalars, "order_status": order_status,
                   "trigger_signal_id": p.chosen.signal_id if p.chosen is not None else None}
        summary = f"strategy {verdict.lower()}: {p.action} {p.symbol}" + (f" {p.quantity:g}" if p.quantity else "")
        engine.commit_pending()
        log = self.desk.control.log
        try:
            with self.sql.transaction() as conn:
                row = log.stage(timestamp_ms=now, decision_type="strategy", source=SOURCE, symbol=p.symbol,
                                summary=summary, agent_votes=p.votes, signal_id=signal_id, order_id=order_id,
                                risk_passed=verdict != "REJECTED", reasons=p.reasons, details=details)
                log.write_staged(conn)
        except BaseException:
            log.discard_staged()
            raise
        self.counters.decisions += 1
        self.bus.publish(DecisionRecorded(row))
        return {"decision_id": row[1], "symbol": p.symbol, "action": p.action, "verdict": verdict,
                "quantity": p.quantity, "signal_id": signal_id, "order_id": order_id, "order_status": order_status,
                "combined_score": p.combined, "reasons": [{"code": c, "message": m} for c, m in p.reasons],
                "votes": p.votes}

    def run(self, *, cycles: int) -> dict[str, Any]:
        """Simulated clock: advance one cycle interval and run a cycle, `cycles` times (stops early on a kill)."""
        engine = self.engine
        if engine.clock.mode != "simulated":
            raise Conflict("run_strategy steps a simulated clock; on the real clock start the loop "
                           "(start_strategy_loop) and it runs every cycle_seconds")
        step = self.cycle_seconds * 1000
        started = time.perf_counter()
        first = engine.now_ms
        done = placed = 0
        stopped = None
        verdicts: Counter[str] = Counter()
        for _ in range(cycles):
            if engine.interrupted:
                stopped = "a kill switch asked the desk to stop"
                break
            if self.desk.control.view().state in ("killed", "unknown"):
                stopped = "trading is halted (the kill switch is latched)"
                break
            with engine.lock:
                target = (engine.now_ms // step + 1) * step
                report = engine.advance(target)
                if report.interrupted:
                    stopped = "a kill switch interrupted the advance"
                    break
                out = self._cycle(engine, True)
            done += 1
            placed += out["orders_placed"]
            verdicts.update(d["verdict"] for d in out["decisions"])
            time.sleep(0)  # let a waiting halt take the lock between cycles
        wall = time.perf_counter() - started
        return {"cycles": done, "from_ms": first, "to_ms": engine.now_ms, "from": iso(first),
                "to": iso(engine.now_ms), "orders_placed": placed, "verdicts": dict(verdicts), "stopped": stopped,
                "wall_seconds": wall, "control_state": self.desk.control.view().state,
                "equity_usd": engine.account().equity_usd, "data_source": engine.feed.data_source}

    def set_loop(self, enabled: bool, cycle_seconds: int | None, actor: str) -> dict[str, Any]:
        values: dict[str, Any] = {"loop_enabled": enabled}
        if cycle_seconds is not None:
            values["cycle_seconds"] = cycle_seconds
        with self.sql.transaction() as conn:
            store.put_meta(conn, values)
        return self.loop_status()

    def loop_status(self) -> dict[str, Any]:
        engine = self.engine
        recent = sorted(self.cycle_ms)
        return {"enabled": self.enabled, "cycle_seconds": self.cycle_seconds, "clock": engine.clock.mode,
                "profile": self.profile_name, "weights": self.weights, "generators": {
                    name: {"layer": g.layer, "ttl_seconds": LAYER_TTL_SECONDS[g.layer], "description": g.description}
                    for name, g in self.generators.items()},
                "traded_symbols": self.traded_symbols(), "last_cycle_ms": self.last_cycle_ms,
                "last_cycle": iso(self.last_cycle_ms), "cycles": self.counters.cycles,
                "cycle_wall_ms_median": recent[len(recent) // 2] if recent else None,
                "control_state": self.desk.control.view().state, "desk_time_ms": engine.now_ms}

    def _run_background(self) -> None:
        while not self._stop.wait(0.2):
            try:
                if not self.enabled:
                    continue
                engine = self.engine
                step = self.cycle_seconds * 1000
                if engine.clock.mode == "real":
                    engine.sync(max_step_ms=3_600_000)
                now = engine.now_ms
                due = self.last_cycle_ms is None or now // step > self.last_cycle_ms // step
                if due and engine.lock.acquire(timeout=0.5):
                    try:
                        self._cycle(engine, True)
                        with self.sql.transaction() as conn:
                            store.put_meta(conn, {"last_cycle_ms": now})
                    finally:
                        engine.lock.release()
            except Exception:  # the loop survives a bad cycle; the next one starts afresh
                self.counters.loop_errors += 1
                logger.exception("strategy cycle failed")

    def health(self) -> dict[str, Any]:
        """The trading services, each healthy or not (the TRADEOS /healthz shape is a reshaping of these)."""
        desk = self.desk
        health = desk.health()
        services = {"state_store": health["ledger_ok"], "execution": health["engine_ok"] and health["feed_ok"],
                    "control_plane": health["control_store_ok"], "event_bus": health["event_bus_ok"],
                    "signal_engine": self._thread is None or self._thread.is_alive()}
        running = desk.error is None
        return {"status": "healthy" if all(services.values()) else "degraded",
                "services": {k: "healthy" if v else "unhealthy" for k, v in services.items()},
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "control_state": desk.control.view().state if running else "unknown",
                "data_source": self.engine.feed.data_source if running else None}

    # --- profiles, halt and resume ----------------------------------------------------------------------

    def profile(self) -> dict[str, Any]:
        name = self.profile_name
        return {"profile": name, "parameters": PROFILES[name].describe(),
                "profiles": {k: v.describe() for k, v in PROFILES.items()}}

    def set_profile(self, name: str, actor: str) -> dict[str, Any]:
        if name not in PROFILES:
            raise InvalidArgument.from_problems([Problem("$.profile", f"unknown profile {name!r}; valid: "
                                                         f"{', '.join(PROFILES)}")])
        engine = self.engine
        with engine.lock:
            previous = self.profile_name
            now = engine.now_ms
            engine.commit_pending()
            log = self.desk.control.log
            try:
                # the setting and its decision-log entry commit together, or neither does
                with self.sql.transaction(durable=True) as conn:
                    store.put_meta(conn, {"profile": name})
                    row = log.stage(timestamp_ms=now, decision_type="control", source="signals:set_profile",
                                    symbol=None, summary=f"strategy profile: {previous} -> {name}", agent_votes=[],
                                    signal_id=None, order_id=None, risk_passed=True, reasons=[],
                                    details={"actor": actor, "previous_profile": previous, "profile": name,
                                             "parameters": PROFILES[name].describe()})
                    log.write_staged(conn)
            except BaseException:
                log.discard_staged()
                raise
        self.bus.publish(DecisionRecorded(row))
        self.bus.publish(ProfileChanged(now, previous, name, actor))
        return {**self.profile(), "previous_profile": previous, "changed": previous != name,
                "decision_id": row[1]}

    def halt(self, reason: str, actor: str) -> dict[str, Any]:
        """The control plane's kill switch (latched durably, open orders cancelled, positions kept)."""
        out = self.desk.control.kill(f"halt: {reason}", flatten=False, actor=actor)
        return {"status": "halted", "state": out["state"], "already_halted": out["already_killed"],
                "reason": out["reason"], "halted_at": out["killed_at"], "cancelled_orders": len(out["cancelled"]),
                "episode": out["episode"]}

    def resume(self, reason: str, actor: str) -> dict[str, Any]:
        """Killed -> reset (to paused) -> resume (to running), each step logged by the control plane; paused ->
        resume; running -> nothing. `unknown` (an unreadable control store) is reset like killed."""
        control = self.desk.control
        steps: list[str] = []
        state = control.view().state
        if state in ("killed", "unknown"):
            control.reset(f"resume after halt: {reason}", actor)
            steps.append("reset_kill_switch")
        if control.view().state == "paused":
            control.resume(reason, actor)
            steps.append("resume_trading")
        final = control.view().state
        return {"status": "resumed" if steps else "already_running", "state": final, "steps": steps,
                "reason": reason}

    def trading_portfolio(self) -> dict[str, Any]:
        """The TRADEOS portfolio: the analytics' portfolio (tools/risk) plus realized P&L since the desk's UTC day
        began (fills' realized P&L less their fees) and the drawdown from the equity peak."""
        if self.risk is None:
            raise Conflict("the portfolio needs the risk service")
        base = self.risk.portfolio(False, "1h", 1.0)
        engine = self.engine
        with engine.lock:
            now = engine.now_ms
            day = now // 86_400_000 * 86_400_000
            row = self.sql.query("SELECT COALESCE(SUM(realized_pnl_usd - fee_usd), 0) FROM desk_fills "
                                 "WHERE timestamp_ms >= ?", (day,))
            drawdown = engine.account().drawdown_pct
        return {"total_value": base["total_value_usd"], "cash": base["cash_usd"],
                "unrealized_pnl": base["unrealized_pnl_usd"], "realized_pnl_today": float(row[0][0]),
                "drawdown": drawdown, "positions": base["positions"], "timestamp": iso(now), "desk_time_ms": now,
                "data_source": base["data_source"], "execution_mode": "paper"}

    # --- metrics --------------------------------------------------------------------------------------

    def strategy_fills(self) -> list[Any]:
        return self.sql.query(
            "SELECT f.seq, f.symbol, f.side, f.quantity, f.price, f.fee_usd, f.realized_pnl_usd, f.timestamp_ms, "
            "o.signal_id, o.reduce_only FROM desk_fills f JOIN desk_orders o USING (order_id) "
            "WHERE o.source = ? ORDER BY f.seq", (SOURCE,))

    def contributions(self) -> dict[str, Any]:
        """P&L per signal from the signal_id on the strategy's fills: realized P&L less fees, plus the unrealized
        P&L of a position still open, which belongs to the signal that opened it. Funding is the position's, not
        a signal's: it is reported apart."""
        engine = self.engine
        with engine.lock:
            by_signal: dict[str, dict[str, Any]] = {}
            for f in self.strategy_fills():
                sid = f["signal_id"] or "(none)"
                row = by_signal.setdefault(sid, {"signal_id": sid, "symbol": f["symbol"], "realized_pnl_usd": 0.0,
                                                 "fees_usd": 0.0, "unrealized_pnl_usd": 0.0, "fills": 0,
                                                 "opened_ms": f["timestamp_ms"], "closed_ms": None})
                row["realized_pnl_usd"] += f["realized_pnl_usd"]
                row["fees_usd"] += f["fee_usd"]
                row["fills"] += 1
                if f["reduce_only"]:
                    row["closed_ms"] = f["timestamp_ms"]
            funding = 0.0
            for symbol, sid in self.entries.items():
                position = engine.peek_position(symbol)
                if position.size != 0.0 and sid in by_signal:
                    by_signal[sid]["unrealized_pnl_usd"] = float(engine.position_state(position)[6])
                    by_signal[sid]["closed_ms"] = None
            for symbol in self.traded_symbols():
                funding += engine.peek_position(symbol).funding_usd
            types: dict[str, str] = {}
            ids = list(by_signal)
            for chunk in range(0, len(ids), 500):
                part = ids[chunk:chunk + 500]
                for r in self.sql.query(f"SELECT signal_id, signal_type FROM signals_signals WHERE signal_id IN "
                                        f"({','.join('?' * len(part))})", part):
                    types[r[0]] = r[1]
        rows = []
        for sid, row in by_signal.items():
            row["pnl_usd"] = row["realized_pnl_usd"] - row["fees_usd"] + row["unrealized_pnl_usd"]
            row["signal_type"] = types.get(sid)
            row["open"] = row["closed_ms"] is None
            rows.append(row)
        rows.sort(key=lambda r: -abs(r["pnl_usd"]))
        by_type: dict[str, float] = {}
        for row in rows:
            key = row["signal_type"] or "(none)"
            by_type[key] = by_type.get(key, 0.0) + row["pnl_usd"]
        total = sum(r["pnl_usd"] for r in rows)
        return {"by_signal": rows, "by_signal_type": [{"signal_type": k, "pnl_usd": v} for k, v in
                                                       sorted(by_type.items(), key=lambda kv: -abs(kv[1]))],
                "strategy_pnl_usd": total, "funding_usd": funding}

    def signal_metrics(self, *, signal_type: str | None, symbol: str | None, block: int) -> dict[str, Any]:
        from quantdesk.tools.signals.evaluation import HORIZONS, forward_returns, horizon_stats, non_overlapping

        engine = self.engine
        if signal_type is not None and signal_type not in GENERATORS:
            raise InvalidArgument.from_problems([Problem("$.signal_type", f"unknown signal type {signal_type!r}; "
                                                         f"known: {', '.join(GENERATORS)}")])
        if symbol is not None:
            engine.instruments.get(symbol)
        step = self.cycle_seconds * 1000
        groups = self.sql.query("SELECT DISTINCT signal_type, symbol FROM signals_signals")
        out = []
        for g in groups:
            if (signal_type and g[0] != signal_type) or (symbol and g[1] != symbol):
                continue
            rows = self.sql.query("SELECT created_ms, direction, strength FROM signals_signals WHERE signal_type = ? "
                                  "AND symbol = ? ORDER BY created_ms", (g[0], g[1]))
            times = [int(r[0]) for r in rows]
            scores = [(1.0 if r[1] == "long" else -1.0) * float(r[2]) for r in rows]
            px = store.prices(self.sql, g[1], since_ms=times[0] if times else None)
            pt, pv = [t for t, _ in px], [p for _, p in px]
            horizons = []
            for h in HORIZONS:
                fwd = forward_returns(times, pt, pv, h * step)
                pairs = [(t, s, r) for t, s, r in zip(times, scores, fwd, strict=True) if r is not None]
                kept = non_overlapping([t for t, _, _ in pairs], h * step)
                stats = horizon_stats([pairs[i][1] for i in kept], [pairs[i][2] for i in kept], h, block)
                horizons.append(stats.to_dict())
            out.append({"signal_type": g[0], "symbol": g[1], "signals": len(rows), "horizons": horizons})
        contributions = self.contributions()
        return {"metrics": out, "contributions": contributions["by_signal"],
                "contributions_by_signal_type": contributions["by_signal_type"],
                "strategy_pnl_usd": contributions["strategy_pnl_usd"], "funding_usd": contributions["funding_usd"],
                "bar_seconds": self.cycle_seconds, "block": block,
                "method": "time-series Spearman IC of signed strength against the forward return over h cycles; "
                          "pairs sampled every h cycles (non-overlapping); IC mean/std/IR/t over blocks of "
                          f"{block} pairs; hit rate with a 95 % Wilson interval",
                "desk_time_ms": engine.now_ms, "data_source": engine.feed.data_source}

    def performance_metrics(self, bar: str) -> dict[str, Any]:
        contributions = self.contributions()
        trades = [r for r in contributions["by_signal"] if not r["open"]]
        wins = [r["pnl_usd"] for r in trades if r["pnl_usd"] > 0]
        losses = [-r["pnl_usd"] for r in trades if r["pnl_usd"] < 0]
        durations = [(r["closed_ms"] - r["opened_ms"]) / 1000 for r in trades if r["closed_ms"] is not None]
        null_reasons: dict[str, str] = {}
        risk: dict[str, Any] = {}
        if self.risk is not None:
            try:
                risk = self.risk.risk_metrics(bar=bar, since_ms=None, until_ms=None, window_days=None,
                                              risk_free_rate_annual=0.0, min_acceptable_return_annual=None,
                                              confidence_level=0.95, var_method="historical")
                null_reasons.update(risk.get("null_reasons") or {})
            except InvalidArgument as exc:
                null_reasons["sharpe_ratio"] = null_reasons["sortino_ratio"] = exc.message
        if not trades:
            null_reasons["win_rate"] = "no closed strategy trade yet"
        if not losses:
            null_reasons["profit_factor"] = "no losing closed trade: profit factor is undefined"
        engine = self.engine
        return {"sharpe_ratio": risk.get("sharpe_ratio"), "sortino_ratio": risk.get("sortino_ratio"),
                "max_drawdown_pct": risk.get("max_drawdown_pct"), "volatility_annual": risk.get("volatility_annual"),
                "total_return_pct": risk.get("total_return_pct"), "periods_per_year": risk.get("periods_per_year"),
                "bar": bar, "observations": risk.get("observations"),
                "closed_trades": len(trades), "open_trades": len(contributions["by_signal"]) - len(trades),
                "win_rate": len(wins) / len(trades) if trades else None,
                "profit_factor": sum(wins) / sum(losses) if losses else None,
                "avg_trade_duration_seconds": sum(durations) / len(durations) if durations else None,
                "strategy_pnl_usd": contributions["strategy_pnl_usd"], "funding_usd": contributions["funding_usd"],
                "null_reasons": null_reasons,
                "conventions": "Sharpe and Sortino of the desk's equity at each bar, 365-day year (tools/risk); "
                               "trades are the strategy's round trips, one per opening signal",
                "desk_time_ms": engine.now_ms, "data_source": engine.feed.data_source}

    def system_metrics(self) -> dict[str, Any]:
        engine = self.engine
        m = engine.metrics
        control = self.desk.control
        recent = sorted(self.cycle_ms)

        def pct(q: float) -> float | None:
            return recent[min(len(recent) - 1, int(q * len(recent)))] if recent else None

        submitted = m.orders_submitted
        decisions = sum(self.verdicts.values())
        # breaker trips are written to the control plane's risk-event log: the durable count, all time
        logged = {str(r[0]): int(r[1]) for r in self.sql.query(
            "SELECT code, COUNT(*) FROM control_risk_events GROUP BY code")}
        return {"cycle_latency_ms": {"count": len(recent), "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
                                     "max": recent[-1] if recent else None},
                "orders_submitted": submitted, "orders_rejected": sum(m.rejections.values()),
                "order_rejection_rate": sum(m.rejections.values()) / submitted if submitted else None,
                "order_rejections_by_reason": dict(m.rejections),
                "order_rejection_rates_by_reason": {k: v / submitted for k, v in m.rejections.items()}
                if submitted else {},
                "strategy_decisions": decisions, "strategy_verdicts": dict(self.verdicts),
                "strategy_rejection_rate": self.verdicts["REJECTED"] / decisions if decisions else None,
                "strategy_rejections_by_reason": dict(self.rejections),
                "strategy_rejection_rates_by_reason": {k: v / decisions for k, v in self.rejections.items()}
                if decisions else {},
                "circuit_breaker_activations": control.metrics.breaker_trips,
                "circuit_breaker_activations_logged": logged,
                "kill_switch_activations": control.metrics.kill_switch_trips,
                "kill_switch_activations_by_actor": dict(control.metrics.trips_by_actor or {}),
                "control_state": control.view().state, "counters": asdict(self.counters),
                "event_bus": {"published": self.bus.stats().published, "dropped": self.bus.stats().dropped_total},
                "since": "process start (counters are in memory; the decision log keeps every verdict, the risk-event "
                         "log every breaker trip: circuit_breaker_activations_logged is all time)",
                "desk_time_ms": engine.now_ms, "data_source": engine.feed.data_source}

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"{k}_total": v for k, v in asdict(self.counters).items()}
        out["verdicts_total"] = dict(self.verdicts)
        return out

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
