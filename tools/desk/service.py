"""The desk as a server runs it: the control plane, the engine, the event bus and, on the real clock, a runner.

Built when the server starts: the control state is read first (an unreadable store fails closed),
then the ledger restores orders, positions and balances, then a killed desk finishes its kill. On the
real clock a background thread brings the market up to now every `runner_interval_seconds`, so
resting orders fill, funding is paid and equity is sampled while nobody calls. A desk whose set-up
is wrong (a bad QUANTDESK_DESK_* value, a replay file that cannot be read) still starts the server:
every desk tool then answers `unavailable` with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.server.errors import Unavailable
from quantdesk.tools.bus.bus import EventBus
from quantdesk.tools.control.plane import STATE_CODES, ControlPlane
from quantdesk.tools.control.store import ControlSql
from quantdesk.tools.desk.clock import Clock, RealClock, SimulatedClock
from quantdesk.tools.desk.config import DEFAULT_SIMULATED_START_MS, DeskConfig
from quantdesk.tools.desk.engine import DeskEngine
from quantdesk.tools.desk.instruments import InstrumentTable, load_instruments
from quantdesk.tools.desk.ledger import Ledger

if TYPE_CHECKING:
    from quantdesk.tools.desk.feed import MarketFeed

logger = logging.getLogger("quantdesk.desk")
PathResolver = Callable[[str], Path]
RUNNER_STEP_MS = 3_600_000
"""The runner catches up at most an hour of market per lock hold (after a restart, say)."""


class DeskService:
    def __init__(self, state: ControlSql, bus: EventBus, config: DeskConfig, *, data_dir: Path,
                 resolve_cache: PathResolver | None = None, start_runner: bool = True) -> None:
        self.bus = bus
        self.state = state
        self.error: str | None = None
        self._engine: DeskEngine | None = None
        self._control: ControlPlane | None = None
        self._clock: Clock | None = None
        self._stop = threading.Event()
        self._runner: threading.Thread | None = None
        self.runner_errors = 0
        self.commit_scheduled = False
        """The tools' group commit has a commit queued on the event loop (see tools.committed)."""
        try:
            self._open(state, config, data_dir, resolve_cache)
        except (ValueError, OSError, LookupError) as exc:
            self.error = f"the desk could not start: {exc}"
            logger.error(self.error)
            return
        if self.engine.clock.mode == "real" and start_runner:
            self._runner = threading.Thread(target=self._run, name="desk-runner", daemon=True)
            self._runner.start()

    def _open(self, state: ControlSql, env_config: DeskConfig, data_dir: Path,
              resolve_cache: PathResolver | None) -> None:
        ledger = Ledger(state)
        stored = {r["key"]: r["value"] for r in state.query("SELECT key, value FROM desk_meta WHERE key IN "
                                                            "('config', 'origin_ms')")}
        fresh = "origin_ms" not in stored
        config = DeskConfig.from_json(stored["config"]) if "config" in stored else env_config
        replay_path = _replay_path(config, data_dir, resolve_cache) if config.feed == "replay" else None
        first_ms = _replay_start(replay_path) if replay_path is not None else None
        if fresh and config.clock == "simulated" and config.start_time_ms is None:
            config = DeskConfig(**{**_fields(config), "start_time_ms": first_ms or DEFAULT_SIMULATED_START_MS})
        clock: Clock = RealClock() if config.clock == "real" else SimulatedClock(
            config.start_time_ms or DEFAULT_SIMULATED_START_MS)
        if fresh or "config" not in stored:
            with state.transaction() as conn:
                conn.execute("INSERT OR REPLACE INTO desk_meta (key, value) VALUES ('config', ?)",
                             (config.to_json(),))
        instruments = InstrumentTable(load_instruments())
        self.config = config

        def feed_factory(origin_ms: int) -> MarketFeed:
            if replay_path is not None:
                from quantdesk.tools.desk.replay_feed import ReplayFeed

                return ReplayFeed(replay_path, instruments, shift_ms=origin_ms - (first_ms or origin_ms))
            from quantdesk.tools.desk.synthetic_feed import SyntheticFeed

            return SyntheticFeed(instruments, config.seed, origin_ms)

        self._clock = clock
        self._control = ControlPlane(state, clock_ms=self._now_ms, publish=self.bus.publish, fresh=fresh)
        self._engine = DeskEngine(instruments=instruments, ledger=ledger, config=config, clock=clock,
                                  feed_factory=feed_factory, publish=self.bus.publish, gate=self._control,
                                  publish_all=self.bus.publish_all)
        self._control.attach(self._engine)

    def _now_ms(self) -> int:
        if self._engine is not None:
            return self._engine.now_ms
        return self._clock.now_ms() if self._clock is not None else time.time_ns() // 1_000_000

    @property
    def engine(self) -> DeskEngine:
        if self._engine is None:
            raise Unavailable(self.error or "the desk is not running")
        return self._engine

    @property
    def control(self) -> ControlPlane:
        if self._control is None:
            raise Unavailable(self.error or "the desk is not running")
        return self._control

    @property
    def lock(self) -> threading.RLock:
        return self.engine.lock

    def _run(self) -> None:
        interval = self.config.runner_interval_seconds
        while not self._stop.wait(interval):
            try:
                self.engine.sync(max_step_ms=RUNNER_STEP_MS)
            except Exception:  # the runner must survive a bad step; the step itself rolled back
                self.runner_errors += 1
                logger.exception("desk runner step failed")

    def health(self) -> dict[str, Any]:
        """Component booleans (the AIS /health shape is a reshaping of these)."""
        ledger_ok = feed_ok = False
        try:
            self.state.query("SELECT 1 FROM desk_meta LIMIT 1")
            ledger_ok = True
        except Exception:  # any failure of the store is what this reports
            ledger_ok = False
        engine = self._engine
        if engine is not None:
            processor = engine._processor
            market = [m for m in engine.markets.values() if m.book is not None]
            feed_ok = processor is None or bool(market)
        control_ok = self._control.view().ok if self._control is not None else False
        components = {"engine_ok": engine is not None, "ledger_ok": ledger_ok, "feed_ok": feed_ok,
                      "control_store_ok": control_ok, "event_bus_ok": True,
                      "runner_ok": self._runner is None or self._runner.is_alive()}
        status = "ok" if all(components.values()) else "degraded"
        return {"status": status, **components, "error": self.error}

    def metrics(self) -> dict[str, Any]:
        """Counters and gauges as plain numbers, for the server's Prometheus exposition."""
        bus = self.bus.stats()
        out: dict[str, Any] = {"event_bus_published_total": bus.published, "event_bus_dropped_total": bus.dropped_total,
                               "event_bus_subscribers": len(bus.subscribers), "desk_up": int(self._engine is not None)}
        engine, control = self._engine, self._control
        if engine is None or control is None:
            return out
        m = engine.metrics
        out.update({
            "orders_submitted_total": m.orders_submitted, "orders_accepted_total": m.orders_accepted,
            "order_rejections_total": dict(m.rejections), "fills_total": m.fills,
            "fills_by_liquidity_total": dict(m.fills_by_liquidity), "orders_cancelled_total": m.cancels,
            "liquidations_total": m.liquidations, "funding_settlements_total": m.funding_settlements,
            "market_events_total": m.market_events, "kill_switch_trips_total": control.metrics.kill_switch_trips,
            "kill_switch_trips_by_actor_total": dict(control.metrics.trips_by_actor or {}),
            "breaker_trips_total": control.metrics.breaker_trips, "runner_errors_total": self.runner_errors,
        })
        state = control.view().state
        out["control_state"] = STATE_CODES[state]
        out["control_state_name"] = state
        if engine.lock.acquire(timeout=0.05):
            try:
                account = engine.account()
                out.update({"equity_usd": account.equity_usd, "gross_exposure_usd": account.gross_exposure_usd,
                            "net_exposure_usd": account.net_exposure_usd, "drawdown_pct": account.drawdown_pct,
                            "daily_loss_pct": account.daily_loss_pct, "open_orders": account.open_orders,
                            "desk_time_ms": engine.now_ms})
            finally:
                engine.lock.release()
        return out

    def close(self) -> None:
        self._stop.set()
        if self._runner is not None:
            self._runner.join(timeout=10)
        if self._engine is not None and self._engine._processor is not None:
            self._engine._processor.feed.close()


def _fields(config: DeskConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__slots__}


def _replay_path(config: DeskConfig, data_dir: Path, resolve_cache: PathResolver | None) -> Path:
    raw = config.replay_path or ""
    if raw.startswith("cache:"):
        if resolve_cache is None:
            raise ValueError("replay from a cache key needs the cache service")
        return resolve_cache(raw.removeprefix("cache:"))
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else data_dir / path
    if not path.is_file():
        raise ValueError(f"QUANTDESK_DESK_FEED replay file {raw!r} does not exist")
    return path


def _replay_start(path: Path) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    column = pq.read_table(path, columns=["timestamp_ms"]).column("timestamp_ms")
    if len(column) == 0:
        raise ValueError(f"the replay file {path} has no events")
    return int(pc.min(column).as_py())


def desk_metrics(desk: DeskService) -> dict[str, Any]:
    return desk.metrics()
