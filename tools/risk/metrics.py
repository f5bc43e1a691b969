"""Risk metrics of an equity series, with the conventions of spec/desk.md §3.3.

Input: equity on a fixed grid of bars (E_0 .. E_N), returns r_t = E_t / E_{t-1} - 1, P periods per year
from the bar size (365 days a year: 365 daily, 8760 hourly). The annual risk-free rate is de-annualized
geometrically, rf_p = (1 + rf)^(1/P) - 1. Losses are reported positive (VaR, CVaR, max drawdown). Nothing
returned is inf or NaN: an undefined metric is None with a reason in `null_reasons`.

VaR and CVaR come in three methods over a one-bar horizon: historical (linear-interpolated quantile, tail
mean of the returns at or below it), parametric (normal, sample standard deviation) and Cornish-Fisher
(population moments as R PerformanceAnalytics; its CVaR is the exact tail mean of the Cornish-Fisher
distribution). Outside the Cornish-Fisher expansion's domain of validity (where it stops being monotone)
that method falls back to historical and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from quantdesk.server.errors import InvalidArgument, Problem

FloatArray = npt.NDArray[np.float64]
VarMethod = Literal["historical", "parametric", "cornish_fisher"]
VAR_METHODS: tuple[VarMethod, ...] = ("historical", "parametric", "cornish_fisher")
YEAR_SECONDS = 365 * 86_400
MIN_RETURNS = 2
"""A sample standard deviation needs two returns; fewer is "not enough data"."""
ZERO_VOLATILITY = 1e-12
"""Per-bar standard deviations at or below this are treated as zero (no ratio is defined)."""
MAX_EXPONENT = 700.0
"""exp() of more overflows a float: an annualized growth that large is reported as null."""


def periods_per_year(bar_seconds: float) -> float:
    return YEAR_SECONDS / bar_seconds


def per_period_rate(annual_rate: float, periods: float) -> float:
    """Geometric de-annualization: (1 + rate)^(1/P) - 1."""
    return float(math.expm1(math.log1p(annual_rate) / periods))


@dataclass(frozen=True, slots=True)
class TailRisk:
    method: VarMethod
    """The method asked for."""
    method_used: VarMethod
    """The method that produced the numbers (Cornish-Fisher falls back to historical outside its domain)."""
    confidence_level: float
    var_pct: float
    cvar_pct: float
    low_confidence: bool
    """Fewer than one observation in the tail (N x alpha < 1): historical VaR is then the worst return."""
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RiskMetrics:
    observations: int
    periods_per_year: float
    risk_free_rate_per_bar: float
    min_acceptable_return_per_bar: float
    total_return_pct: float | None
    mean_return_per_bar: float
    std_return_per_bar: float
    skewness: float | None
    excess_kurtosis: float | None
    volatility_annual: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown_pct: float
    cagr: float | None
    calmar_ratio: float | None
    tail: tuple[TailRisk, ...]
    null_reasons: dict[str, str] = field(default_factory=dict)

    def tail_risk(self, method: VarMethod, confidence_level: float) -> TailRisk:
        for item in self.tail:
            if item.method == method and abs(item.confidence_level - confidence_level) < 1e-12:
                return item
        raise KeyError((method, confidence_level))


def not_enough_data(have: int, field_path: str, unit: str) -> InvalidArgument:
    message = (f"not enough data: the window holds {have} {unit} return{'s' if have != 1 else ''}; at least "
               f"{MIN_RETURNS} are needed (one equity point more than that); use a shorter bar or a longer window")
    return InvalidArgument.from_problems([Problem(field_path, message)])


def compute_metrics(equity: FloatArray, *, periods: float, risk_free_rate_annual: float = 0.0,
                    min_acceptable_return_annual: float | None = None,
                    confidence_levels: tuple[float, ...] = (0.95,)) -> RiskMetrics:
    """Every metric of §3.3 for the equity points E_0..E_N (N >= 2 returns; the caller checks)."""
    e = np.asarray(equity, dtype=np.float64)
    if e.ndim != 1 or e.shape[0] < MIN_RETURNS + 1:
        raise ValueError(f"need at least {MIN_RETURNS + 1} equity points")
    if not bool(np.all(np.isfinite(e))) or bool(np.any(e <= 0)):
        raise ValueError("equity must be finite and positive")
    reasons: dict[str, str] = {}
    r = e[1:] / e[:-1] - 1.0
    n = int(r.shape[0])
    rf_p = per_period_rate(risk_free_rate_annual, periods)
    mar_p = rf_p if min_acceptable_return_annual is None else per_period_rate(min_acceptable_return_annual, periods)
    mean = float(r.mean())
    std = float(r.std(ddof=1))
    root_p = math.sqrt(periods)

    volatility = std * root_p
    excess = r - rf_p
    excess_std = float(excess.std(ddof=1))
    sharpe: float | None = None
    if excess_std <= ZERO_VOLATILITY:
        reasons["sharpe_ratio"] = "the returns do not vary (zero standard deviation)"
    else:
        sharpe = float(excess.mean()) / excess_std * root_p
    shortfall = np.minimum(r - mar_p, 0.0)
    downside = math.sqrt(float(np.mean(shortfall * shortfall)))
    sortino: float | None = None
    if downside <= ZERO_VOLATILITY:
        reasons["sortino_ratio"] = "no return fell below the minimum acceptable return (zero downside deviation)"
    else:
        sortino = float(np.mean(r - mar_p)) / downside * root_p

    drawdown = e / np.maximum.accumulate(e) - 1.0
    max_drawdown = float(-drawdown.min())
    growth = float(e[-1] / e[0])
    exponent = math.log(growth) * periods / n
    cagr: float | None = None
    if exponent > MAX_EXPONENT:
        reasons["cagr"] = "the growth annualized over so short a window overflows; use a longer window"
    else:
        cagr = math.expm1(exponent)
    calmar: float | None = None
    if max_drawdown <= 0.0:
        reasons["calmar_ratio"] = "no drawdown in the window (max drawdown is zero)"
    elif cagr is None:
        reasons["calmar_ratio"] = "CAGR is undefined"
    else:
        calmar = cagr / max_drawdown

    skew, kurt = _moments(r)
    if skew is None:
        reasons["skewness"] = reasons["excess_kurtosis"] = "the returns do not vary (zero variance)"
    tail = tuple(tail_risk(r, method, level, skew, kurt) for level in dict.fromkeys(confidence_levels)
                 for method in VAR_METHODS)
    if std <= ZERO_VOLATILITY:
        std = 0.0
    return _finite(RiskMetrics(
        observations=n, periods_per_year=periods, risk_free_rate_per_bar=rf_p, min_acceptable_return_per_bar=mar_p,
        total_return_pct=growth - 1.0, mean_return_per_bar=mean, std_return_per_bar=std, skewness=skew,
        excess_kurtosis=kurt, volatility_annual=volatility, sharpe_ratio=sharpe, sortino_ratio=sortino,
        max_drawdown_pct=max_drawdown, cagr=cagr, calmar_ratio=calmar, tail=tail, null_reasons=reasons))


def _moments(r: FloatArray) -> tuple[float | None, float | None]:
    """Population skewness and excess kurtosis (moment estimators, as PerformanceAnalytics' Cornish-Fisher)."""
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    if math.sqrt(m2) <= ZERO_VOLATILITY:
        return None, None
    m3 = float(np.mean(d ** 3))
    m4 = float(np.mean(d ** 4))
    return m3 / m2 ** 1.5, m4 / (m2 * m2) - 3.0


def tail_risk(r: FloatArray, method: VarMethod, confidence_level: float, skew: float | None,
              kurt: float | None) -> TailRisk:
    from scipy.special import ndtri

    alpha = 1.0 - confidence_level
    low = r.shape[0] * alpha < 1.0
    if method == "historical":
        return _historical(r, method, confidence_level, alpha, low, None)
    z = float(ndtri(alpha))
    phi = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    mu = float(r.mean())
    if method == "parametric":
        sigma = float(r.std(ddof=1))
        return TailRisk(method, method, confidence_level, -(mu + sigma * z), -(mu - sigma * phi / alpha), low)
    if skew is None or kurt is None:
        return _historical(r, method, confidence_level, alpha, low, "zero variance: skewness and kurtosis are "
                                                                    "undefined, historical used")
    if not cornish_fisher_is_monotone(skew, kurt):
        return _historical(r, method, confidence_level, alpha, low, (
            f"skewness {skew:.3g} and excess kurtosis {kurt:.3g} are outside the Cornish-Fisher expansion's domain "
            "of validity (it is not monotone there): historical used"))
    sigma = math.sqrt(float(np.mean((r - mu) ** 2)))
    s, k = skew, kurt
    z_cf = z + (z * z - 1.0) * s / 6.0 + (z ** 3 - 3.0 * z) * k / 24.0 - (2.0 * z ** 3 - 5.0 * z) * s * s / 36.0
    # E[z_cf(Z) | Z <= z] for a standard normal Z, from the truncated normal's moments
    m1 = -phi / alpha
    m2 = 1.0 - z * phi / alpha
    m3 = -(z * z + 2.0) * phi / alpha
    tail_mean = m1 + (m2 - 1.0) * s / 6.0 + (m3 - 3.0 * m1) * k / 24.0 - (2.0 * m3 - 5.0 * m1) * s * s / 36.0
    return TailRisk(method, method, confidence_level, -(mu + sigma * z_cf), -(mu + sigma * tail_mean), low)


def cornish_fisher_is_monotone(skew: float, kurt: float) -> bool:
    """True when z -> z_cf(z) increases everywhere: its derivative a z^2 + b z + c has no real root.

    d z_cf / dz = 1 + z S/3 + (z^2 - 1) K/8 - (6 z^2 - 5) S^2/36, so a = K/8 - S^2/6, b = S/3,
    c = 1 - K/8 + 5 S^2/36.
    """
    a = kurt / 8.0 - skew * skew / 6.0
    b = skew / 3.0
    c = 1.0 - kurt / 8.0 + 5.0 * skew * skew / 36.0
    if a == 0.0:
        return b == 0.0 and c > 0.0
    return a > 0.0 and b * b - 4.0 * a * c < 0.0


def _historical(r: FloatArray, method: VarMethod, confidence_level: float, alpha: float, low: bool,
                note: str | None) -> TailRisk:
    q = float(np.quantile(r, alpha))
    tail = r[r <= q]
    return TailRisk(method, "historical", confidence_level, -q, -float(tail.mean()), low, note)


def _finite(m: RiskMetrics) -> RiskMetrics:
    """A last guard: any non-finite number becomes None with a reason (JSON has no inf or NaN)."""
    reasons = dict(m.null_reasons)
    values = {}
    for name in ("total_return_pct", "skewness", "excess_kurtosis", "volatility_annual", "sharpe_ratio",
                 "sortino_ratio", "cagr", "calmar_ratio"):
        value = getattr(m, name)
        if value is not None and not math.isfinite(value):
            reasons[name] = "not a finite number"
            value = None
        values[name] = value
    if any(not (math.isfinite(t.var_pct) and math.isfinite(t.cvar_pct)) for t in m.tail):
        raise ValueError("tail risk is not finite")  # finite returns give finite quantiles and moments
    return RiskMetrics(m.observations, m.periods_per_year, m.risk_free_rate_per_bar, m.min_acceptable_return_per_bar,
                       values["total_return_pct"], m.mean_return_per_bar, m.std_return_per_bar, values["skewness"],
                       values["excess_kurtosis"], values["volatility_annual"], values["sharpe_ratio"],
                       values["sortino_ratio"], m.max_drawdown_pct, values["cagr"], values["calmar_ratio"], m.tail,
                       reasons)
