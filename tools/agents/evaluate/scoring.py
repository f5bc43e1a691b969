"""Score a strategy's embeddings on one segment of the data, window by window (walk-forward order).

The split: rows [0, dev_end) are the development data, the only rows a strategy sees while it
iterates; labels there are computed from those rows alone, so the last `horizon` of them have none
(the purge). The holdout is the last `holdout_days`; its scoring starts `embargo` rows after the
development data ends, so no holdout row's features overlap a development label interval. Embeddings
are rows x dim, NaN before the strategy's warmup; windows are consecutive runs of `chunk` scored rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.data.market import MarketData
from quantdesk.tools.agents.evaluate import labels as lab
from quantdesk.tools.agents.evaluate.metrics import (
    EPS,
    FloatArray,
    IntArray,
    balanced_accuracy,
    log_loss,
    roc_auc,
    row_spearman,
)

HOLDOUT_DAYS = 20
MIN_WINDOW_ROWS = 200
MIN_XSEC_ROWS = 20
PROBABILITY_TYPES = ("binary", "hitfirst", "lbfgs", "breakout")


@dataclass(frozen=True, slots=True)
class Split:
    rows: int
    dev_end: int
    holdout_start: int
    embargo: int

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "dev_rows": self.dev_end, "holdout_start_row": self.holdout_start,
                "holdout_rows": self.rows - self.holdout_start, "embargo_rows": self.embargo}


def make_split(challenge: Challenge, rows: int, holdout_days: float = HOLDOUT_DAYS) -> Split:
    holdout = int(holdout_days * 1440)
    embargo = max(challenge.horizon_minutes, 60)
    dev_end = rows - holdout
    if dev_end < 2 * 1440 or holdout <= embargo + MIN_WINDOW_ROWS:
        raise InvalidArgument.from_problems([Problem("$.days_back", f"{rows} minutes of data leave no room for "
                                                                    f"a {holdout_days}-day holdout")])
    return Split(rows, dev_end, dev_end + embargo, embargo)


def embedding_problem(challenge: Challenge, embeddings: FloatArray, warmup: int) -> str | None:
    """Why these embeddings cannot be scored (shape, NaN, probabilities out of [0, 1]), or None."""
    if embeddings.ndim != 2 or embeddings.shape[1] != challenge.dim:
        return f"embeddings must have {challenge.dim} columns, got shape {tuple(embeddings.shape)}"
    body = embeddings[warmup:]
    if body.size == 0:
        return "no embeddings after warmup"
    bad = ~np.isfinite(body)
    if bad.any():
        row = int(np.argwhere(bad)[0][0]) + warmup
        return f"non-finite value (NaN or inf) in the embedding at row {row}"
    if challenge.type in PROBABILITY_TYPES and ((body < 0).any() or (body > 1).any()):
        row = int(np.argwhere((body < 0) | (body > 1))[0][0]) + warmup
        return f"probability outside [0, 1] in the embedding at row {row}"
    return None


@dataclass(slots=True)
class Targets:
    """What a segment's rows are scored against, aligned with `rows` (row indices into the data)."""

    rows: IntArray
    y: IntArray | None = None
    q_hit: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    matrix: FloatArray | None = None
    columns: IntArray | None = None
    """breakout: the embedding column of each event's score."""

    def take(self, index: IntArray) -> Targets:
        return Targets(self.rows[index], None if self.y is None else self.y[index],
                       None if self.q_hit is None else self.q_hit[index],
                       None if self.matrix is None else self.matrix[index],
                       None if self.columns is None else self.columns[index])


