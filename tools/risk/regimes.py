"""Causal market-regime detection: a Gaussian HMM (hmmlearn) on bar features, read by forward filtering.

Features per bar t (each uses bars up to t only): the mean log return (momentum), the log of the realized
volatility and the log of the mean volume, each over the last `window` bars. They are standardized over
the fit window and a diagonal-covariance Gaussian HMM is fitted by EM (hmmlearn, several seeded
restarts, best log-likelihood kept; the number of states chosen by BIC unless given). Labels come
from forward-filtered probabilities P(state_t | x_1..x_t) computed here from the fitted parameters,
never from hmmlearn's `predict`/`predict_proba`, which condition on the whole sequence.

States are named by their fitted mean return (the momentum feature's mean) and volatility (exp of the log
realized volatility feature's mean), not by index, so
labels survive the permutation of states between fits: a state whose volatility is at least
HIGH_VOL_RATIO times the calmest state's is HIGH_VOLATILITY, or CRISIS when its mean return per bar is
below -TREND_THRESHOLD of its volatility; the others are BULL, BEAR or SIDEWAYS by the sign of
mean / volatility against TREND_THRESHOLD. Several states may share a label: label probabilities
are the sums of their states' probabilities.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from quantdesk.tools.risk.bars import Bars

FloatArray = npt.NDArray[np.float64]
Regime = Literal["BULL", "BEAR", "SIDEWAYS", "HIGH_VOLATILITY", "CRISIS", "UNKNOWN"]
LABELS: tuple[Regime, ...] = ("BULL", "BEAR", "SIDEWAYS", "HIGH_VOLATILITY", "CRISIS")
FEATURES = ("momentum", "log_realized_volatility", "log_volume")
WINDOW = 12
HIGH_VOL_RATIO = 1.75
TREND_THRESHOLD = 0.2
MIN_BARS = 100
"""Bars (after the feature window) below which no model is fitted: the regime is UNKNOWN."""
RESTARTS = 5
STATE_CHOICES = (2, 3, 4, 5, 6)
MIN_COVAR = 1e-3

POLICY: dict[str, dict[str, float]] = {
    "BULL": {"leverage_multiplier": 1.0, "position_limit": 0.20},
    "SIDEWAYS": {"leverage_multiplier": 0.75, "position_limit": 0.15},
    "BEAR": {"leverage_multiplier": 0.5, "position_limit": 0.10},
    "HIGH_VOLATILITY": {"leverage_multiplier": 0.5, "position_limit": 0.10},
    "CRISIS": {"leverage_multiplier": 0.25, "position_limit": 0.05},
    "UNKNOWN": {"leverage_multiplier": 0.25, "position_limit": 0.05},
}
"""Trading parameters per regime: a fixed policy (the most conservative one while the regime is unknown)."""


@dataclass(frozen=True, slots=True)
class FeatureMatrix:
    times_ms: npt.NDArray[np.int64]
    """Close time of the bar each row describes (open + timeframe)."""
    values: FloatArray
    returns: FloatArray


def features(bars: Bars, timeframe_seconds: int, window: int = WINDOW) -> FeatureMatrix:
    """One row per bar from the window-th on; each row uses that bar and earlier ones only."""
    close = bars.close
    n = len(bars)
    if n <= window + 1:
        return FeatureMatrix(np.empty(0, dtype=np.int64), np.empty((0, len(FEATURES))), np.empty(0))
    r = np.diff(np.log(close))
    kernel = np.ones(window) / window
    mean_r = np.convolve(r, kernel, mode="valid")
    mean_r2 = np.convolve(r * r, kernel, mode="valid")
    rv = np.sqrt(np.maximum(mean_r2 - mean_r * mean_r, 0.0) * window / max(window - 1, 1))
    tail = r[window - 1:]
    volume = np.log1p(np.convolve(bars.volume[1:], kernel, mode="valid"))
    values = np.column_stack([mean_r, np.log(rv + 1e-12), volume])
    times = bars.open_ms[window:] + timeframe_seconds * 1000
    return FeatureMatrix(times.astype(np.int64), values, tail)


@dataclass(frozen=True, slots=True)
class StateInfo:
    state: int
    label: Regime
    mean_return_per_bar: float
    volatility_per_bar: float
    expected_duration_bars: float
    share_of_bars: float


@dataclass(frozen=True, slots=True)
class RegimeModel:
    n_states: int
    startprob: FloatArray
    transmat: FloatArray
    means: FloatArray
    variances: FloatArray
    center: FloatArray
    scale: FloatArray
    states: tuple[StateInfo, ...]
    log_likelihood: float
    bic: float
    converged: bool
    bars_used: int
    seed: int

    @property
    def labels(self) -> tuple[Regime, ...]:
        return tuple(s.label for s in self.states)


def fit_model(fm: FeatureMatrix, *, n_states: int | None = None, seed: int = 0) -> RegimeModel:
    """Fit the HMM on every row of `fm` (the caller passes only data up to the present)."""
    from hmmlearn.hmm import GaussianHMM  # type: ignore[import-untyped]
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # hmmlearn logs every restart that stops short of its tolerance; `converged` reports it instead
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)

    x = fm.values
    center = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - center) / scale
    seeds = np.random.SeedSequence(seed).generate_state(RESTARTS * len(STATE_CHOICES), np.uint32)
    best: tuple[float, Any, int] | None = None
    choices = (n_states,) if n_states is not None else STATE_CHOICES
    for i, k in enumerate(choices):
        candidate: tuple[float, Any] | None = None
        for j in range(RESTARTS):
            model = GaussianHMM(n_components=k, covariance_type="diag", n_iter=100, tol=1e-3, min_covar=MIN_COVAR,
                                implementation="scaling", random_state=int(seeds[i * RESTARTS + j]))
            # one thread: k-means' OpenMP workers spin for milliseconds per call on a busy machine (100x slower)
            with warnings.catch_warnings(), threadpool_limits(limits=1):
                # a restart that does not converge is judged by its likelihood like the others
                warnings.simplefilter("ignore")
                try:
                    model.fit(z)
                    score = float(model.score(z))
                except (ValueError, np.linalg.LinAlgError):
                    continue
            if math.isfinite(score) and (candidate is None or score > candidate[0]):
                candidate = (score, model)
        if candidate is None:
            continue
        score, model = candidate
        bic = float(model.bic(z)) if n_states is None else -2.0 * score
        if best is None or bic < best[0]:
            best = (bic, model, k)
    if best is None:
        raise ValueError("the regime model could not be fitted on these bars")
    bic, model, k = best
    variances = np.array([np.diag(c) for c in model.covars_])
    means = np.asarray(model.means_, dtype=np.float64)
    probs = filtered_probabilities_raw(model.startprob_, model.transmat_, means, variances, z)
    share = np.bincount(probs.argmax(axis=1), minlength=k) / max(len(z), 1)
    mu = means[:, 0] * scale[0] + center[0]
    sigma = np.exp(means[:, 1] * scale[1] + center[1])
    calm = float(sigma.min())
    states = []
    for s in range(k):
        stay = float(model.transmat_[s, s])
        states.append(StateInfo(s, name_state(float(mu[s]), float(sigma[s]), calm), float(mu[s]), float(sigma[s]),
                                1.0 / (1.0 - stay) if stay < 1.0 else float(len(z)), float(share[s])))
    return RegimeModel(k, np.asarray(model.startprob_, dtype=np.float64), np.asarray(model.transmat_, dtype=np.float64),
                       means, variances, center, scale, tuple(states), float(model.score(z)), bic,
                       bool(model.monitor_.converged), int(len(z)), seed)


def name_state(mean: float, volatility: float, calmest: float) -> Regime:
    ratio = mean / volatility if volatility > 0 else 0.0
    if calmest > 0 and volatility >= HIGH_VOL_RATIO * calmest:
        return "CRISIS" if ratio <= -TREND_THRESHOLD else "HIGH_VOLATILITY"
    if ratio >= TREND_THRESHOLD:
        return "BULL"
    if ratio <= -TREND_THRESHOLD:
        return "BEAR"
    return "SIDEWAYS"


def filtered_probabilities_raw(startprob: FloatArray, transmat: FloatArray, means: FloatArray,
                               variances: FloatArray, z: FloatArray, prior: FloatArray | None = None) -> FloatArray:
    """Forward filter: row t is P(state_t | z_1..z_t); `prior` is P(state) before z_1 (else the start law)."""
    log_b = -0.5 * (np.log(2.0 * np.pi * variances)[None, :, :]
                    + (z[:, None, :] - means[None, :, :]) ** 2 / variances[None, :, :]).sum(axis=2)
    out: FloatArray = np.empty_like(log_b)
    alpha = startprob if prior is None else prior @ transmat
    for t in range(log_b.shape[0]):
        b = np.exp(log_b[t] - log_b[t].max())
        alpha = alpha * b
        total = alpha.sum()
        alpha = alpha / total if total > 0 else np.full_like(alpha, 1.0 / alpha.shape[0])
        out[t] = alpha
        alpha = alpha @ transmat
    return out


def filtered_probabilities(model: RegimeModel, fm: FeatureMatrix, prior: FloatArray | None = None) -> FloatArray:
    z = (fm.values - model.center) / model.scale
    return filtered_probabilities_raw(model.startprob, model.transmat, model.means, model.variances, z, prior)


def label_probabilities(model: RegimeModel, probs: FloatArray) -> dict[str, FloatArray]:
    """Per label, the summed probability of its states (labels no state carries are 0)."""
    out: dict[str, FloatArray] = {label: np.zeros(probs.shape[0]) for label in LABELS}
    for s in model.states:
        out[s.label] = out[s.label] + probs[:, s.state]
    return out


def most_likely(model: RegimeModel, probs_row: FloatArray) -> tuple[Regime, float, dict[str, float]]:
    by_label: dict[str, float] = {label: 0.0 for label in LABELS}
    for s in model.states:
        by_label[s.label] += float(probs_row[s.state])
    label: Regime = max(LABELS, key=lambda name: by_label[name])
    return label, by_label[label], by_label


def market_features(bars: Bars, periods_per_year: float) -> dict[str, float | None]:
    """Summary features of a window of bars: annualized volatility, trend strength and direction, volume ratio."""
    if len(bars) < 3:
        return {"volatility_annual": None, "trend_strength": None, "trend_direction": None, "volume_ratio": None}
    r = np.diff(np.log(bars.close))
    vol = float(r.std(ddof=1)) * math.sqrt(periods_per_year)
    y = np.log(bars.close)
    t = np.arange(len(y), dtype=np.float64)
    slope, intercept = np.polyfit(t, y, 1)
    fitted = slope * t + intercept
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - fitted) ** 2).sum()) / total if total > 0 else 0.0
    recent = max(1, len(bars) // 4)
    mean_volume = float(bars.volume.mean())
    ratio = float(bars.volume[-recent:].mean()) / mean_volume if mean_volume > 0 else None
    return {"volatility_annual": vol, "trend_strength": max(0.0, min(1.0, r2)),
            "trend_direction": float(np.sign(slope)), "volume_ratio": ratio}
