"""Research agents: built-in researcher seconds per iteration, holdout evaluation time, sandbox start-up overhead.

Run: `python bench/agents.py [--days 60] [--iterations 2] [--sandbox-runs 10]`. Measured in this run:
- per iteration of the built-in researcher (propose + sandboxed walk-forward run on the development
  rows + scoring + computed feature report + a 29-shift dev noise estimate) on `days` of generated
  1-minute bars, for ETH-1H-BINARY (one asset, BTC beside it) and for XSEC-RANK (29 assets);
- the one holdout evaluation of the best strategy (all rows, 99-shift noise floor, 99-replicate
  block bootstrap, causality audit);
- sandbox start-up overhead: a trivial strategy on 300 rows through the full sandbox (namespaces,
  tmpfs mounts, uid drop, rlimits, a fresh interpreter importing numpy), against a plain
  `python -I -c "import numpy"` subprocess as the baseline.
Data generation is timed separately and not counted in the per-iteration figures.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from quantdesk.tools.agents.challenges import CHALLENGES
from quantdesk.tools.agents.data.synthetic import SyntheticSource
from quantdesk.tools.agents.evaluate.evaluator import Evaluator
from quantdesk.tools.agents.evaluate.scoring import make_split
from quantdesk.tools.agents.researchers.base import ResearchContext
from quantdesk.tools.agents.researchers.builtin import BuiltinResearcher
from quantdesk.tools.agents.runner.records import best_iteration, history_entry, iteration_record
from quantdesk.tools.agents.sandbox.sandbox import Limits, Sandbox

TRIVIAL = '''
import numpy as np
from quantdesk_strategy import Featurizer, Predictor

class F(Featurizer):
    warmup = 1
    def compute(self, view):
        return {"x": np.array([0.0])}

class P(Predictor):
    def predict(self, features):
        return np.array([0.5, 0.5])
'''


def researcher_run(name: str, days: int, iterations: int, evaluator: Evaluator, work: Path) -> dict[str, Any]:
    challenge = CHALLENGES[name]
    assets = list(challenge.assets) + (["BTC"] if len(challenge.assets) == 1 else [])
    started = time.perf_counter()
    data = SyntheticSource(123).generate(assets, days * 1440)
    generation = time.perf_counter() - started
    split = make_split(challenge, data.rows)
    researcher = BuiltinResearcher()
    records: list[dict[str, Any]] = []
    seconds, sandbox_seconds = [], []
    for iteration in range(1, iterations + 1):
        started = time.perf_counter()
        context = ResearchContext("bench", challenge, "momentum and mean reversion", "", "", "",
                                  [history_entry(r) for r in records], iteration, 1, iterations, "sonnet", 1)
        proposal = researcher.propose(context)
        evaluation = evaluator.development(challenge, data, split, proposal.code, work, seed=iteration)
        record = iteration_record(challenge, iteration, proposal, evaluation, evaluation.error, records,
                                  timestamp="", elapsed_seconds=0.0, activity=[], min_iterations=1,
                                  researcher="builtin", sandbox_mode="")
        record["code"] = proposal.code
        records.append(record)
        seconds.append(time.perf_counter() - started)
        sandbox_seconds.append(evaluation.sandbox_seconds)
        if not evaluation.ok:
            raise SystemExit(f"{name} iteration {iteration} failed: {evaluation.error}")
    best = best_iteration(challenge, records)
    assert best is not None
    started = time.perf_counter()
    holdout = evaluator.holdout(challenge, data, split, best["code"], work, dev_digest=best["embeddings_digest"])
    holdout_seconds = time.perf_counter() - started
    primary = challenge.metric.primary
    return {"challenge": name, "assets": len(challenge.assets), "rows": data.rows, "dev_rows": split.dev_end,
            "generation_s": generation, "iteration_s": seconds, "sandbox_s": sandbox_seconds,
            "holdout_s": holdout_seconds, "dev_metric": [r["metrics"][primary] for r in records],
            "holdout_metric": holdout.metrics.get(primary), "noise_floor": holdout.metrics["noise_floor"].get("floor")}


def sandbox_overhead(runs: int, sandbox: Sandbox, work: Path) -> dict[str, float]:
    rows = 300
    arrays = {"ohlcv": np.ones((rows, 1, 5)), "funding": np.full((rows, 1), np.nan),
              "timestamps_ms": np.arange(rows, dtype=np.int64) * 60_000}
    full, baseline = [], []
    for _ in range(runs):
        workspace = work / "ws"
        shutil.rmtree(workspace, ignore_errors=True)
        sandbox.prepare(workspace, TRIVIAL, {"dim": 2, "assets": ["ETH"]}, arrays)
        started = time.perf_counter()
        result = sandbox.run(workspace, work / "out.log")
        full.append(time.perf_counter() - started)
        assert result.ok, result.failure()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "import numpy"], check=True, env={})
        baseline.append(time.perf_counter() - started)
    return {"sandbox_s": statistics.median(full), "plain_python_numpy_s": statistics.median(baseline)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--sandbox-runs", type=int, default=10)
    args = parser.parse_args()
    sandbox = Sandbox(limits=Limits(wall_seconds=3600, cpu_seconds=3600))
    evaluator = Evaluator(sandbox)
    work = Path(tempfile.mkdtemp(prefix="qd-bench-agents-"))
    try:
        print(f"sandbox mode: {sandbox.capabilities()['mode']}")
        overhead = sandbox_overhead(args.sandbox_runs, sandbox, work)
        print(f"sandbox start-up (median of {args.sandbox_runs}): {overhead['sandbox_s']:.3f} s per evaluation; "
              f"plain `python -I -c 'import numpy'`: {overhead['plain_python_numpy_s']:.3f} s; "
              f"overhead {overhead['sandbox_s'] - overhead['plain_python_numpy_s']:.3f} s "
              f"({overhead['sandbox_s'] / overhead['plain_python_numpy_s']:.2f}x)")
        for name in ("ETH-1H-BINARY", "XSEC-RANK"):
            result = researcher_run(name, args.days, args.iterations, evaluator, work)
            per_iteration = statistics.mean(result["iteration_s"])
            print(f"{name}: {result['assets']} asset(s), {args.days} days ({result['rows']} rows, "
                  f"{result['dev_rows']} development): {per_iteration:.2f} s per built-in iteration "
                  f"(each: {', '.join(f'{s:.2f}' for s in result['iteration_s'])} s; in the sandbox "
                  f"{', '.join(f'{s:.2f}' for s in result['sandbox_s'])} s); holdout evaluation "
                  f"{result['holdout_s']:.2f} s; data generation {result['generation_s']:.1f} s (not counted)")
            print(f"    development {CHALLENGES[name].metric.primary}: "
                  f"{', '.join(f'{v:.4f}' for v in result['dev_metric'])}; holdout {result['holdout_metric']:.4f} "
                  f"vs noise floor {result['noise_floor']:.4f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