def prepare_targets(challenge: Challenge, data: MarketData, start: int, stop: int, warmup: int) -> Targets:
    """Labels for rows in [max(start, warmup), stop) that the data seen can resolve."""
    first = max(start, warmup)
    h = challenge.horizon_minutes
    if challenge.type == "breakout":
        closes = data.select(challenge.assets).closes()
        p = challenge.params
        events = lab.breakout_events(closes, int(p["range_lookback_minutes"]), p["barrier_pct"],
                                     p["min_range_pct"], int(p["max_pending_minutes"]))
        keep = (events.trigger >= first) & (events.trigger < stop)
        order = np.argsort(events.trigger[keep], kind="stable")
        return Targets(events.trigger[keep][order], events.label[keep][order],
                       columns=2 * events.asset_index[keep][order])
    if challenge.type in ("xsec_rank", "funding_xsec"):
        sub = data.select(challenge.assets)
        if challenge.type == "xsec_rank":
            closes = sub.closes()
            target = np.full(closes.shape, np.nan)
            target[:-h] = closes[h:] / closes[:-h] - 1.0
        else:
            target = lab.forward_change(sub.funding, h)
        rows = np.arange(first, min(stop, data.rows))
        known = np.isfinite(target[rows]).sum(axis=1) >= 5
        return Targets(rows[known], matrix=target[rows[known]])
    close = data.close(challenge.assets[0])
    if challenge.type == "binary":
        y, known = lab.binary_labels(close, h)
    elif challenge.type == "hitfirst":
        y, known = lab.hitfirst_labels(close, h, int(challenge.params["vol_window"]))
    else:
        lb = lab.lbfgs_labels(close, h, int(challenge.params["vol_window"]))
        rows = np.arange(first, stop)
        rows = rows[lb.known[rows]]
        return Targets(rows, lb.bucket[rows], q_hit=lb.q_hit[rows])
    rows = np.arange(first, stop)
    rows = rows[known[rows]]
    return Targets(rows, y[rows])


# --- per-window metrics ---------------------------------------------------------------------------

WindowFn = Callable[[FloatArray, Targets, int, int, int], dict[str, Any] | None]


def _binary_window(emb: FloatArray, t: Targets, a: int, b: int, purge: int) -> dict[str, Any] | None:
    assert t.y is not None
    auc = roc_auc(t.y[a:b], emb[a:b, 0])
    return None if np.isnan(auc) else {"auc": auc}


def _orient(scores: FloatArray, y: IntArray) -> float:
    """Direction of a one-feature logistic fit on past rows: the sign of the class-mean difference."""
    if y.all() or not y.any():
        return 1.0
    return 1.0 if scores[y == 1].mean() >= scores[y == 0].mean() else -1.0


def _hitfirst_window(emb: FloatArray, t: Targets, a: int, b: int, purge: int) -> dict[str, Any] | None:
    assert t.y is not None
    probs = np.clip(emb[:, :3], EPS, 1.0)
    probs = probs / probs.sum(axis=1, keepdims=True)
    y = t.y
    out: dict[str, Any] = {"direct_log_loss": log_loss(y[a:b], probs[a:b])}
    train_stop = max(0, a - purge)
    for name, column, cls in (("up_auc", 0, 0), ("dn_auc", 1, 1)):
        logit = np.log(probs[:, column]) - np.log1p(-np.minimum(probs[:, column], 1 - EPS))
        target = (y == cls).astype(np.int64)
        sign = _orient(logit[:train_stop], target[:train_stop]) if train_stop > 50 else 1.0
        out[name] = roc_auc(target[a:b], sign * logit[a:b])
    return out


def _lbfgs_window(emb: FloatArray, t: Targets, a: int, b: int, purge: int) -> dict[str, Any] | None:
    assert t.y is not None and t.q_hit is not None
    y = t.y[a:b]
    if np.unique(y).size < 2:
        return None
    p = np.clip(emb[a:b, :5], 1e-6, None)
    bal = balanced_accuracy(y, p.argmax(axis=1), 5)
    aucs = []
    for ci, cls in enumerate(lab.Q_CLASSES):
        mask = y == cls
        for k in range(3):
            auc = roc_auc(t.q_hit[a:b][mask, k], emb[a:b][mask, 5 + 3 * ci + k])
            if not np.isnan(auc):
                aucs.append(auc)
    q = float(np.mean(aucs)) if aucs else float("nan")
    return {"balanced_accuracy": bal, "lift_over_random": bal - 0.2, "q_auc": q, "q_auc_count": len(aucs)}


