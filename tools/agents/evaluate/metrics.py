"""Rank metrics in numpy: ROC AUC (ties averaged), row-wise Spearman, balanced accuracy, log loss."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
EPS = 1e-12


def average_ranks(values: FloatArray) -> FloatArray:
    """Ranks 1..n with ties averaged (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1], True])
    ranks_sorted = np.empty(values.size)
    for start, stop in zip(boundaries[:-1], boundaries[1:], strict=True):
        ranks_sorted[start:stop] = (start + stop + 1) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = ranks_sorted
    return ranks


def _fast_ranks(values: FloatArray) -> FloatArray:
    """Average ranks; fast path when there are no ties."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    if np.any(sorted_values[1:] == sorted_values[:-1]):
        return average_ranks(values)
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1, dtype=np.float64)
    return ranks


def roc_auc(labels: npt.NDArray[np.integer] | npt.NDArray[np.bool_], scores: FloatArray) -> float:
    """Mann-Whitney AUC; NaN when only one class is present."""
    y = np.asarray(labels).astype(bool)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _fast_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def row_spearman(scores: FloatArray, targets: FloatArray) -> FloatArray:
    """Spearman correlation of each row of `scores` with the same row of `targets` (NaN where undefined).

    Rows with a non-finite entry are NaN; ranks are ordinal within a row (ties broken by position),
    which differs from average ranks only on exact ties.
    """
    ok = np.isfinite(scores).all(axis=1) & np.isfinite(targets).all(axis=1)
    out = np.full(scores.shape[0], np.nan)
    if not ok.any():
        return out
    s, t = scores[ok], targets[ok]
    rs = np.argsort(np.argsort(s, axis=1, kind="stable"), axis=1).astype(np.float64)
    rt = np.argsort(np.argsort(t, axis=1, kind="stable"), axis=1).astype(np.float64)
    rs -= rs.mean(axis=1, keepdims=True)
    rt -= rt.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rs * rs).sum(axis=1) * (rt * rt).sum(axis=1))
    # a row of constant scores has no ranking: Spearman is undefined there, not zero
    constant = (np.ptp(s, axis=1) == 0) | (np.ptp(t, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(constant | (denominator == 0), np.nan, (rs * rt).sum(axis=1) / denominator)
    out[ok] = rho
    return out


def balanced_accuracy(labels: IntArray, predicted: IntArray, classes: int) -> float:
    per_class = [float((predicted[labels == c] == c).mean()) for c in range(classes) if (labels == c).any()]
    return float(np.mean(per_class)) if per_class else float("nan")


def log_loss(labels: IntArray, probabilities: FloatArray) -> float:
    p = np.clip(probabilities[np.arange(labels.size), labels], EPS, 1.0)
    return float(-np.log(p).mean())


def spearman_with_p(x: FloatArray, y: FloatArray) -> tuple[float, float, int]:
    """Spearman rho, its two-sided p-value (t approximation) and n, over the finite pairs."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 10 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), float("nan"), n
    rx, ry = average_ranks(x[ok]), average_ranks(y[ok])
    rho = float(np.corrcoef(rx, ry)[0, 1])
    from scipy.stats import t as student_t

    if abs(rho) >= 1.0:
        return rho, 0.0, n
    statistic = rho * np.sqrt((n - 2) / (1.0 - rho * rho))
    return rho, float(2.0 * student_t.sf(abs(statistic), n - 2)), n
