"""How much a score means: a no-skill noise floor on the same windows and a block-bootstrap confidence interval.

Noise floor: the strategy's own embeddings shifted in time against the labels (circular shifts of at
least twice the horizon) are a no-skill strategy with the same score distribution and the same
autocorrelation, scored with the same metric on the same windows. Window-composition bias (a
reversal score earns AUC 0.51 on a random walk) shows up in it too, which i.i.d. random scores would
hide. Its 95th percentile is the floor; the share of shifts at least as good is a permutation p-value.

Confidence interval: moving-block bootstrap over the scored rows (blocks of max(2 x horizon, 240)
rows, so overlapping labels stay together), the metric recomputed on each resample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.evaluate.metrics import FloatArray
from quantdesk.tools.agents.evaluate.scoring import Targets, score_rows


@dataclass(frozen=True, slots=True)
class Significance:
    noise: dict[str, Any]
    confidence_interval: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"noise_floor": self.noise, "confidence_interval": self.confidence_interval}


def _primary(challenge: Challenge, emb: FloatArray, targets: Targets) -> float | None:
    summary, _ = score_rows(challenge, emb, targets)
    return summary.get(challenge.metric.primary)


def noise_floor(challenge: Challenge, emb: FloatArray, targets: Targets, value: float | None, *,
                shifts: int, seed: int) -> dict[str, Any]:
    n = targets.rows.size
    min_shift = 1 if challenge.type == "breakout" else max(2 * challenge.horizon_minutes, 120)
    if n <= 2 * min_shift or value is None:
        return {"method": "circular_shift", "available": False, "n_null": 0}
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    offsets = rng.integers(min_shift, n - min_shift, size=shifts)
    null = []
    for offset in offsets:
        shifted = np.roll(emb, int(offset), axis=0)
        metric = _primary(challenge, shifted, targets)
        if metric is not None and np.isfinite(metric):
            null.append(metric)
    if len(null) < 5:
        return {"method": "circular_shift", "available": False, "n_null": len(null)}
    values = np.asarray(null)
    higher = challenge.metric.direction == "higher"
    floor = float(np.quantile(values, 0.95 if higher else 0.05))
    band = (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975)))
    as_good = (values >= value).sum() if higher else (values <= value).sum()
    return {"method": "circular_shift", "available": True, "n_null": len(null),
            "mean": float(values.mean()), "sd": float(values.std(ddof=1)), "floor": floor,
            "band_low": band[0], "band_high": band[1],
            "p_value": float((1 + as_good) / (1 + len(null))),
            "beats_noise_floor": bool(value > floor if higher else value < floor),
            "inside_noise_band": bool(band[0] <= value <= band[1])}


def block_bootstrap(challenge: Challenge, emb: FloatArray, targets: Targets, *, replicates: int, seed: int,
                    level: float = 0.95) -> dict[str, Any]:
    n = targets.rows.size
    block = max(1, n // 20) if challenge.type == "breakout" else max(2 * challenge.horizon_minutes, 240)
    if n < 2 * block:
        return {"method": "moving_block_bootstrap", "available": False}
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    blocks = -(-n // block)
    values = []
    for _ in range(replicates):
        starts = rng.integers(0, n - block + 1, size=blocks)
        index = (starts[:, None] + np.arange(block)[None, :]).reshape(-1)[:n]
        metric = _primary(challenge, emb[index], targets.take(index))
        if metric is not None and np.isfinite(metric):
            values.append(metric)
    if len(values) < 10:
        return {"method": "moving_block_bootstrap", "available": False}
    tail = (1.0 - level) / 2.0
    return {"method": "moving_block_bootstrap", "available": True, "level": level, "block_rows": block,
            "replicates": len(values), "low": float(np.quantile(values, tail)),
            "high": float(np.quantile(values, 1.0 - tail)), "sd": float(np.std(values, ddof=1))}


def significance(challenge: Challenge, emb: FloatArray, targets: Targets, value: float | None, *,
                 shifts: int = 99, replicates: int = 99, seed: int = 0) -> Significance:
    return Significance(noise_floor(challenge, emb, targets, value, shifts=shifts, seed=seed),
                        block_bootstrap(challenge, emb, targets, replicates=replicates, seed=seed + 1))
