"""The risk service as the server runs it: recording on the desk clock, alerts, regimes, and the answers of
the risk tools.

Recording reads the desk's equity series from its ledger (the source of truth), so nothing is lost when a
bus event is: a background thread wakes on the desk's `equity` events and catches up, and every tool that
reads recorded values catches up first, so an answer never lags the desk. Each catch-up writes its rows,
rule states and alerts in one transaction, then publishes `alert` and `metrics` events. The same thread
publishes `portfolio` snapshots after fills and equity samples and moves the tracked regimes forward when
the engine is free. Lock order: the engine's lock, then this service's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from quantdesk.server.errors import InvalidArgument, NotFound, Problem, QuantdeskError, Unavailable
from quantdesk.tools.bus.bus import EventBus, Subscription
from quantdesk.tools.desk.model import IntentContext, OrderRequest
from quantdesk.tools.risk import series
from quantdesk.tools.risk.alerts import AlertBook
from quantdesk.tools.risk.bars import TIMEFRAMES, BarCache, Bars
from quantdesk.tools.risk.events import AlertChanged, MetricsRecorded, PortfolioUpdated, RegimeChanged
from quantdesk.tools.risk.exposure import (
    SpotCostBasis,
    asset_exposures,
    largest_position,
    limits_view,
    resolve_asset,
    usd_limit_changes,
)
from quantdesk.tools.risk.regime_tracker import RegimeTracker, analyze, periods_per_year
from quantdesk.tools.risk.store import RiskSql, ensure_schema

if TYPE_CHECKING:
    from quantdesk.tools.control.store import RiskLimits
    from quantdesk.tools.desk.engine import DeskEngine
    from quantdesk.tools.desk.service import DeskService
    from quantdesk.tools.risk.sizing import SizingRequest

logger = logging.getLogger("quantdesk.risk")
CATCH_UP_SAMPLES = 10_000
WAKE_TOPICS = ("equity", "fill", "funding", "liquidation", "position")
PORTFOLIO_INTERVAL_SECONDS = 0.25


@dataclass(slots=True)
class RiskCounters:
    samples_recorded: int = 0
    metric_events: int = 0
    portfolio_events: int = 0
    hedge_orders: int = 0
    hedge_fills: int = 0
    background_errors: int = 0


class RiskService:
    def __init__(self, desk: DeskService, bus: EventBus, sql: RiskSql, *, background: bool = True) -> None:
        self.desk = desk
        self.bus = bus
        self.sql = sql
        ensure_schema(sql)
        self._lock = threading.RLock()
        self.recorder = series.MetricRecorder(sql)
        now = desk.engine.now_ms if desk.error is None else 0
        self.alerts = AlertBook(sql, now)
        self.bars = BarCache(sql)
        seed = desk.config.seed if desk.error is None else 0
        self.regimes = RegimeTracker(sql, self.bars, seed)
        self.costs = SpotCostBasis()
        self.counters = RiskCounters()
        self._stop = threading.Event()
        self._subscription: Subscription | None = None
        self._thread: threading.Thread | None = None
        if background and desk.error is None:
            # subscribe before the thread starts: no equity event between now and its first wait is missed
            self._subscription = bus.subscribe(WAKE_TOPICS, name="risk-recorder", max_queue=1_000)
            self._thread = threading.Thread(target=self._run, name="risk-recorder", daemon=True)
            self._thread.start()

    @property
    def engine(self) -> DeskEngine:
        return self.desk.engine

    # --- recording ---------------------------------------------------------------------------------

    def _limits(self) -> RiskLimits | None:
        try:
            return self.desk.control.limits()
        except QuantdeskError:
            return None  # an unreadable control store: rules relative to a limit wait, the rest still run

    def catch_up(self) -> int:
        """Record every desk equity sample not recorded yet; returns how many were recorded."""
        engine = self.engine
        interval = engine.config.equity_sample_seconds * 1000
        total = 0
        with self._lock:
            cursor = self.recorder.state.recorded_until_ms + 1
            latest: dict[str, float] = {}
            latest_t = -1
            raised: list[dict[str, Any]] = []
            limits = self._limits()
            while cursor <= engine.now_ms:
                until = cursor + CATCH_UP_SAMPLES * interval
                samples = engine.ledger.list_equity(since_ms=cursor, until_ms=until, limit=2 * CATCH_UP_SAMPLES)
                cursor = until + 1
                if not samples:
                    continue
                points = [series.EquityPoint(s.timestamp_ms, s.equity_usd, s.gross_exposure_usd,
                                             s.net_exposure_usd, s.drawdown_pct) for s in samples]
                try:
                    with self.sql.transaction() as conn:
                        written = self.recorder.record(conn, points)
                        raised += self.alerts.evaluate(conn, written, limits)
                except BaseException:
                    self.recorder = series.MetricRecorder(self.sql)
                    self.alerts.resync()
                    raise
                total += len(points)
                for name, t, value in written:
                    if t >= latest_t:
                        if t > latest_t:
                            latest = {}
                        latest_t = t
                        latest[name] = value
            self.counters.samples_recorded += total
        for alert in raised:
            self.bus.publish(AlertChanged("raised", alert))
        if total:
            self.counters.metric_events += 1
            self.bus.publish(MetricsRecorded(latest_t, latest, total))
        return total

    def _run(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        subscription = self._subscription
        assert subscription is not None
        portfolio_due = regimes_due = False
        last_portfolio = 0.0
        while not self._stop.is_set():
            due_in = last_portfolio + PORTFOLIO_INTERVAL_SECONDS - time.monotonic()
            wait = max(0.0, due_in) if portfolio_due else 1.0
            batch = await subscription.next_batch(wait, max_items=10_000)
            if self._stop.is_set():
                return
            topics = {e.topic for e in batch}
            try:
                if "equity" in topics:
                    self.catch_up()
                    regimes_due = True
                portfolio_due = portfolio_due or bool(topics)
                # at most a few snapshots a second: under an order storm the desk's lock is not taken per fill
                if portfolio_due and time.monotonic() >= last_portfolio + PORTFOLIO_INTERVAL_SECONDS:
                    portfolio_due = not self.publish_portfolio(wait_seconds=0.2)
                    last_portfolio = time.monotonic()
                if regimes_due and self._engine_idle():
                    regimes_due = False
                    self.update_regimes(stop=self._stop.is_set)
            except Exception:  # the recorder must survive a bad step; the next wake-up retries from the ledger
                self.counters.background_errors += 1
                logger.exception("risk recorder step failed")

    def _engine_idle(self) -> bool:
        lock = self.engine.lock
        if lock.acquire(blocking=False):
            lock.release()
            return True
        return False

    def publish_portfolio(self, wait_seconds: float) -> bool:
        """Publish a portfolio snapshot; False when the engine stayed busy (an advance) for wait_seconds."""
        from quantdesk.tools.risk.portfolio import portfolio

        engine = self.engine
        if not engine.lock.acquire(timeout=wait_seconds):
            return False
        try:
            snapshot = portfolio(engine, self.costs)
            snapshot["data_source"] = engine.feed.data_source
        finally:
            engine.lock.release()
        self.counters.portfolio_events += 1
        self.bus.publish(PortfolioUpdated(snapshot["desk_time_ms"], snapshot))
        return True

    def update_regimes(self, stop: Any = None) -> list[RegimeChanged]:
        with self._lock:
            events = self.regimes.update(self.engine, stop)
        for event in events:
            self.bus.publish(event)
        return events

    # --- risk metrics --------------------------------------------------------------------------------

    def risk_metrics(self, *, bar: str, since_ms: int | None, until_ms: int | None, window_days: float | None,
                     risk_free_rate_annual: float, min_acceptable_return_annual: float | None,
                     confidence_level: float, var_method: str) -> dict[str, Any]:
        from quantdesk.tools.risk.metrics import MIN_RETURNS, compute_metrics, not_enough_data
        from quantdesk.tools.risk.metrics import periods_per_year as periods_per_year_of

        self.catch_up()
        engine = self.engine
        bar_seconds = series.BARS[bar]
        if window_days is not None:
            end = until_ms if until_ms is not None else engine.now_ms
            since_ms = end - int(window_days * 86_400_000)
            until_ms = end
        if since_ms is not None and until_ms is not None and since_ms >= until_ms:
            raise InvalidArgument.from_problems([Problem("$.since_ms", "must be before until_ms")])
        grid = series.equity_grid(self.sql, bar_seconds, since_ms, until_ms)
        returns = max(0, len(grid.equity) - 1)
        if returns < MIN_RETURNS:
            raise not_enough_data(returns, "$.bar", bar)
        import numpy as np

        equity = np.asarray(grid.equity, dtype=np.float64)
        if bool(np.any(equity <= 0)):
            raise InvalidArgument.from_problems([Problem("$.since_ms", "the window holds a non-positive equity: "
                                                                       "returns are undefined")])
        p = periods_per_year_of(bar_seconds)
        levels = (0.95, confidence_level)
        m = compute_metrics(equity, periods=p, risk_free_rate_annual=risk_free_rate_annual,
                            min_acceptable_return_annual=min_acceptable_return_annual, confidence_levels=levels)
        chosen = m.tail_risk(var_method, confidence_level)  # type: ignore[arg-type]
        at_95 = m.tail_risk(var_method, 0.95)  # type: ignore[arg-type]
        reasons = dict(m.null_reasons)
        return {
            "var_method": var_method, "var_method_used": at_95.method_used, "periods_per_year": p, "bar": bar,
            "bar_seconds": bar_seconds, "horizon_bars": 1, "observations": m.observations,
            "equity_points": len(grid.equity), "window_start_ms": grid.timestamps_ms[0],
            "window_end_ms": grid.timestamps_ms[-1], "window_start": series.iso(grid.timestamps_ms[0]),
            "window_end": series.iso(grid.timestamps_ms[-1]), "start_equity_usd": grid.equity[0],
            "end_equity_usd": grid.equity[-1], "total_return_pct": m.total_return_pct,
            "volatility_annual": m.volatility_annual, "sharpe_ratio": m.sharpe_ratio, "sortino_ratio": m.sortino_ratio,
            "max_drawdown_pct": m.max_drawdown_pct, "cagr": m.cagr, "calmar_ratio": m.calmar_ratio,
            "var_95_pct": at_95.var_pct, "cvar_95_pct": at_95.cvar_pct, "confidence_level": confidence_level,
            "var_pct": chosen.var_pct, "cvar_pct": chosen.cvar_pct, "mean_return_per_bar": m.mean_return_per_bar,
            "std_return_per_bar": m.std_return_per_bar, "skewness": m.skewness, "excess_kurtosis": m.excess_kurtosis,
            "risk_free_rate_annual": risk_free_rate_annual, "risk_free_rate_per_bar": m.risk_free_rate_per_bar,
            "min_acceptable_return_per_bar": m.min_acceptable_return_per_bar,
            "tail_risk": [asdict(t) for t in m.tail], "low_confidence": at_95.low_confidence or chosen.low_confidence,
            "null_reasons": reasons, "data_source": self._data_source(), "execution_mode": "paper",
            "desk_time_ms": engine.now_ms,
        }

    def data_source(self) -> str:
        return self._data_source()

    def _data_source(self) -> str:
        engine = self.engine
        with engine.lock:
            return str(engine.feed.data_source)

    # --- exposure and limits ----------------------------------------------------------------------------

    def exposure(self, include_flat: bool) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            engine.sync()
            rows = asset_exposures(engine, self.costs, include_flat=include_flat)
            account = engine.account()
            return {"assets": [r.to_dict() for r in rows], "equity_usd": account.equity_usd,
                    "total_net_exposure_usd": sum(r.net_exposure_usd for r in rows),
                    "total_gross_exposure_usd": sum(r.gross_exposure_usd for r in rows),
                    "total_net_exposure_fraction": sum(r.net_exposure_fraction for r in rows),
                    "total_gross_exposure_fraction": sum(r.gross_exposure_fraction for r in rows),
                    "data_source": engine.feed.data_source, "execution_mode": "paper", "desk_time_ms": engine.now_ms}

    def limits(self) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            engine.sync()
            view = limits_view(self.desk.control.limits(), engine.account(), largest_position(engine))
            return {**view, "desk_time_ms": engine.now_ms, "data_source": engine.feed.data_source}

    def set_limits(self, values: dict[str, float], actor: str) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            engine.sync()
            changes = usd_limit_changes(values, engine.account())
            self.desk.control.set_limits(changes, actor)
            return {**self.limits(), "changed": changes}

    # --- sizing ------------------------------------------------------------------------------------------

    def position_size(self, asset: str, kind: str, request: SizingRequest, *, entry_price_usd: float | None,
                      atr_usd: float | None, atr_period: int, timeframe: str, volatility_annual: float | None,
                      win_rate: float | None, payoff_ratio: float | None) -> dict[str, Any]:
        import numpy as np

        from quantdesk.tools.risk.sizing import KELLY_MIN_TRADES, SizingFacts, size_position

        engine = self.engine
        with engine.lock:
            engine.sync()
            instrument = resolve_asset(engine, asset, "$.asset", prefer=kind)
        sources: dict[str, str] = {}
        if atr_usd is None or volatility_annual is None:
            tfs = TIMEFRAMES[timeframe]
            tf = tfs * 1000
            count = max(atr_period + 1, 31)
            end = engine.now_ms // tf * tf
            bars = self.bars.bars(engine, instrument.symbol, tfs, end - count * tf, end)
            if atr_usd is None:
                if len(bars) < atr_period + 1:
                    raise InvalidArgument.from_problems([Problem("$.atr_usd", (
                        f"not enough data for ATR({atr_period}) on {timeframe} bars: the desk's market has {len(bars)} "
                        f"closed bars, {atr_period + 1} are needed; pass atr_usd or use a shorter timeframe"))])
                atr_usd = _atr(bars, atr_period)
                sources["atr"] = f"ATR({atr_period}) on {timeframe} bars of {instrument.symbol}: mean true range"
            if volatility_annual is None and len(bars) >= 3:
                r = np.diff(np.log(bars.close))
                volatility_annual = float(r.std(ddof=1)) * math.sqrt(periods_per_year(timeframe))
                sources["volatility"] = f"std of {len(r)} {timeframe} log returns, annualized"
        if volatility_annual is not None:
            sources.setdefault("volatility", "given")
        with engine.lock:
            engine.sync()
            account = engine.account()
            market = engine.market(instrument)
            if entry_price_usd is None:
                book = market.book
                mid = book.mid if book is not None else None
                entry_price_usd = mid if mid is not None else market.reference_mark()
                sources["entry"] = f"{instrument.symbol} mid price now"
            else:
                sources["entry"] = "given"
            if entry_price_usd is None or entry_price_usd <= 0:
                raise Unavailable(f"no price for {instrument.symbol} yet")
            if instrument.is_perpetual:
                position = engine.peek_position(instrument.symbol)
                held = abs(position.size) * entry_price_usd
                leverage = position.leverage
            else:
                held = abs(engine.holding(instrument.base)) * entry_price_usd
                leverage = 1.0
            limits = self.desk.control.limits()
            kelly_source = None
            if win_rate is None or payoff_ratio is None:
                fills = engine.ledger.list_fills(symbol=instrument.symbol, order_id=None, since_ms=None,
                                                 until_ms=None, liquidity=None, limit=100_000)
                closed = [f.realized_pnl_usd for f in fills if f.realized_pnl_usd != 0.0]
                wins = [x for x in closed if x > 0]
                losses = [-x for x in closed if x < 0]
                if len(closed) >= KELLY_MIN_TRADES and wins and losses:
                    win_rate = len(wins) / len(closed)
                    payoff_ratio = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
                    kelly_source = f"{len(closed)} closing fills of {instrument.symbol} on the desk"
                else:
                    win_rate = payoff_ratio = None
                    kelly_source = (f"not applied: {len(closed)} closing fills of {instrument.symbol} on the desk, "
                                    f"{KELLY_MIN_TRADES} needed (or pass win_rate and payoff_ratio)")
            else:
                kelly_source = "given win_rate and payoff_ratio"
            facts = SizingFacts(
                symbol=instrument.symbol, is_perpetual=instrument.is_perpetual, equity_usd=account.equity_usd,
                available_usd=account.available_usd, gross_exposure_usd=account.gross_exposure_usd,
                position_notional_usd=held, entry_price_usd=entry_price_usd, atr_usd=float(atr_usd or 0.0),
                volatility_annual=volatility_annual, taker_fee_rate=instrument.taker_fee_bps * 1e-4,
                lot_size=instrument.lot_size, quantity_decimals=instrument.quantity_decimals,
                tick_size=instrument.tick_size, min_notional_usd=instrument.min_notional_usd,
                symbol_leverage=leverage, maintenance_margin_rate=instrument.maintenance_margin_rate or 0.0,
                max_position_notional_usd=limits.max_position_notional_usd,
                max_gross_exposure_usd=limits.max_gross_exposure_usd, max_leverage=limits.max_leverage,
                max_order_notional_usd=limits.max_order_notional_usd, win_rate=win_rate, payoff_ratio=payoff_ratio,
                kelly_source=kelly_source, sources=sources)
            out = size_position(request, facts)
            return {"asset": instrument.base, **out, "data_source": engine.feed.data_source,
                    "desk_time_ms": engine.now_ms}

    # --- hedging -----------------------------------------------------------------------------------------

    def _plan(self, target: float, assets: list[str] | None) -> tuple[Any, Any, Any, Any]:
        from quantdesk.tools.risk.hedging import plan_hedge

        engine = self.engine
        wanted = self._asset_set(assets)
        rows = asset_exposures(engine, self.costs, include_flat=False)
        account = engine.account()
        adjustments, skipped = plan_hedge(rows, engine.instruments.by_symbol, target, self.desk.control.limits(),
                                          account, wanted)
        return rows, adjustments, skipped, account

    def _asset_set(self, assets: list[str] | None) -> set[str] | None:
        if assets is None:
            return None
        engine = self.engine
        return {resolve_asset(engine, a, f"$.assets[{i}]").base for i, a in enumerate(assets)}

    def hedge_analysis(self, target: float, assets: list[str] | None, correlation_hours: float) -> dict[str, Any]:
        from quantdesk.tools.risk.hedging import commentary

        engine = self.engine
        with engine.lock:
            engine.sync()
            rows, adjustments, skipped, account = self._plan(target, assets)
            data_source = engine.feed.data_source
        correlations = {r.asset: self._correlation(r.spot_symbol, r.perpetual_symbol, r.futures_quantity,
                                                   correlation_hours)
                        for r in rows if r.spot_quantity > 0 and r.futures_quantity != 0 and r.spot_symbol
                        and r.perpetual_symbol}
        return self._analysis_out(rows, adjustments, skipped, account, target, correlations, data_source,
                                  commentary(rows, adjustments, skipped, target, account.equity_usd))

    @staticmethod
    def _analysis_out(rows: Any, adjustments: Any, skipped: Any, account: Any, target: float,
                      correlations: dict[str, tuple[float | None, str | None]], data_source: str,
                      text: str) -> dict[str, Any]:
        hedged = [r for r in rows if r.spot_quantity > 0]
        spot_value = sum(r.spot_value_usd for r in hedged)
        net = sum(r.net_exposure_usd for r in hedged)
        offset = sum(-r.futures_value_usd for r in hedged)
        largest = max(hedged, key=lambda r: r.spot_value_usd, default=None)
        correlation = correlations.get(largest.asset, (None, None))[0] if largest is not None else None
        return {
            "commentary": text, "commentary_source": "computed from the numbers", "correlation": correlation,
            "correlation_asset": largest.asset if largest is not None else None,
            "target_hedge_ratio": target, "hedge_ratio": offset / spot_value if spot_value > 0 else None,
            "current_net_exposure_usd": net, "target_net_exposure_usd": (1.0 - target) * spot_value,
            "current_net_exposure_fraction": net / spot_value if spot_value > 0 else None,
            "target_net_exposure_fraction": (1.0 - target) if spot_value > 0 else None,
            "spot_value_usd": spot_value, "equity_usd": account.equity_usd,
            "margin_used_usd": sum(r.futures_initial_margin_usd for r in rows),
            "margin_usage": (sum(r.futures_initial_margin_usd for r in rows) / account.equity_usd
                             if account.equity_usd > 0 else None),
            "assets": [{**r.to_dict(), "correlation": correlations.get(r.asset, (None, None))[0],
                        "correlation_note": correlations.get(r.asset, (None, "no hedge to correlate"))[1]}
                       for r in rows],
            "adjustments": [a.to_dict() for a in adjustments], "skipped": [s.to_dict() for s in skipped],
            "data_source": data_source, "execution_mode": "paper",
        }

    def _correlation(self, spot: str, perp: str, size: float, hours: float) -> tuple[float | None, str | None]:
        """Correlation of the spot holding's and the perpetual position's one-minute P&L (near -1 for a hedge)."""
        import numpy as np

        if hours <= 0:
            return None, "not computed (correlation_lookback_hours is 0)"
        engine = self.engine
        end = engine.now_ms // 60_000 * 60_000
        start = end - int(hours * 3_600_000)
        a = self.bars.bars(engine, spot, 60, start, end)
        b = self.bars.bars(engine, perp, 60, start, end)
        common, ia, ib = np.intersect1d(a.open_ms, b.open_ms, return_indices=True)
        if common.shape[0] < 10:
            return None, f"not enough one-minute bars ({common.shape[0]}, 10 needed)"
        ra = np.diff(np.log(a.close[ia]))
        rb = np.diff(np.log(b.close[ib]))
        if float(ra.std()) == 0.0 or float(rb.std()) == 0.0:
            return None, "a price did not move in the window"
        # a short position's P&L moves against its price
        sign = 1.0 if size > 0 else -1.0
        return sign * float(np.corrcoef(ra, rb)[0, 1]), f"{ra.shape[0]} one-minute returns over {hours:g} h"

    def execute_hedge(self, target: float, assets: list[str] | None, request_id: str | None,
                      actor: str) -> dict[str, Any]:
        from quantdesk.tools.risk.hedging import commentary

        engine = self.engine
        with engine.lock:
            engine.sync()
            rows, adjustments, skipped, account = self._plan(target, assets)
            orders = []
            for adj in adjustments:
                request = OrderRequest(adj.symbol, adj.side, "market", adj.quantity, reduce_only=adj.reduce_only,
                                       client_order_id=f"hedge-{request_id}-{adj.asset}" if request_id else None)
                summary = f"hedge {adj.asset} to ratio {target:g} ({actor}): {adj.side} {adj.quantity:g} {adj.symbol}"
                context = IntentContext(source="risk:hedge", summary=summary)
                orders.append(self._place(engine, request, context, adj.asset))
            after = asset_exposures(engine, self.costs, include_flat=False)
            text = commentary(rows, adjustments, skipped, target, account.equity_usd)
            return self._execution_out(orders, after, skipped, target, text, engine, "hedge adjustments")

    def close_hedges(self, include_unhedged: bool, request_id: str | None, actor: str) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            engine.sync()
            rows = asset_exposures(engine, self.costs, include_flat=False)
            orders = []
            skipped = []
            for r in rows:
                if r.perpetual_symbol is None or r.futures_quantity == 0.0:
                    continue
                is_hedge = r.spot_quantity > 0 and r.futures_quantity < 0
                if not (is_hedge or include_unhedged):
                    skipped.append({"asset": r.asset, "reason": f"{r.perpetual_symbol} {r.futures_quantity:g} does not "
                                                                "offset a spot holding: not a hedge (include_unhedged "
                                                                "closes it too)"})
                    continue
                side: Literal["buy", "sell"] = "buy" if r.futures_quantity < 0 else "sell"
                request = OrderRequest(r.perpetual_symbol, side, "market", abs(r.futures_quantity), reduce_only=True,
                                       client_order_id=f"close-{request_id}-{r.asset}" if request_id else None)
                context = IntentContext(source="risk:close_hedges",
                                        summary=f"close hedge {r.perpetual_symbol} ({actor})")
                orders.append(self._place(engine, request, context, r.asset))
            after = asset_exposures(engine, self.costs, include_flat=False)
            from quantdesk.tools.risk.hedging import Skip

            return self._execution_out(orders, after, [Skip(s["asset"], s["reason"]) for s in skipped], 0.0,
                                       None, engine, "hedge closes")

    def _place(self, engine: DeskEngine, request: OrderRequest, context: IntentContext, asset: str
               ) -> dict[str, Any]:
        try:
            result = engine.place_order(request, context)
        except QuantdeskError as exc:
            return {"asset": asset, "order": None, "fills": [], "accepted": False, "error": exc.message}
        self.counters.hedge_orders += 1
        self.counters.hedge_fills += len(result.fills)
        return {"asset": asset, "order": result.order.to_dict(), "fills": [f.to_dict() for f in result.fills],
                "accepted": result.order.status != "rejected", "error": None,
                "idempotent_replay": result.replayed}

    @staticmethod
    def _execution_out(orders: list[dict[str, Any]], after: Any, skipped: Any, target: float, text: str | None,
                       engine: DeskEngine, what: str) -> dict[str, Any]:
        trades = [{"asset": f["symbol"], "symbol": f["symbol"], "side": f["side"], "amount": f["quantity"],
                   "price": f["price"], "fee_usd": f["fee_usd"], "fill_id": f["fill_id"], "order_id": f["order_id"],
                   "timestamp_ms": f["timestamp_ms"], "timestamp": series.iso(f["timestamp_ms"])}
                  for o in orders for f in o["fills"]]
        complete = all(o["order"] is not None and o["order"]["status"] == "filled" for o in orders)
        if not orders:
            status, message = "nothing_to_do", f"no {what} were needed"
        elif complete:
            status, message = "completed", f"executed {len(orders)} {what} with {len(trades)} fills"
        elif trades:
            status, message = "partial", f"{len(trades)} fills; some orders were not filled completely or were refused"
        else:
            status, message = "failed", "no order was filled: see each order's reasons"
        return {"status": status, "message": message, "executed_trades": trades, "orders": orders,
                "skipped": [s.to_dict() for s in skipped], "assets_after": [r.to_dict() for r in after],
                "target_hedge_ratio": target, "commentary": text, "data_source": engine.feed.data_source,
                "execution_mode": "paper", "desk_time_ms": engine.now_ms}

    # --- portfolio, trades, series --------------------------------------------------------------------

    def portfolio(self, include_history: bool, history_bar: str, history_days: float,
                  refresh: bool = False) -> dict[str, Any]:
        from quantdesk.tools.risk.portfolio import portfolio

        if refresh:
            self.reload()
        engine = self.engine
        with engine.lock:
            engine.sync()
            out = portfolio(engine, self.costs)
            out["data_source"] = engine.feed.data_source
        out["execution_mode"] = "paper"
        out["history"] = None
        if include_history:
            self.catch_up()
            since = engine.now_ms - int(history_days * 86_400_000)
            grid = series.equity_grid(self.sql, series.BARS[history_bar], since, engine.now_ms)
            out["history"] = [{"timestamp_ms": t, "timestamp": series.iso(t), "total_value_usd": v}
                              for t, v in zip(grid.timestamps_ms, grid.equity, strict=True)]
        return out

    def reload(self) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            engine.sync()
            self.costs = SpotCostBasis()
            data_source = engine.feed.data_source
        recorded = self.catch_up()
        return {"status": "success", "message": f"desk state re-read from its ledger up to the desk clock; {recorded} "
                                                "new equity samples recorded", "desk_time_ms": engine.now_ms,
                "timestamp": series.iso(engine.now_ms), "samples_recorded": recorded, "data_source": data_source,
                "execution_mode": "paper"}

    def trades(self, *, symbol: str | None, side: str | None, source: str | None, liquidity: str | None,
               since_ms: int | None, until_ms: int | None, limit: int) -> dict[str, Any]:
        from quantdesk.tools.risk.portfolio import trades

        engine = self.engine
        symbols = None
        if symbol is not None:
            if symbol in engine.instruments.by_symbol:
                symbols = [symbol]
            else:
                base = resolve_asset(engine, symbol, "$.symbol").base
                symbols = [i.symbol for i in engine.instruments.instruments if i.base == base]
        with engine.lock:
            rows = trades(engine, symbols=symbols, side=side, source=source, liquidity=liquidity, since_ms=since_ms,
                          until_ms=until_ms, limit=limit)
            data_source = engine.feed.data_source
        return {"trades": rows, "count": len(rows), "data_source": data_source, "execution_mode": "paper"}

    def metric_series(self, metric: str, start_ms: int | None, end_ms: int | None, aggregation: str,
                      bucket_seconds: int) -> dict[str, Any]:
        self.catch_up()
        engine = self.engine
        end = end_ms if end_ms is not None else engine.now_ms
        start = start_ms if start_ms is not None else end - series.DAY_MS
        if start > end:
            raise InvalidArgument.from_problems([Problem("$.start_ms", "must not be after end_ms")])
        points = series.aggregate(self.sql, metric, start, end, aggregation, bucket_seconds)  # type: ignore[arg-type]
        spec = series.METRICS[metric]
        return {"metric_type": metric, "unit": spec.unit, "description": spec.description, "cadence": spec.cadence,
                "aggregation": aggregation, "bucket_seconds": bucket_seconds, "start_ms": start, "end_ms": end,
                "start": series.iso(start), "end": series.iso(end), "points": points, "count": len(points),
                "data_source": self._data_source(), "execution_mode": "paper"}

    def latest_metric(self, metric: str) -> dict[str, Any]:
        self.catch_up()
        point = series.latest(self.sql, metric)
        spec = series.METRICS[metric]
        if point is None:
            when = "at every desk hour once a day of hourly returns exists" if spec.cadence == "hourly" \
                else "at every desk equity sample"
            raise NotFound(f"no {metric} value recorded yet (it is recorded {when})")
        return {"metric_type": metric, "unit": spec.unit, **point, "data_source": self._data_source(),
                "execution_mode": "paper"}

    # --- alerts ---------------------------------------------------------------------------------------

    def create_rule(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            rule = self.alerts.create(now_ms=self.engine.now_ms, **kwargs)
        return self.describe_rule(rule, False)

    def describe_rule(self, rule: Any, firing: bool) -> dict[str, Any]:
        return {**asdict(rule), "firing": firing, "threshold_now": rule.threshold_now(self._limits()),
                "condition": rule.describe(self._limits())}

    def rules(self) -> list[dict[str, Any]]:
        return [self.describe_rule(rule, firing) for rule, firing in self.alerts.rules()]

    def delete_rule(self, rule_id: str) -> bool:
        with self._lock:
            return self.alerts.delete(rule_id)

    def alert_history(self, **filters: Any) -> list[dict[str, Any]]:
        self.catch_up()
        return self.alerts.history(**filters)

    def acknowledge(self, alert_id: str, actor: str, note: str | None) -> tuple[dict[str, Any], bool]:
        with self._lock:
            alert, already = self.alerts.acknowledge(alert_id, actor, note, self.engine.now_ms)
        if not already:
            self.bus.publish(AlertChanged("acknowledged", alert))
        return alert, already

    # --- regimes -----------------------------------------------------------------------------------------

    def current_regime(self, symbol: str | None, timeframe: str | None) -> dict[str, Any]:
        from quantdesk.tools.risk.regime_tracker import required_bars
        from quantdesk.tools.risk.regimes import POLICY

        entry = self.regimes.tracked(symbol, timeframe)
        self.update_regimes()
        engine = self.engine
        state = self.regimes.state(entry["symbol"], entry["timeframe"])
        tf = TIMEFRAMES[entry["timeframe"]] * 1000
        available = max(0, (engine.now_ms // tf * tf - engine.origin_ms) // tf)
        cached = self.regimes.models.get((entry["symbol"], entry["timeframe"]))
        from quantdesk.tools.risk.regime_tracker import describe_model

        model = describe_model(cached[0], entry["timeframe"]) if cached is not None else None
        parameters: dict[str, float | None] = dict(POLICY[state.regime])
        parameters["volatility_threshold"] = model["volatility_threshold_annual"] if model else None
        return {"symbol": entry["symbol"], "timeframe": entry["timeframe"], "lookback_hours": entry["lookback_hours"],
                "regime": state.regime, "confidence": state.confidence, "probabilities": state.probabilities,
                "since_ms": state.since_ms, "since": series.iso(state.since_ms),
                "expected_duration_bars": state.expected_duration_bars, "pending_regime": state.pending_regime,
                "pending_bars": state.pending_bars, "last_bar_close_ms": state.last_bar_close_ms
                if state.last_bar_close_ms >= 0 else None, "warming_up": state.regime == "UNKNOWN",
                "bars_available": available, "bars_needed": required_bars(), "parameters": parameters,
                "parameters_source": "fixed policy per regime (tools/risk/regimes.py POLICY); volatility_threshold "
                                     "is the fitted high-volatility boundary, annualized",
                "model": model, "timestamp_ms": engine.now_ms, "timestamp": series.iso(engine.now_ms),
                "data_source": self._data_source()}

    def regime_history(self, symbol: str | None, timeframe: str | None, hours: float) -> dict[str, Any]:
        entry = self.regimes.tracked(symbol, timeframe)
        self.update_regimes()
        engine = self.engine
        since = engine.now_ms - int(hours * 3_600_000)
        transitions = self.regimes.history(entry["symbol"], entry["timeframe"], since, engine.now_ms)
        periods = []
        for i, t in enumerate(transitions):
            end = transitions[i + 1]["timestamp_ms"] if i + 1 < len(transitions) else None
            periods.append({"regime": t["to_regime"], "confidence": t["confidence"],
                            "start_ms": t["timestamp_ms"], "start_time": t["timestamp"], "end_ms": end,
                            "end_time": series.iso(end)})
        return {"symbol": entry["symbol"], "timeframe": entry["timeframe"], "hours": hours, "since_ms": since,
                "transitions": [t for t in transitions if t["timestamp_ms"] >= since], "regimes": periods,
                "data_source": self._data_source()}

    def analyze_regime(self, symbol: str, timeframe: str, lookback_hours: float, n_states: int | None
                       ) -> dict[str, Any]:
        engine = self.engine
        instrument = resolve_asset(engine, symbol, "$.symbol", prefer="spot")
        out = analyze(engine, self.bars, instrument.symbol, timeframe, lookback_hours, n_states,
                      self.desk.config.seed)
        out["parameters"] = {**out["parameters"], "volatility_threshold":
                             out["model"]["volatility_threshold_annual"]}
        return {**out, "data_source": self._data_source(), "causal": True}

    def set_tracking(self, symbol: str, timeframe: str, lookback_hours: float, enabled: bool) -> list[dict[str, Any]]:
        instrument = resolve_asset(self.engine, symbol, "$.symbol", prefer="spot")
        with self._lock:
            return self.regimes.set_tracking(instrument.symbol, timeframe, lookback_hours, enabled)

    # --- metrics and shutdown ---------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        from quantdesk.tools.risk.regimes import LABELS

        codes: dict[str, int] = {"UNKNOWN": 0, **{label: n for n, label in enumerate(LABELS, start=1)}}
        out: dict[str, Any] = {f"{k}_total": v for k, v in asdict(self.counters).items()}
        out["alerts_raised_total"] = dict(self.alerts.raised_by_severity)
        out["regime_changes_total"] = self.regimes.changes
        out["regime_fits_total"] = self.regimes.fits
        out["bar_minutes_read_total"] = self.bars.minutes_read
        out["recorded_until_ms"] = self.recorder.state.recorded_until_ms
        out["regime"] = {f"{s.symbol}:{s.timeframe}": codes.get(s.regime, 0) for s in self.regimes.states.values()}
        try:
            out["alerts_unacknowledged"] = self.alerts.unacknowledged()
        except Exception:  # a scrape must not fail on a busy or damaged store
            pass
        return out

    def close(self) -> None:
        self._stop.set()
        if self._subscription is not None:
            self._subscription.close()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _atr(bars: Bars, period: int) -> float:
    import numpy as np

    high, low, close = bars.high[-period:], bars.low[-period:], bars.close[-period - 1:-1]
    true_range = np.maximum(high - low, np.maximum(np.abs(high - close), np.abs(low - close)))
    return float(true_range.mean())

