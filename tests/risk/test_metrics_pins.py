"""Every risk metric pinned on fixed seeded equity series against quantstats 0.0.86 and empyrical-reloaded 0.7.1.

The expected numbers were computed once with those libraries (in a separate virtual environment: they are
not dependencies) on the returns E_t / E_{t-1} - 1 of the series below, as a pandas Series with a daily or
hourly index, with `periods=P` (quantstats) and `annualization=P` (empyrical); Cornish-Fisher, which neither
library has, with scipy (moment skewness and excess kurtosis, `scipy.integrate.quad` of the Cornish-Fisher
quantile for the tail mean). Where the libraries follow another convention than spec/desk.md §3.3 the pin is
the convention's, and the difference is stated beside it:

- VaR and CVaR are losses, positive here; both libraries return them negative (the sign is flipped).
- Historical VaR is `-quantile(r, alpha)` with linear interpolation: empyrical's `value_at_risk`
  (`np.percentile`). quantstats has only the parametric VaR.
- Historical CVaR is `-mean(r[r <= quantile])`: quantstats `cvar(method="historical")`. empyrical's
  `conditional_value_at_risk` averages the lowest floor((N-1) alpha) + 1 returns instead; it agrees on these
  two series and is recorded beside the pin, but the pin is the convention's.
- Max drawdown is positive (`max_drawdown_pct`); both libraries return it negative.
- The risk-free rate is annual and de-annualized geometrically (quantstats' `rf`); empyrical takes a per-period
  rate, so it was given (1 + rf)^(1/P) - 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantdesk.server.errors import InvalidArgument
from quantdesk.tools.risk.metrics import (
    compute_metrics,
    cornish_fisher_is_monotone,
    not_enough_data,
    per_period_rate,
)

TOLERANCE = 1e-9


def seeded_equity(seed: int, n: int, scale: float, df: int) -> np.ndarray:
    g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    r0 = g.standard_t(df, size=n) * scale + 0.0005
    return 100_000.0 * np.concatenate([[1.0], np.cumprod(1.0 + r0)])


SERIES = {
    # 365 daily returns, Student-t(5) x 2 %, P = 365
    "daily": (seeded_equity(20240101, 365, 0.02, 5), 365.0),
    # 90 days of hourly returns, Student-t(8) x 0.4 %, P = 8760
    "hourly": (seeded_equity(7, 24 * 90, 0.004, 8), 8760.0),
}

EXPECTED = {
    "daily": {
        "volatility": (0.5066274351379556, 0.5066274351379556),  # (quantstats, empyrical)
        "sharpe_rf0": (2.3633288264034658, 2.3633288264034644),
        "sharpe_rf5": (2.2670185560503815, 2.2670185560503806),
        "sortino_rf0": (3.8721673511569934, 3.872167351156991),
        "sortino_rf5": (3.6992437594828695, 3.699243759482869),
        "cagr": (1.9134959115580519, 1.9134959115580519),
        "max_drawdown": (-0.37023242824647995, -0.37023242824647995),
        "calmar": (5.168363885953701, 5.168363885953701),
        "var_parametric": {0.95: -0.04033803115335524, 0.99: -0.05840995825368844},  # quantstats value_at_risk
        "var_historical": {0.95: -0.03867703670739327, 0.99: -0.0594051034012085},  # empyrical value_at_risk
        "cvar_parametric": {0.95: -0.05141885932096541, 0.99: -0.06739604718009505},  # quantstats, parametric
        "cvar_historical": {0.95: -0.053851374716549716, 0.99: -0.07143159047553332},  # quantstats, historical
        "cvar_empyrical": {0.95: -0.053851374716549716, 0.99: -0.07143159047553332},
        "var_cornish_fisher": {0.95: 0.03311986371417192, 0.99: 0.06672703423111875},  # scipy, loss positive
        "cvar_cornish_fisher": {0.95: 0.054664745660694875, 0.99: 0.0941521299783632},
        "skewness": 0.6385006953559604,
        "excess_kurtosis": 4.021544821875385,
    },
    "hourly": {
        "volatility": (0.4267514888877087, 0.4267514888877087),
        "sharpe_rf0": (6.2678901437605505, 6.2678901437605505),
        "sharpe_rf5": (6.153560606988541, 6.153560606988541),
        "sortino_rf0": (9.314833688058664, 9.314833688058664),
        "sortino_rf5": (9.136221895450113, 9.136221895450113),
        "cagr": (12.242793812923475, 12.242793812923475),
        "max_drawdown": (-0.15013724698668718, -0.15013724698668715),
        "calmar": (81.54401428453697, 81.54401428453698),
        "var_parametric": {0.95: -0.007194463729421776, 0.99: -0.010301778045613627},
        "var_historical": {0.95: -0.007376962442630813, 0.99: -0.0111835345431789},
        "cvar_parametric": {0.95: -0.009099717984229067, 0.99: -0.01184685968591537},
        "cvar_historical": {0.95: -0.009753078106085266, 0.99: -0.013027278432041973},
        "cvar_empyrical": {0.95: -0.009753078106085267, 0.99: -0.013027278432041973},
        "var_cornish_fisher": {0.95: 0.007159199063613937, 0.99: 0.011050422972963103},
        "cvar_cornish_fisher": {0.95: 0.009577881754997294, 0.99: 0.013372384128024618},
        "skewness": -0.019808411777455286,
        "excess_kurtosis": 0.6431102431585569,
    },
}


def close(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) <= TOLERANCE * max(1.0, abs(b))


@pytest.mark.parametrize("name", list(SERIES))
def test_every_metric_agrees_with_quantstats_and_empyrical_to_1e_9(name):
    equity, periods = SERIES[name]
    want = EXPECTED[name]
    m0 = compute_metrics(equity, periods=periods, confidence_levels=(0.95, 0.99))
    m5 = compute_metrics(equity, periods=periods, risk_free_rate_annual=0.05, confidence_levels=(0.95, 0.99))
    assert m0.observations == len(equity) - 1 and m0.periods_per_year == periods
    for got, key in ((m0.volatility_annual, "volatility"), (m0.sharpe_ratio, "sharpe_rf0"),
                     (m5.sharpe_ratio, "sharpe_rf5"), (m0.sortino_ratio, "sortino_rf0"),
                     (m5.sortino_ratio, "sortino_rf5"), (m0.cagr, "cagr"), (m0.calmar_ratio, "calmar")):
        quantstats, empyrical = want[key]
        assert close(got, quantstats) and close(got, empyrical), (key, got, want[key])
    assert close(m0.max_drawdown_pct, -want["max_drawdown"][0]) and close(m0.max_drawdown_pct,
                                                                          -want["max_drawdown"][1])
    for level in (0.95, 0.99):
        historical = m0.tail_risk("historical", level)
        parametric = m0.tail_risk("parametric", level)
        cornish = m0.tail_risk("cornish_fisher", level)
        assert close(historical.var_pct, -want["var_historical"][level])
        assert close(historical.cvar_pct, -want["cvar_historical"][level])
        assert close(historical.cvar_pct, -want["cvar_empyrical"][level])
        assert close(parametric.var_pct, -want["var_parametric"][level])
        assert close(parametric.cvar_pct, -want["cvar_parametric"][level])
        assert cornish.method_used == "cornish_fisher"
        assert close(cornish.var_pct, want["var_cornish_fisher"][level])
        assert close(cornish.cvar_pct, want["cvar_cornish_fisher"][level])
        for tail in (historical, parametric, cornish):
            assert tail.cvar_pct >= tail.var_pct  # the same method family: CVaR is never below VaR
    assert close(m0.skewness, want["skewness"]) and close(m0.excess_kurtosis, want["excess_kurtosis"])
    assert m0.null_reasons == {}


def test_the_risk_free_rate_is_de_annualized_geometrically():
    assert per_period_rate(0.05, 365) == pytest.approx(1.05 ** (1 / 365) - 1, abs=1e-15)
    assert per_period_rate(0.05, 365) != pytest.approx(0.05 / 365, abs=1e-9)


def test_no_downside_gives_a_null_sortino_with_a_reason_never_inf():
    equity = 100.0 * np.cumprod([1.0, 1.01, 1.02, 1.005, 1.03])
    m = compute_metrics(equity, periods=365.0)
    assert m.sortino_ratio is None and "downside" in m.null_reasons["sortino_ratio"]
    assert m.calmar_ratio is None and "drawdown" in m.null_reasons["calmar_ratio"]
    assert m.max_drawdown_pct == 0.0
    assert m.sharpe_ratio is not None and math.isfinite(m.sharpe_ratio)


def test_a_flat_equity_gives_null_ratios_and_zero_risk():
    m = compute_metrics(np.full(10, 1000.0), periods=365.0)
    assert m.sharpe_ratio is None and m.sortino_ratio is None and m.skewness is None
    assert set(m.null_reasons) >= {"sharpe_ratio", "sortino_ratio", "calmar_ratio", "skewness"}
    assert m.volatility_annual == 0.0 and m.cagr == 0.0
    cornish = m.tail_risk("cornish_fisher", 0.95)
    assert cornish.method_used == "historical" and cornish.var_pct == 0.0 and cornish.note


def test_a_first_period_loss_counts_in_the_drawdown():
    equity = 100.0 * np.cumprod([1.0, 0.90, 1.05, 1.02])
    assert compute_metrics(equity, periods=365.0).max_drawdown_pct == pytest.approx(0.10, abs=1e-12)


def test_cornish_fisher_outside_its_domain_falls_back_to_historical_and_says_so():
    returns = np.r_[np.full(60, 0.001), -0.25, np.full(40, 0.002)]  # one crash: huge excess kurtosis
    equity = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    m = compute_metrics(equity, periods=365.0)
    assert m.excess_kurtosis is not None and m.excess_kurtosis > 8
    assert not cornish_fisher_is_monotone(m.skewness or 0.0, m.excess_kurtosis)
    cornish, historical = m.tail_risk("cornish_fisher", 0.95), m.tail_risk("historical", 0.95)
    assert cornish.method_used == "historical" and "domain" in (cornish.note or "")
    assert (cornish.var_pct, cornish.cvar_pct) == (historical.var_pct, historical.cvar_pct)


def test_the_cornish_fisher_domain_is_where_the_expansion_is_monotone():
    z = np.linspace(-8, 8, 4001)
    for skew, kurt in ((0.0, 0.0), (0.6, 4.0), (-0.5, 2.0), (0.5, 0.0), (0.0, 9.0), (1.5, 3.0)):
        z_cf = z + (z * z - 1) * skew / 6 + (z ** 3 - 3 * z) * kurt / 24 - (2 * z ** 3 - 5 * z) * skew ** 2 / 36
        assert cornish_fisher_is_monotone(skew, kurt) == bool(np.all(np.diff(z_cf) > 0)), (skew, kurt)


def test_a_short_window_that_overflows_cagr_gives_null_not_inf():
    equity = np.array([100.0, 200.0, 400.0])
    m = compute_metrics(equity, periods=8760.0)
    assert m.cagr is None and "overflow" in m.null_reasons["cagr"] and m.calmar_ratio is None


def test_few_observations_are_flagged_low_confidence():
    m = compute_metrics(100.0 * np.cumprod([1.0, 1.01, 0.99, 1.02, 0.98]), periods=365.0)
    assert m.tail_risk("historical", 0.95).low_confidence
    assert not compute_metrics(SERIES["daily"][0], periods=365.0).tail_risk("historical", 0.95).low_confidence


def test_not_enough_data_names_the_field_and_the_returns_needed():
    error = not_enough_data(1, "$.bar", "1d")
    assert isinstance(error, InvalidArgument)
    assert error.problems[0].path == "$.bar" and "at least 2" in error.problems[0].message