def _breakout_window(emb: FloatArray, t: Targets, a: int, b: int, purge: int) -> dict[str, Any] | None:
    assert t.y is not None and t.columns is not None
    scores = emb[np.arange(a, b), t.columns[a:b]] if emb.shape[1] > 1 else emb[a:b, 0]
    auc = roc_auc(t.y[a:b], scores)
    return None if np.isnan(auc) else {"auc": auc, "events": b - a}


def _xsec_window(emb: FloatArray, t: Targets, a: int, b: int, purge: int) -> dict[str, Any] | None:
    assert t.matrix is not None
    rho = row_spearman(emb[a:b], t.matrix[a:b])
    rho = rho[np.isfinite(rho)]
    if rho.size < MIN_XSEC_ROWS:
        return None
    return {"mean_spearman": float(rho.mean()), "n_timesteps": int(rho.size)}


WINDOW_FUNCTIONS: dict[str, WindowFn] = {
    "binary": _binary_window, "hitfirst": _hitfirst_window, "lbfgs": _lbfgs_window,
    "breakout": _breakout_window, "xsec_rank": _xsec_window, "funding_xsec": _xsec_window,
}


def window_bounds(challenge: Challenge, n: int) -> list[tuple[int, int]]:
    if challenge.type == "breakout":
        size = max(30, n // 5)
        minimum = 20
    else:
        size = challenge.chunk_minutes
        minimum = MIN_WINDOW_ROWS if challenge.type not in ("xsec_rank", "funding_xsec") else 50
    return [(a, min(a + size, n)) for a in range(0, n, size) if min(a + size, n) - a >= minimum]


def score_rows(challenge: Challenge, emb: FloatArray, targets: Targets) -> tuple[dict[str, float | None],
                                                                                list[dict[str, Any]]]:
    """Window metrics and their summary for embeddings aligned with `targets` (emb row i <-> targets row i)."""
    fn = WINDOW_FUNCTIONS[challenge.type]
    windows = []
    for a, b in window_bounds(challenge, targets.rows.size):
        values = fn(emb, targets, a, b, challenge.purge_minutes)
        if values is not None:
            windows.append({"start": int(targets.rows[a]), "end": int(targets.rows[b - 1]) + 1, **values})
    return summarize(challenge, emb, targets, windows), windows


def _mean(windows: list[dict[str, Any]], key: str) -> float | None:
    values = [w[key] for w in windows if w.get(key) is not None and np.isfinite(w[key])]
    return float(np.mean(values)) if values else None


def summarize(challenge: Challenge, emb: FloatArray, targets: Targets,
              windows: list[dict[str, Any]]) -> dict[str, float | None]:
    kind = challenge.type
    if kind in ("binary", "breakout"):
        aucs = [w["auc"] for w in windows]
        assert targets.y is not None
        if kind == "breakout" and targets.columns is not None:
            scores = emb[np.arange(targets.rows.size), targets.columns]
        else:
            scores = emb[:, 0]
        pooled = roc_auc(targets.y, scores) if targets.rows.size else float("nan")
        return {"mean_auc": _mean(windows, "auc"), "median_auc": float(np.median(aucs)) if aucs else None,
                "pooled_auc": None if np.isnan(pooled) else pooled,
                "frac_windows_above_half": float(np.mean([a > 0.5 for a in aucs])) if aucs else None}
    if kind == "hitfirst":
        return {"direct_log_loss": _mean(windows, "direct_log_loss"), "up_auc": _mean(windows, "up_auc"),
                "dn_auc": _mean(windows, "dn_auc")}
    if kind == "lbfgs":
        bal, q = _mean(windows, "balanced_accuracy"), _mean(windows, "q_auc")
        skill = None
        if bal is not None:
            skill = 0.75 * (bal - 0.2) / 0.8 + 0.25 * ((q - 0.5) / 0.5 if q is not None else 0.0)
        return {"lbfgs_skill": skill, "mean_balanced_accuracy": bal,
                "mean_lift": None if bal is None else bal - 0.2, "q_mean_auc": q}
    values = [w["mean_spearman"] for w in windows]
    return {"mean_spearman": _mean(windows, "mean_spearman"),
            "median_spearman": float(np.median(values)) if values else None}


def aligned_embeddings(emb: FloatArray, targets: Targets) -> FloatArray:
    out: FloatArray = emb[targets.rows]
    return out
