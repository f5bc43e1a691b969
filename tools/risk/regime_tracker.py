"""Regimes followed on the desk clock: per tracked (symbol, timeframe), the current regime with hysteresis,
its transitions (stored, and published as `regime_change`), and one-off analyses.

At each closed bar the model's forward filter takes that bar; the model is refitted on the trailing lookback
once a day of desk time, on bars up to then only, so every label uses the past alone. A new regime is
adopted after CONFIRM_BARS consecutive bars favour it with confidence >= MIN_CONFIDENCE (the first label
after the warm-up is adopted at once). After a gap longer than the lookback (a restart after downtime)
the tracker resumes at the lookback's start. Tracking starts once the desk has run long enough for
MIN_BARS bars, so short sessions never read the feed for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from quantdesk.server.errors import InvalidArgument, NotFound, Problem
from quantdesk.tools.risk.bars import TIMEFRAMES, BarCache
from quantdesk.tools.risk.events import RegimeChanged
from quantdesk.tools.risk.series import iso
from quantdesk.tools.risk.store import RiskSql, RiskStoreDamaged, get_meta

if TYPE_CHECKING:
    import numpy as np

    from quantdesk.tools.desk.engine import DeskEngine
    from quantdesk.tools.risk.regimes import FeatureMatrix, RegimeModel

CONFIRM_BARS = 3
MIN_CONFIDENCE = 0.6
REFIT_MS = 86_400_000
MAX_FIT_BARS = 5_000
MAX_TRACKED = 8
DEFAULT_TRACKING = [{"symbol": "BTC-USDT", "timeframe": "1h", "lookback_hours": 168}]


def periods_per_year(timeframe: str) -> float:
    return 365 * 86_400 / TIMEFRAMES[timeframe]


@dataclass(slots=True)
class RegimeState:
    symbol: str
    timeframe: str
    regime: str = "UNKNOWN"
    confidence: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    since_ms: int | None = None
    pending_regime: str | None = None
    pending_bars: int = 0
    last_bar_close_ms: int = -1
    updated_ms: int | None = None
    fitted_at_ms: int | None = None
    expected_duration_bars: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def required_bars() -> int:
    from quantdesk.tools.risk.regimes import MIN_BARS, WINDOW

    return MIN_BARS + WINDOW + 1


def analysis_window(engine: DeskEngine, timeframe: str, lookback_hours: float) -> tuple[int, int, int]:
    """(fit start, end, bars in the asked lookback): the fit spans at least the bars the model needs."""
    tf = TIMEFRAMES[timeframe] * 1000
    end = engine.now_ms // tf * tf
    asked = int(lookback_hours * 3_600_000) // tf
    bars = max(asked, required_bars())
    if bars > MAX_FIT_BARS:
        raise InvalidArgument.from_problems([Problem("$.lookback_hours", f"{bars} {timeframe} bars: at most "
                                                     f"{MAX_FIT_BARS} are fitted; use a larger timeframe")])
    start = end - bars * tf
    if start < engine.origin_ms:
        have = max(0, (end - engine.origin_ms) // tf)
        raise InvalidArgument.from_problems([Problem("$.lookback_hours", (
            f"not enough data: the desk's market has {have} closed {timeframe} bars; {bars} are needed "
            f"({asked} for the lookback, at least {required_bars()} for the model): advance the desk, "
            "or ask for a shorter lookback or timeframe"))])
    return start, end, asked


def describe_model(model: RegimeModel, timeframe: str) -> dict[str, Any]:
    p = periods_per_year(timeframe)
    calm = min(s.volatility_per_bar for s in model.states)
    from quantdesk.tools.risk.regimes import HIGH_VOL_RATIO

    return {"n_states": model.n_states, "log_likelihood": model.log_likelihood, "bic": model.bic,
            "converged": model.converged, "bars_used": model.bars_used,
            "volatility_threshold_annual": HIGH_VOL_RATIO * calm * math.sqrt(p),
            "states": [{"state": s.state, "regime": s.label, "mean_return_per_bar": s.mean_return_per_bar,
                        "volatility_annual": s.volatility_per_bar * math.sqrt(p),
                        "expected_duration_bars": s.expected_duration_bars, "share_of_bars": s.share_of_bars}
                       for s in model.states]}


def analyze(engine: DeskEngine, bars: BarCache, symbol: str, timeframe: str, lookback_hours: float,
            n_states: int | None, seed: int) -> dict[str, Any]:
    from quantdesk.tools.risk import regimes as rg

    start, end, asked = analysis_window(engine, timeframe, lookback_hours)
    tfs = TIMEFRAMES[timeframe]
    data = bars.bars(engine, symbol, tfs, start, end)
    fm = rg.features(data, tfs)
    if fm.values.shape[0] < rg.MIN_BARS:
        raise InvalidArgument.from_problems([Problem("$.lookback_hours", f"not enough data: {fm.values.shape[0]} "
                                                     f"feature rows, {rg.MIN_BARS} needed")])
    model = rg.fit_model(fm, n_states=n_states, seed=seed)
    probs = rg.filtered_probabilities(model, fm)
    label, confidence, by_label = rg.most_likely(model, probs[-1])
    window = _tail(data, asked)
    return {"symbol": symbol, "timeframe": timeframe, "lookback_hours": lookback_hours, "regime": label,
            "confidence": confidence, "probabilities": by_label, "features": rg.market_features(
                window, periods_per_year(timeframe)), "bars_analyzed": len(window), "bars_fitted": len(data),
            "fit_start_ms": start, "end_ms": end, "timestamp": iso(end), "model": describe_model(model, timeframe),
            "parameters": rg.POLICY[label]}


def _tail(data: Any, n: int) -> Any:
    from quantdesk.tools.risk.bars import Bars

    k = max(0, len(data) - n)
    return Bars(data.open_ms[k:], data.open[k:], data.high[k:], data.low[k:], data.close[k:], data.volume[k:],
                data.trades[k:])


class RegimeTracker:
    def __init__(self, sql: RiskSql, bars: BarCache, seed: int) -> None:
        self.sql = sql
        self.bars = bars
        self.seed = seed
        self.models: dict[tuple[str, str], tuple[RegimeModel, np.ndarray[Any, Any]]] = {}
        self.changes = 0
        self.fits = 0
        self.damaged: str | None = None
        self.tracking: list[dict[str, Any]] = []
        self.states: dict[tuple[str, str], RegimeState] = {}
        text = get_meta(sql, "regime_tracking")
        try:
            self.tracking = json.loads(text) if text is not None else list(DEFAULT_TRACKING)
            self.states = {(s.symbol, s.timeframe): s for s in (RegimeState(**json.loads(r["body"])) for r in
                                                                sql.query("SELECT body FROM risk_regime_state"))}
        except (ValueError, TypeError):
            self.tracking, self.states = [], {}
            self.damaged = "the regime tracking state cannot be read back (damaged store)"

    def check(self) -> None:
        if self.damaged is not None:
            raise RiskStoreDamaged(self.damaged)

    def state(self, symbol: str, timeframe: str) -> RegimeState:
        key = (symbol, timeframe)
        if key not in self.states:
            self.states[key] = RegimeState(symbol, timeframe)
        return self.states[key]

    def tracked(self, symbol: str | None, timeframe: str | None) -> dict[str, Any]:
        self.check()
        for entry in self.tracking:
            if (symbol is None or entry["symbol"] == symbol) and (timeframe is None or entry["timeframe"] == timeframe):
                return entry
        listed = ", ".join(f"{e['symbol']} {e['timeframe']}" for e in self.tracking) or "none"
        raise NotFound(f"no regime is tracked for {symbol or 'any symbol'} {timeframe or ''}".rstrip()
                       + f" (tracked: {listed}); use analyze_market_regime, or set_regime_tracking to follow it")

    def set_tracking(self, symbol: str, timeframe: str, lookback_hours: float, enabled: bool) -> list[dict[str, Any]]:
        self.check()
        entries = [e for e in self.tracking if not (e["symbol"] == symbol and e["timeframe"] == timeframe)]
        if enabled:
            if len(entries) >= MAX_TRACKED:
                raise InvalidArgument.from_problems([Problem("$.symbol", f"at most {MAX_TRACKED} regimes are tracked")])
            entries.append({"symbol": symbol, "timeframe": timeframe, "lookback_hours": lookback_hours})
        with self.sql.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO risk_meta (key, value) VALUES ('regime_tracking', ?)",
                         (json.dumps(entries, sort_keys=True),))
        self.tracking = entries
        self.models.pop((symbol, timeframe), None)
        return list(entries)

    def update(self, engine: DeskEngine, stop: Callable[[], bool] | None = None) -> list[RegimeChanged]:
        """Take every bar closed since the last update; the regime changes, stored (publish them after)."""
        import numpy as np

        from quantdesk.tools.risk import regimes as rg

        events: list[RegimeChanged] = []
        history: list[tuple[Any, ...]] = []
        touched: list[RegimeState] = []
        for entry in list(self.tracking):
            symbol, timeframe = entry["symbol"], entry["timeframe"]
            tfs = TIMEFRAMES[timeframe]
            tf = tfs * 1000
            end = engine.now_ms // tf * tf
            state = self.state(symbol, timeframe)
            if end <= state.last_bar_close_ms or (end - engine.origin_ms) // tf < required_bars():
                continue
            lookback = max(int(entry["lookback_hours"] * 3_600_000) // tf, required_bars())
            start = max(end - lookback * tf, engine.origin_ms)
            data = self.bars.bars(engine, symbol, tfs, start, end, stop)
            if stop is not None and stop():
                break
            fm = rg.features(data, tfs)
            if fm.values.shape[0] < rg.MIN_BARS:
                continue
            key = (symbol, timeframe)
            past = fm.times_ms <= state.last_bar_close_ms
            cached = self.models.get(key)
            if cached is None or state.fitted_at_ms is None or end - state.fitted_at_ms >= REFIT_MS:
                # fit on the bars already labelled, so the new bars' labels use only what came before them;
                # the first time (or after a gap) fit on everything and label only the newest bar
                fitted_on = _rows(fm, past) if int(past.sum()) >= rg.MIN_BARS else fm
                model = rg.fit_model(fitted_on, seed=self.seed)
                self.fits += 1
                state.fitted_at_ms = int(fitted_on.times_ms[-1])
                probs = rg.filtered_probabilities(model, fm)
                if fitted_on is fm:
                    past = np.ones(fm.times_ms.shape[0], dtype=bool)
                    past[-1] = False
                chosen, times = probs[~past], fm.times_ms[~past]
                last = probs[-1]
            else:
                model, prior = cached
                fresh = _rows(fm, ~past)
                chosen = rg.filtered_probabilities(model, fresh, prior) if fresh.times_ms.shape[0] else \
                    np.empty((0, model.n_states))
                times = fresh.times_ms
                last = chosen[-1] if chosen.shape[0] else prior
            self.models[key] = (model, last)
            for t, row in zip(times.tolist(), chosen, strict=True):
                label, confidence, by_label = rg.most_likely(model, row)
                changed = self._step(state, int(t), label, confidence, by_label)
                if changed is not None:
                    history.append((symbol, timeframe, int(t), changed[0], state.regime, state.confidence,
                                    json.dumps(state.probabilities, sort_keys=True)))
                    events.append(RegimeChanged(symbol, timeframe, int(t), changed[0], state.regime,
                                                state.confidence, dict(state.probabilities)))
                state.last_bar_close_ms = int(t)
            current = next((s for s in model.states if s.label == state.regime), None)
            state.expected_duration_bars = current.expected_duration_bars if current is not None else None
            state.updated_ms = engine.now_ms
            touched.append(state)
        if touched:
            with self.sql.transaction() as conn:
                for state in touched:
                    conn.execute("INSERT OR REPLACE INTO risk_regime_state (symbol, timeframe, body) VALUES (?, ?, ?)",
                                 (state.symbol, state.timeframe, state.to_json()))
                conn.executemany("INSERT INTO risk_regime_history (symbol, timeframe, timestamp_ms, from_regime, "
                                 "to_regime, confidence, probabilities) VALUES (?, ?, ?, ?, ?, ?, ?)", history)
        self.changes += len(events)
        return events

    @staticmethod
    def _step(state: RegimeState, t: int, label: str, confidence: float, by_label: dict[str, float]
              ) -> tuple[str] | None:
        """Hysteresis: returns (the previous regime,) when the regime switches at this bar."""
        state.probabilities = {k: round(v, 6) for k, v in by_label.items()}
        if state.regime == "UNKNOWN" or label == state.regime:
            switch = state.regime == "UNKNOWN"
            state.pending_regime, state.pending_bars = None, 0
        elif confidence >= MIN_CONFIDENCE:
            if label == state.pending_regime:
                state.pending_bars += 1
            else:
                state.pending_regime, state.pending_bars = label, 1
            switch = state.pending_bars >= CONFIRM_BARS
        else:
            state.pending_regime, state.pending_bars = None, 0
            switch = False
        if switch:
            previous = state.regime
            state.regime, state.since_ms = label, t
            state.pending_regime, state.pending_bars = None, 0
            state.confidence = by_label.get(label, 0.0)
            return (previous,)
        state.confidence = by_label.get(state.regime, 0.0)
        return None

    def history(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        rows = self.sql.query("SELECT * FROM risk_regime_history WHERE symbol = ? AND timeframe = ? AND "
                              "timestamp_ms <= ? AND (timestamp_ms >= ? OR seq = (SELECT MAX(seq) FROM "
                              "risk_regime_history WHERE symbol = ? AND timeframe = ? AND timestamp_ms < ?)) "
                              "ORDER BY seq", (symbol, timeframe, until_ms, since_ms, symbol, timeframe, since_ms))
        return [{"timestamp_ms": r["timestamp_ms"], "timestamp": iso(r["timestamp_ms"]),
                 "from_regime": r["from_regime"], "to_regime": r["to_regime"], "confidence": r["confidence"],
                 "probabilities": json.loads(r["probabilities"])} for r in rows]


def _rows(fm: FeatureMatrix, mask: np.ndarray[Any, Any]) -> FeatureMatrix:
    from quantdesk.tools.risk.regimes import FeatureMatrix

    return FeatureMatrix(fm.times_ms[mask], fm.values[mask], fm.returns[mask])
