"""Regime detection: a model fitted on one history recovers the planted regimes of a fresh one by forward
filtering alone (agreement reported state by state); labels never depend on later bars or on the order of
the fitted states; on a real desk the tracked regime is published as a `regime_change` event and stored."""

from __future__ import annotations

import numpy as np
import pytest

from quantdesk.server.errors import InvalidArgument
from quantdesk.tools.risk import regimes as rg
from quantdesk.tools.risk.bars import Bars

HOUR = 3_600_000
T0 = 1_735_689_600_000
# per planted regime: mean log return per bar, volatility per bar, mean volume
PLANTED = {"BULL": (0.003, 0.008, 100.0), "SIDEWAYS": (0.0, 0.006, 80.0), "HIGH_VOLATILITY": (0.0, 0.025, 250.0),
           "BEAR": (-0.003, 0.008, 120.0), "CRISIS": (-0.012, 0.045, 400.0)}
DETECTION_LAG = 20
"""Bars after a change that are not scored: the features look back 12 bars and the filter needs evidence."""


def planted(seed: int, order: list[str], length: int) -> tuple[Bars, list[str]]:
    g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    labels = [label for label in order for _ in range(length)]
    mu = np.array([PLANTED[x][0] for x in labels])
    sigma = np.array([PLANTED[x][1] for x in labels])
    volume_mean = np.array([PLANTED[x][2] for x in labels])
    close = 100.0 * np.exp(np.cumsum(np.r_[0.0, g.normal(mu, sigma)]))
    volume = np.r_[volume_mean[0], g.lognormal(np.log(volume_mean), 0.3)]
    n = close.shape[0]
    bars = Bars(T0 + np.arange(n, dtype=np.int64) * HOUR, close, close, close, close, volume,
                np.ones(n, dtype=np.int64))
    return bars, [labels[0], *labels]


def test_a_model_fitted_on_one_history_recovers_the_planted_regimes_of_another(capsys):
    train, _ = planted(1, ["SIDEWAYS", "BULL", "HIGH_VOLATILITY", "BEAR", "CRISIS", "SIDEWAYS", "BULL"], 200)
    test, truth = planted(2, ["BULL", "SIDEWAYS", "CRISIS", "BEAR", "HIGH_VOLATILITY", "BULL"], 150)
    model = rg.fit_model(rg.features(train, 3600), seed=7)
    features = rg.features(test, 3600)
    probs = rg.filtered_probabilities(model, features)
    predicted = [rg.most_likely(model, row)[0] for row in probs]
    truth = truth[rg.WINDOW:]  # the feature row of bar i describes bar i (the return into it)
    assert len(truth) == len(predicted)
    agreement = {}
    for label in PLANTED:
        scored = [i for i, x in enumerate(truth)
                  if all(truth[j] == label for j in range(max(0, i - DETECTION_LAG), i + 1))]
        agreement[label] = sum(predicted[i] == label for i in scored) / len(scored)
    with capsys.disabled():
        print("\nplanted-regime agreement (bars more than 20 after a change):",
              {k: round(v, 3) for k, v in agreement.items()}, "states:", [s.label for s in model.states])
    assert min(agreement.values()) >= 0.8, agreement
    assert sorted({s.label for s in model.states}) == sorted(PLANTED)


def test_a_label_never_depends_on_later_bars():
    bars, _ = planted(3, ["SIDEWAYS", "CRISIS", "BULL", "BEAR"], 80)
    features = rg.features(bars, 3600)
    model = rg.fit_model(features, seed=1)
    full = rg.filtered_probabilities(model, features)
    cut = 150
    head = Bars(bars.open_ms[:cut], bars.open[:cut], bars.high[:cut], bars.low[:cut], bars.close[:cut],
                bars.volume[:cut], bars.trades[:cut])
    head_features = rg.features(head, 3600)
    assert np.array_equal(head_features.values, features.values[:head_features.values.shape[0]])
    prefix = rg.filtered_probabilities(model, head_features)
    assert np.allclose(prefix, full[:prefix.shape[0]], rtol=0, atol=1e-12)


