"""Honest evaluation with the built-in researcher on generated data: signal found, noise not mistaken for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantdesk.tools.agents.challenges import CHALLENGES, Challenge
from quantdesk.tools.agents.data.market import MarketData
from quantdesk.tools.agents.evaluate.evaluator import Evaluator
from quantdesk.tools.agents.evaluate.scoring import Split, make_split
from quantdesk.tools.agents.researchers.base import ResearchContext
from quantdesk.tools.agents.researchers.builtin import BuiltinResearcher
from quantdesk.tools.agents.runner.records import best_iteration, history_entry, iteration_record

DAYS = 15
HOLDOUT_DAYS = 5


def run_agent(challenge: Challenge, data: MarketData, split: Split, evaluator: Evaluator, workdir: Path,
              iterations: int, goal: str = "momentum and mean reversion") -> list[dict[str, Any]]:
    researcher = BuiltinResearcher()
    records: list[dict[str, Any]] = []
    for iteration in range(1, iterations + 1):
        context = ResearchContext("test", challenge, goal, "", "", "", [history_entry(r) for r in records],
                                  iteration, 2, iterations, "sonnet", 7)
        proposal = researcher.propose(context)
        evaluation = evaluator.development(challenge, data, split, proposal.code, workdir, seed=iteration)
        record = iteration_record(challenge, iteration, proposal, evaluation, evaluation.error, records,
                                  timestamp="t", elapsed_seconds=0.0, activity=[], min_iterations=2,
                                  researcher="builtin", sandbox_mode="test")
        record["code"] = proposal.code
        records.append(record)
    return records


def holdout_of_best(challenge: Challenge, data: MarketData, split: Split, evaluator: Evaluator, workdir: Path,
                    records: list[dict[str, Any]]) -> dict[str, Any]:
    best = best_iteration(challenge, records)
    assert best is not None
    outcome = evaluator.holdout(challenge, data, split, best["code"], workdir, dev_digest=best["embeddings_digest"])
    assert outcome.ok, outcome.error
    return outcome.metrics


def test_the_builtin_researcher_finds_a_planted_signal_and_its_holdout_beats_the_noise_floor(
        make_data: Any, evaluator: Evaluator, eth: Challenge, workdir: Path) -> None:
    data = make_data(eth, DAYS, planted=0.7)
    split = make_split(eth, data.rows, HOLDOUT_DAYS)
    records = run_agent(eth, data, split, evaluator, workdir, 3)
    assert all(not r["has_error"] for r in records)
    holdout = holdout_of_best(eth, data, split, evaluator, workdir, records)
    noise = holdout["noise_floor"]
    assert noise["available"] and noise["beats_noise_floor"]
    assert holdout["mean_auc"] > noise["floor"]
    assert holdout["confidence_interval"]["low"] > noise["mean"]
    assert holdout["causality_audit"]["passed"]
    # the development windows never reach into the holdout
    assert max(w["end"] for r in records for w in r["metrics"]["windows"]) <= split.dev_end


def test_on_a_pure_random_walk_the_holdout_score_stays_inside_the_noise_band(
        make_data: Any, evaluator: Evaluator, eth: Challenge, workdir: Path) -> None:
    data = make_data(eth, DAYS, seed=29)
    split = make_split(eth, data.rows, HOLDOUT_DAYS)
    records = run_agent(eth, data, split, evaluator, workdir, 3)
    holdout = holdout_of_best(eth, data, split, evaluator, workdir, records)
    noise = holdout["noise_floor"]
    assert noise["inside_noise_band"]
    assert not noise["beats_noise_floor"]


def test_the_same_seed_gives_the_same_iterations(
        make_data: Any, evaluator: Evaluator, eth: Challenge, workdir: Path) -> None:
    data = make_data(eth, 8)
    split = make_split(eth, data.rows, 3)
    first = run_agent(eth, data, split, evaluator, workdir, 2)
    second = run_agent(eth, data, split, evaluator, workdir, 2)
    assert [r["code"] for r in first] == [r["code"] for r in second]
    assert [r["metrics"]["mean_auc"] for r in first] == [r["metrics"]["mean_auc"] for r in second]
    assert [r["embeddings_digest"] for r in first] == [r["embeddings_digest"] for r in second]


LOOK_AHEAD = '''
import numpy as np
from quantdesk_strategy import Featurizer, Predictor

class Peek(Featurizer):
    warmup = 10
    def compute(self, view):
        full = view._ohlcv[:, 0, 3]          # introspection: the whole input, future included
        t = view.t
        future = full[min(t + 60, len(full) - 1)]
        return {"up": np.array([1.0 if future > full[t] else 0.0])}

class Pass(Predictor):
    def predict(self, features):
        p = 0.5 + 0.4 * (features["up"][0] - 0.5)
        return np.array([p, 1 - p])
'''


def test_a_strategy_that_looks_ahead_is_caught_by_the_causality_audit(
        make_data: Any, evaluator: Evaluator, eth: Challenge, workdir: Path) -> None:
    data = make_data(eth, 8)
    split = make_split(eth, data.rows, 3)
    dev = evaluator.development(eth, data, split, LOOK_AHEAD, workdir)
    assert dev.ok
    holdout = evaluator.holdout(eth, data, split, LOOK_AHEAD, workdir, dev_digest=dev.embeddings_digest)
    assert holdout.ok
    assert holdout.metrics["causality_audit"]["passed"] is False


GOOD = '''
import numpy as np
from quantdesk_strategy import Featurizer, Predictor

class F(Featurizer):
    warmup = 61
    def compute(self, view):
        p = view.prices("ETH", lookback=61)
        return {"ret_60": np.array([np.log(p[-1] / p[0])])}

class P(Predictor):
    def predict(self, features):
        p = 1 / (1 + np.exp(-features["ret_60"][0] * 100))
        return np.array([p, 1 - p]){tail}
'''


@pytest.mark.parametrize(("code", "reason"), [
    ("import numpy as np\ndef broken(:\n", "does not import"),
    ("import numpy as np\n", "no subclass of Featurizer"),
    (GOOD.replace("return {", "raise ValueError('boom'); return {"), "boom"),
    (GOOD.replace("return np.array([p, 1 - p])", "return np.array([p, 1 - p, 0.0])"), "values at t="),
    (GOOD.replace("return np.array([p, 1 - p])", "return np.array([float('nan'), 0.5])"), "non-finite"),
    (GOOD.replace("return np.array([p, 1 - p])", "return np.array([p + 1.5, 1 - p])"), "outside [0, 1]"),
    (GOOD.replace("return {", "return [1, 2]; {"), "must return a dict"),
], ids=["syntax", "no-classes", "raises", "wrong-shape", "nan", "out-of-range", "not-a-dict"])
def test_a_faulty_strategy_is_a_failed_evaluation_with_its_reason(
        make_data: Any, evaluator: Evaluator, eth: Challenge, workdir: Path, code: str, reason: str) -> None:
    data = make_data(eth, 3)
    split = make_split(eth, data.rows, 1)
    outcome = evaluator.development(eth, data, split, code.replace("{tail}", ""), workdir)
    assert not outcome.ok
    assert outcome.error is not None and reason in outcome.error


def test_a_correct_strategy_scores_on_every_challenge_type(
        make_data: Any, evaluator: Evaluator, workdir: Path) -> None:
    """The built-in template runs and is scored on every challenge type (small data, one iteration)."""
    for name, days in (("ETH-HITFIRST-100M", 11), ("ETH-LBFGS", 7), ("XSEC-RANK", 7),
                       ("FUNDING-XSEC", 7), ("MULTI-BREAKOUT", 12)):
        challenge = CHALLENGES[name]
        data = make_data(challenge, days)
        if len(challenge.assets) > 1:
            data = data.select(challenge.assets[:8])
            challenge = _narrow(challenge, data.assets)
        split = make_split(challenge, data.rows, 3)
        records = run_agent(challenge, data, split, evaluator, workdir, 1)
        assert not records[0]["has_error"], (name, records[0]["error"])
        assert records[0]["metrics"][challenge.metric.primary] is not None
        assert records[0]["analysis"]["feature_report"]


def _narrow(challenge: Challenge, assets: tuple[str, ...]) -> Challenge:
    from dataclasses import replace

    return replace(challenge, assets=assets, dim=len(assets) * (2 if challenge.type == "breakout" else 1))


def test_lbfgs_scores_the_q_path_dimensions_too(make_data: Any, eth: Challenge) -> None:
    """A strategy informative only in q[5:17] earns Q-path skill; the p[0:5] part alone would see none."""
    from quantdesk.tools.agents.evaluate.labels import Q_CLASSES, lbfgs_labels
    from quantdesk.tools.agents.evaluate.scoring import prepare_targets, score_rows

    challenge = CHALLENGES["ETH-LBFGS"]
    data = make_data(challenge, 8)
    labels = lbfgs_labels(data.close("ETH"), 60, 3600)
    emb = np.full((data.rows, 17), 0.5)
    emb[:, :5] = 0.2
    for ci in range(len(Q_CLASSES)):
        for k in range(3):
            emb[:, 5 + 3 * ci + k] = np.where(labels.q_hit[:, k], 0.7, 0.3)
    targets = prepare_targets(challenge, data, 0, data.rows, 0)
    summary, _ = score_rows(challenge, emb[targets.rows], targets)
    assert summary["q_mean_auc"] == pytest.approx(1.0)
    # a constant p always predicts one bucket: chance level (1 / buckets present in each window)
    assert summary["mean_balanced_accuracy"] <= 0.25
    p_part = 0.75 * (summary["mean_balanced_accuracy"] - 0.2) / 0.8
    assert summary["lbfgs_skill"] == pytest.approx(p_part + 0.25)
