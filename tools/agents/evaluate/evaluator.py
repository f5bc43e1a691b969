"""One evaluation: run a strategy in the sandbox on the rows it may see, then score it in the server.

Development runs see rows [0, dev_end) only and are scored there (what the agent is shown). The
holdout run, once per agent, sees every row; it is scored on the holdout rows beside the noise floor
and a bootstrap interval, and audited: its embeddings on the development rows must equal those of
the development run of the same code, or the strategy looked ahead (or is not deterministic).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.data.market import MarketData
from quantdesk.tools.agents.evaluate.features import feature_report
from quantdesk.tools.agents.evaluate.honesty import noise_floor, significance
from quantdesk.tools.agents.evaluate.metrics import FloatArray
from quantdesk.tools.agents.evaluate.scoring import Split, embedding_problem, prepare_targets, score_rows
from quantdesk.tools.agents.sandbox.sandbox import Sandbox

DEV_NOISE_SHIFTS = 29


@dataclass(slots=True)
class Evaluation:
    ok: bool
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    feature_report: list[dict[str, Any]] = field(default_factory=list)
    embeddings_digest: str | None = None
    sandbox_seconds: float = 0.0
    timed_out: bool = False
    output_tail: str = ""


def view_assets(challenge: Challenge, data: MarketData) -> tuple[str, ...]:
    wanted = list(challenge.assets)
    if len(wanted) == 1 and wanted[0] != "BTC":
        wanted.append("BTC")
    return tuple(a for a in wanted if a in data.assets)


def digest(embeddings: FloatArray, rows: int) -> str:
    return hashlib.sha256(np.ascontiguousarray(embeddings[:rows], dtype=np.float32).tobytes()).hexdigest()


class Evaluator:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def _run(self, challenge: Challenge, data: MarketData, rows: int, code: str, workdir: Path,
             wall_seconds: float | None, owner: str) -> tuple[Evaluation, FloatArray | None, dict[str, Any]]:
        visible = data.select(view_assets(challenge, data)).head(rows)
        workspace = workdir / "ws"
        shutil.rmtree(workspace, ignore_errors=True)
        self.sandbox.prepare(workspace, code, {"dim": challenge.dim, "assets": list(visible.assets)},
                             {"ohlcv": visible.ohlcv, "funding": visible.funding,
                              "timestamps_ms": visible.timestamps_ms})
        try:
            result = self.sandbox.run(workspace, workdir / "output.log", wall_seconds=wall_seconds, owner=owner)
            base = Evaluation(ok=False, sandbox_seconds=round(result.seconds, 3), timed_out=result.timed_out,
                              output_tail=result.output_tail[-4000:])
            if not result.ok:
                base.error = result.failure()
                return base, None, {}
            try:
                embeddings = np.load(workspace / "embeddings.npy").astype(np.float64)
                with np.load(workspace / "features.npz") as npz:
                    features = {k: npz[k] for k in npz.files}
            except (OSError, ValueError) as exc:
                base.error = f"the strategy's output could not be read: {exc}"
                return base, None, {}
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        problem = embedding_problem(challenge, embeddings, int(result.outcome.get("warmup", 0)))
        if problem is not None:
            base.error = problem
            return base, None, {}
        features["__warmup__"] = np.asarray([int(result.outcome.get("warmup", 0))])
        return base, embeddings, features

    def development(self, challenge: Challenge, data: MarketData, split: Split, code: str, workdir: Path, *,
                    descriptions: dict[str, dict[str, str]] | None = None, seed: int = 0,
                    wall_seconds: float | None = None, owner: str = "") -> Evaluation:
        """Run on the development rows; score there. The agent sees this, and nothing of the holdout."""
        dev = data.head(split.dev_end)
        outcome, embeddings, features = self._run(challenge, dev, split.dev_end, code, workdir, wall_seconds, owner)
        if embeddings is None:
            return outcome
        warmup = int(features.pop("__warmup__")[0])
        targets = prepare_targets(challenge, dev, 0, split.dev_end, warmup)
        aligned = embeddings[targets.rows]
        summary, windows = score_rows(challenge, aligned, targets)
        value = summary.get(challenge.metric.primary)
        if value is None:
            outcome.error = "no scoring window had both outcomes (too little data after the warmup?)"
            return outcome
        noise = noise_floor(challenge, aligned, targets, value, shifts=DEV_NOISE_SHIFTS, seed=seed)
        rows = features.pop("__rows__")
        report = feature_report(challenge, dev, rows, {k: v for k, v in features.items() if not k.startswith("_")},
                                descriptions)
        outcome.ok = True
        outcome.metrics = {**summary, "windows": windows, "n_windows": len(windows), "n_scored": int(targets.rows.size),
                           "noise_sd": noise.get("sd"), "noise_mean": noise.get("mean"), "segment": "development",
                           "rows": split.dev_end, "warmup": warmup}
        outcome.feature_report = report
        outcome.embeddings_digest = digest(embeddings, split.dev_end)
        return outcome

    def holdout(self, challenge: Challenge, data: MarketData, split: Split, code: str, workdir: Path, *,
                dev_digest: str | None, seed: int = 0, wall_seconds: float | None = None,
                owner: str = "") -> Evaluation:
        """The one holdout evaluation: all rows, scored on the holdout beside the noise floor and a CI."""
        outcome, embeddings, features = self._run(challenge, data, data.rows, code, workdir, wall_seconds, owner)
        if embeddings is None:
            return outcome
        warmup = int(features.pop("__warmup__")[0])
        targets = prepare_targets(challenge, data, split.holdout_start, data.rows, warmup)
        aligned = embeddings[targets.rows]
        summary, windows = score_rows(challenge, aligned, targets)
        value = summary.get(challenge.metric.primary)
        if value is None:
            outcome.error = "no holdout window had both outcomes"
            return outcome
        significance_ = significance(challenge, aligned, targets, value, seed=seed)
        audit_digest = digest(embeddings, split.dev_end)
        outcome.ok = True
        outcome.metrics = {
            **summary, "windows": windows, "n_windows": len(windows), "n_scored": int(targets.rows.size),
            **significance_.as_dict(), "split": split.as_dict(), "segment": "holdout",
            "causality_audit": {"method": "development-row embeddings with and without the holdout appended",
                                "passed": dev_digest is not None and audit_digest == dev_digest,
                                "compared": dev_digest is not None}}
        outcome.embeddings_digest = audit_digest
        return outcome