def test_labels_come_from_the_fitted_parameters_not_from_the_state_index():
    bars, _ = planted(4, ["SIDEWAYS", "HIGH_VOLATILITY", "BULL"], 120)
    features = rg.features(bars, 3600)
    model = rg.fit_model(features, n_states=3, seed=2)
    order = list(reversed(range(model.n_states)))
    permuted = rg.RegimeModel(
        model.n_states, model.startprob[order], model.transmat[np.ix_(order, order)], model.means[order],
        model.variances[order], model.center, model.scale,
        tuple(rg.StateInfo(new, model.states[old].label, model.states[old].mean_return_per_bar,
                           model.states[old].volatility_per_bar, model.states[old].expected_duration_bars,
                           model.states[old].share_of_bars) for new, old in enumerate(order)),
        model.log_likelihood, model.bic, model.converged, model.bars_used, model.seed)
    a = [rg.most_likely(model, row)[:2] for row in rg.filtered_probabilities(model, features)]
    b = [rg.most_likely(permuted, row)[:2] for row in rg.filtered_probabilities(permuted, features)]
    assert [x[0] for x in a] == [x[0] for x in b]
    assert np.allclose([x[1] for x in a], [x[1] for x in b], atol=1e-12)


@pytest.mark.parametrize(("mean", "vol", "calm", "label"), [
    (0.003, 0.008, 0.006, "BULL"), (-0.003, 0.008, 0.006, "BEAR"), (0.0005, 0.006, 0.006, "SIDEWAYS"),
    (0.0, 0.03, 0.006, "HIGH_VOLATILITY"), (-0.01, 0.04, 0.006, "CRISIS")])
def test_states_are_named_by_mean_return_and_volatility(mean, vol, calm, label):
    assert rg.name_state(mean, vol, calm) == label


def test_the_desk_tracks_a_regime_publishes_its_change_on_the_bus_and_keeps_it_across_a_restart(risks):
    desk, risk = risks.open(seed=3)
    risk.set_tracking("BTC", "5m", 24, True)
    assert risk.current_regime("BTC-USDT", "5m")["warming_up"] is True  # no bar read yet: nothing to fit
    with pytest.raises(InvalidArgument) as short:
        risk.analyze_regime("BTC", "1h", 24, None)  # the AlphaPulse example needs 113 hourly bars of market
    assert short.value.problems[0].path == "$.lookback_hours" and "113" in short.value.problems[0].message
    desk.engine.advance(desk.engine.now_ms + 10 * HOUR)
    with desk.bus.subscribe(["regime_change"], name="test") as subscription:
        current = risk.current_regime("BTC-USDT", "5m")
        events = [e.event.to_dict() for e in subscription.poll()]
    assert current["regime"] != "UNKNOWN" and 0.0 < current["confidence"] <= 1.0
    assert current["last_bar_close_ms"] == desk.engine.now_ms // 300_000 * 300_000
    assert current["model"] is not None and current["parameters"]["volatility_threshold"] > 0
    assert sum(current["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert events and events[0]["previous_regime"] == "UNKNOWN" and events[-1]["regime"] == current["regime"]
    history = risk.regime_history("BTC-USDT", "5m", 24)
    assert [t["to_regime"] for t in history["transitions"]] == [e["regime"] for e in events]
    assert history["regimes"][-1]["end_ms"] is None and history["regimes"][-1]["regime"] == current["regime"]

    analysis = risk.analyze_regime("BTC", "5m", 6, None)
    assert analysis["regime"] in rg.LABELS and analysis["bars_analyzed"] == 72 and analysis["causal"] is True
    assert analysis["end_ms"] <= desk.engine.now_ms and analysis["features"]["volatility_annual"] > 0
    assert analysis["data_source"] == "synthetic"
    # the bars come from the desk's own market: the last 5-minute close is the last trade before it closed
    bars = risk.bars.bars(desk.engine, "BTC-USDT", 300, analysis["end_ms"] - 300_000, analysis["end_ms"])
    chunk = desk.engine.feed.chunk("BTC-USDT", analysis["end_ms"] - 300_001, analysis["end_ms"] - 1)
    assert bars.close[-1] == chunk.trade_px[-1]
    assert bars.volume[-1] == pytest.approx(float(chunk.trade_sz.sum()), rel=1e-12)

    risks.close(risk)
    desk, risk = risks.open(seed=3)
    assert {"symbol": "BTC-USDT", "timeframe": "5m", "lookback_hours": 24} in risk.regimes.tracking
    assert risk.regime_history("BTC-USDT", "5m", 24)["transitions"] == history["transitions"]
    assert risk.current_regime("BTC-USDT", "5m")["regime"] == current["regime"]
