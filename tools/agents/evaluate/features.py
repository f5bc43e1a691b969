"""Feature reports computed by the evaluator from the features a strategy actually produced (never self-reported).

The sandbox records each feature the Featurizer returns at sampled compute steps. Per feature: its
statistics over the development rows and its predictive power: the Spearman correlation with the
forward return over the challenge horizon (cross-sectionally, per timestep, for per-asset vectors),
on rows thinned to one per horizon so the samples do not overlap and the p-value means what it says.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.data.market import MarketData
from quantdesk.tools.agents.evaluate.labels import forward_change, forward_log_return
from quantdesk.tools.agents.evaluate.metrics import FloatArray, IntArray, row_spearman, spearman_with_p

MAX_FEATURES = 64


def _interpret(rho: float, p_value: float, n: int) -> str:
    if not np.isfinite(rho):
        return "not measurable (constant or too few samples)"
    strength = "strong" if abs(rho) >= 0.1 else "moderate" if abs(rho) >= 0.05 else "weak"
    direction = "positive" if rho > 0 else "negative"
    if p_value < 0.01:
        return f"{strength} {direction}, significant at 1 % (n = {n})"
    if p_value < 0.05:
        return f"{strength} {direction}, significant at 5 % (n = {n})"
    return f"{strength} {direction}, not significant (p = {p_value:.2f}, n = {n})"


def _targets(challenge: Challenge, data: MarketData) -> tuple[FloatArray, FloatArray | None]:
    """Forward target per row for scalar features, and per row x asset for per-asset vectors."""
    h = max(challenge.horizon_minutes, 60)
    if len(challenge.assets) == 1:
        return forward_log_return(data.close(challenge.assets[0]), h), None
    sub = data.select(challenge.assets)
    closes = sub.closes()
    matrix = forward_change(sub.funding, h) if challenge.type == "funding_xsec" else forward_change(
        np.log(closes), h)
    anchor = "BTC" if "BTC" in data.assets else data.assets[0]
    return forward_log_return(data.close(anchor), h), matrix


def feature_report(challenge: Challenge, data: MarketData, sample_rows: IntArray, features: dict[str, FloatArray],
                   descriptions: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """One entry per feature (MANTIS shape), ranked by |predictive power|; `data` is what the strategy saw."""
    descriptions = descriptions or {}
    h = max(challenge.horizon_minutes, 60)
    scalar_target, matrix_target = _targets(challenge, data)
    n_assets = len(challenge.assets)
    thin = np.zeros(sample_rows.size, dtype=bool)
    last = -h
    for i, row in enumerate(sample_rows):
        if row - last >= h:
            thin[i] = True
            last = int(row)
    entries: list[dict[str, Any]] = []
    for name in sorted(features)[:MAX_FEATURES]:
        values = np.asarray(features[name], dtype=np.float64).reshape(sample_rows.size, -1)
        finite = values[np.isfinite(values)]
        stats = {"mean": float(finite.mean()), "std": float(finite.std()), "min": float(finite.min()),
                 "max": float(finite.max())} if finite.size else {"mean": None, "std": None, "min": None,
                                                                   "max": None}
        rows = sample_rows[thin]
        if values.shape[1] == 1:
            rho, p_value, n = spearman_with_p(values[thin, 0], scalar_target[rows])
            method = f"spearman vs {h}-minute forward return"
        elif matrix_target is not None and values.shape[1] == n_assets:
            per_row = row_spearman(values[thin], matrix_target[rows])
            per_row = per_row[np.isfinite(per_row)]
            n = int(per_row.size)
            rho = float(per_row.mean()) if n else float("nan")
            p_value = float("nan")
            if n > 2 and per_row.std() > 0:
                from scipy.stats import t as student_t

                statistic = rho / (per_row.std(ddof=1) / np.sqrt(n))
                p_value = float(2.0 * student_t.sf(abs(statistic), n - 1))
            target_name = "forward funding change" if challenge.type == "funding_xsec" else "forward return"
            method = f"mean cross-sectional spearman vs {h}-minute {target_name}"
        else:
            rho, p_value, n = float("nan"), float("nan"), 0
            method = f"none (shape {values.shape[1]} is neither a scalar nor one value per asset)"
        described = descriptions.get(name, {})
        entries.append({
            "name": name,
            "description": described.get("description", f"{name}: computed by the strategy's Featurizer"),
            "signal": described.get("signal", "positive values predict up" if rho > 0 else
                                    "negative values predict up" if rho < 0 else "no measurable signal"),
            "stats": stats,
            "predictive_power": {"method": method, "value": None if not np.isfinite(rho) else rho,
                                 "p_value": None if not np.isfinite(p_value) else p_value, "n_samples": n,
                                 "interpretation": _interpret(rho, p_value, n)},
        })
    ranked = sorted(entries, key=lambda e: -abs(e["predictive_power"]["value"] or 0.0))
    for rank, entry in enumerate(ranked, start=1):
        entry["importance_rank"] = rank
    return ranked
