"""The MANTIS challenges quantdesk evaluates: what is predicted, in what layout, scored how, weighted how.

Weights are the subnet's current ones (MANTIS config.py): HITFIRST 1.25, not the model-iteration
tool's 2.5. Horizons are in minutes, one row of data per minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from quantdesk.server.errors import InvalidArgument, Problem

ChallengeType = Literal["binary", "hitfirst", "lbfgs", "breakout", "xsec_rank", "funding_xsec"]

BREAKOUT_ASSETS: tuple[str, ...] = (
    "BTC", "ETH", "XRP", "SOL", "TRX", "DOGE", "ADA", "BCH", "XMR", "LINK", "XLM", "ZEC", "SUI", "LTC", "AVAX",
    "HBAR", "SHIB", "TON", "CRO", "DOT", "UNI", "MNT", "TAO", "AAVE", "PEPE", "NEAR", "ICP", "ETC", "ONDO",
)
"""The 29 assets of MULTI-BREAKOUT and XSEC-RANK (the subnet's 33 less LEO, HYPE, BGB, SKY)."""
FUNDING_ASSETS: tuple[str, ...] = (
    "BTC", "ETH", "XRP", "SOL", "TRX", "DOGE", "ADA", "BCH", "LINK", "XLM", "SUI", "LTC", "AVAX", "HBAR",
    "DOT", "UNI", "AAVE", "NEAR", "ETC", "TAO",
)
"""The 20 perpetuals of FUNDING-XSEC: the liquid ones among the 29 that every funding venue lists."""


@dataclass(frozen=True, slots=True)
class MetricInfo:
    primary: str
    all: tuple[str, ...]
    direction: Literal["higher", "lower"]
    label: str
    no_skill: float
    """The primary metric's value for a strategy without skill (AUC 0.5, balanced accuracy 0.2, ...)."""

    def as_dict(self) -> dict[str, Any]:
        return {"primary": self.primary, "all": list(self.all), "direction": self.direction, "label": self.label}


@dataclass(frozen=True, slots=True)
class Challenge:
    name: str
    type: ChallengeType
    short: str
    desc: str
    asset: str
    """`ETH`, `BTC` or `Multi`, as the MANTIS listing shows it."""
    assets: tuple[str, ...]
    dim: int
    horizon_minutes: int
    weight: float
    metric: MetricInfo
    label_definition: str
    embedding_layout: str
    chunk_minutes: int
    """Rows per scoring window (MANTIS: 4000, LBFGS 6000)."""
    params: dict[str, float] = field(default_factory=dict)

    @property
    def purge_minutes(self) -> int:
        """Rows whose label interval reaches past a boundary: a label at t needs data up to t + horizon."""
        return self.horizon_minutes if self.type != "breakout" else int(self.params["max_pending_minutes"])

    def listing(self) -> dict[str, Any]:
        """The `GET /api/challenges` entry, plus quantdesk's definitions."""
        return {
            "type": self.type, "short": self.short, "desc": self.desc, "asset": self.asset,
            "metric": self.metric.label, "metric_info": self.metric.as_dict(),
            "assets": list(self.assets), "dim": self.dim, "horizon_minutes": self.horizon_minutes,
            "weight": self.weight, "label_definition": self.label_definition,
            "embedding_layout": self.embedding_layout, "no_skill_value": self.metric.no_skill,
        }


AUC = MetricInfo("mean_auc", ("mean_auc", "median_auc", "pooled_auc", "frac_windows_above_half"), "higher", "AUC",
                 0.5)
SPEARMAN = MetricInfo("mean_spearman", ("mean_spearman", "median_spearman"), "higher", "Spearman", 0.0)

CHALLENGES: dict[str, Challenge] = {c.name: c for c in (
    Challenge(
        "ETH-1H-BINARY", "binary", "ETH 1h direction", "Predict whether ETH goes up or down in the next hour",
        "ETH", ("ETH",), 2, 60, 1.0, AUC,
        "y[t] = 1 when close[t+60] > close[t] (ties are 0); scored on every minute.",
        "[p_up, p_down]: column 0 is the score (AUC against y), probabilities in [0, 1].", 4000),
    Challenge(
        "ETH-HITFIRST-100M", "hitfirst", "ETH hit-first", "Predict which barrier ETH hits first within 100 minutes",
        "ETH", ("ETH",), 3, 100, 1.25,
        MetricInfo("direct_log_loss", ("direct_log_loss", "up_auc", "dn_auc"), "lower", "Log Loss",
                   1.0986122886681098),
        "Barriers at +/- sigma, sigma the rolling std (7200 rows) of 100-minute log returns; y = 0 when the up "
        "barrier is hit first within 100 minutes, 1 when the down barrier is, 2 when neither (or both at once).",
        "[p_up_first, p_down_first, p_neither], normalised to sum to 1.", 4000, {"vol_window": 7200}),
    Challenge(
        "ETH-LBFGS", "lbfgs", "ETH bucket forecast", "Forecast ETH return distribution into z-score buckets",
        "ETH", ("ETH",), 17, 60, 3.5,
        MetricInfo("lbfgs_skill", ("lbfgs_skill", "mean_balanced_accuracy", "mean_lift", "q_mean_auc"), "higher",
                   "LBFGS skill", 0.0),
        "z = 60-minute log return / sigma (causal rolling std, 3600 rows); buckets z <= -2, (-2, -1), [-1, 1], "
        "(1, 2), >= 2. Q-path: given the realised bucket c in {0, 1, 3, 4}, did the path within [t, t+60] move "
        "against it by 0.5, 1 or 2 sigma_60 (sigma_60 = std of the last 60 one-minute log returns)?",
        "17 values: p[0:5] bucket probabilities, then Q(c) for c = 0, 1, 3, 4 at thresholds 0.5, 1, 2 sigma.",
        6000, {"vol_window": 3600}),
    Challenge(
        "BTC-LBFGS-6H", "lbfgs", "BTC 6h bucket forecast",
        "Forecast BTC 6-hour return distribution into z-score buckets",
        "BTC", ("BTC",), 17, 360, 2.875,
        MetricInfo("lbfgs_skill", ("lbfgs_skill", "mean_balanced_accuracy", "mean_lift", "q_mean_auc"), "higher",
                   "LBFGS skill", 0.0),
        "As ETH-LBFGS with a 360-minute horizon.",
        "17 values: p[0:5] bucket probabilities, then Q(c) for c = 0, 1, 3, 4 at thresholds 0.5, 1, 2 sigma.",
        6000, {"vol_window": 3600}),
    Challenge(
        "MULTI-BREAKOUT", "breakout", "Multi-asset breakout",
        "Predict range breakout continuation vs reversal across assets", "Multi", BREAKOUT_ASSETS,
        2 * len(BREAKOUT_ASSETS), 0, 5.0, AUC,
        "An event starts when close leaves the range of the previous 5760 minutes (range at least 1 % of price); "
        "it resolves as continuation (1) when price moves a further 25 % of the range width in the breakout "
        "direction, reversal (0) when it moves 25 % back, or lapses after 43200 minutes.",
        "2 per asset in the listed order: [cont_prob, rev_prob]; column 2 * asset_index is the score.",
        0, {"range_lookback_minutes": 5760, "barrier_pct": 25.0, "min_range_pct": 1.0,
            "max_pending_minutes": 43200}),
    Challenge(
        "XSEC-RANK", "xsec_rank", "Cross-section rank",
        "Rank which assets will outperform the cross-sectional median", "Multi", BREAKOUT_ASSETS,
        len(BREAKOUT_ASSETS), 240, 3.0, SPEARMAN,
        "Forward 240-minute return per asset; the score is the Spearman correlation, across assets, between the "
        "embedding and the forward returns, per minute.",
        "One score per asset in the listed order; higher = expected to outperform the median.", 4000),
    Challenge(
        "FUNDING-XSEC", "funding_xsec", "Funding cross-section",
        "Rank which perpetuals' funding rates will rise most over the next 8 hours", "Multi", FUNDING_ASSETS,
        len(FUNDING_ASSETS), 480, 4.0, SPEARMAN,
        "Forward funding change f[t+480] - f[t] per asset, f the latest settled funding rate visible at t; the "
        "score is the Spearman correlation across assets per minute.",
        "One score per asset in the listed order; higher = funding expected to rise more.", 4000),
)}


def get_challenge(name: str, field_path: str = "$.challenge") -> Challenge:
    try:
        return CHALLENGES[name]
    except KeyError:
        raise InvalidArgument.from_problems([Problem(field_path, f"unknown challenge {name!r}; known: "
                                                                 f"{', '.join(CHALLENGES)}")]) from None


def all_assets() -> tuple[str, ...]:
    """Every asset any challenge needs, BTC and ETH first."""
    return tuple(dict.fromkeys((*BREAKOUT_ASSETS, *FUNDING_ASSETS)))
