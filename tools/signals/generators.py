"""Signal generators: each a small class behind one interface, each reading only what the desk knew at the cycle
(prices up to now, the funding model's running estimate, the regime detector's forward-filtered label).

Adding a generator is one class and one line in `GENERATORS`. A generator returns a draft (direction, strength,
confidence, details) or None when it has nothing to say; the loop gives it an id, a time and its layer's TTL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MarketContext:
    """What a generator may read about one symbol at one cycle."""

    symbol: str
    now_ms: int
    prices: FloatArray
    """The symbol's mid at each past cycle, oldest first, the current one last."""
    funding_rate: float | None = None
    """The funding model's estimate of the rate this interval will pay (perpetuals), per interval."""
    funding_periods_per_year: float | None = None
    regime: str | None = None
    regime_confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    direction: str
    strength: float
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    name: ClassVar[str]
    layer: ClassVar[str]
    description: ClassVar[str]

    def generate(self, ctx: MarketContext) -> Draft | None: ...


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


class Momentum:
    """Time-series momentum: the log return over `lookback` cycles in units of its own noise (z = r / (sigma *
    sqrt(lookback)), sigma the std of one-cycle log returns); fires at |z| >= threshold. Strength tanh(|z| / 2);
    confidence the share of one-cycle returns with the signal's sign (a steady trend is trusted more)."""

    name: ClassVar[str] = "momentum"
    layer: ClassVar[str] = "momentum"
    description: ClassVar[str] = "trend over 20 cycles in units of its noise"

    def __init__(self, lookback: int = 20, threshold: float = 0.5) -> None:
        self.lookback = lookback
        self.threshold = threshold

    def generate(self, ctx: MarketContext) -> Draft | None:
        p = ctx.prices
        if len(p) < self.lookback + 1:
            return None
        window = np.log(p[-self.lookback - 1:])
        steps = np.diff(window)
        total = float(window[-1] - window[0])
        sigma = max(float(steps.std(ddof=1)), 1e-6)  # a floor: a noiseless planted trend gives a finite z
        z = total / (sigma * math.sqrt(self.lookback))
        if abs(z) < self.threshold:
            return None
        sign = 1.0 if z > 0 else -1.0
        agreeing = float(np.mean(np.sign(steps) == sign))
        return Draft("long" if z > 0 else "short", _clip(math.tanh(abs(z) / 2.0)), _clip(agreeing),
                     {"z": z, "log_return": total, "lookback_cycles": self.lookback})


class MeanReversion:
    """Distance of the price from its `lookback`-cycle mean in standard deviations; fires at |z| >= threshold
    against the move. Strength (|z| - threshold) / 2 capped at 1; confidence falls as the window trends (1 -
    |corr(price, time)|): a z-score in a trend is momentum, not an overshoot."""

    name: ClassVar[str] = "mean_reversion"
    layer: ClassVar[str] = "mean_reversion"
    description: ClassVar[str] = "z-score against the 20-cycle mean, traded back toward it"

    def __init__(self, lookback: int = 20, threshold: float = 1.5) -> None:
        self.lookback = lookback
        self.threshold = threshold

    def generate(self, ctx: MarketContext) -> Draft | None:
        p = ctx.prices
        if len(p) < self.lookback:
            return None
        window = p[-self.lookback:]
        std = float(window.std(ddof=1))
        if std <= 0:
            return None
        z = (float(window[-1]) - float(window.mean())) / std
        if abs(z) < self.threshold:
            return None
        t = np.arange(self.lookback, dtype=np.float64)
        trend = float(np.corrcoef(t, window)[0, 1]) if std > 0 else 0.0
        return Draft("short" if z > 0 else "long", _clip((abs(z) - self.threshold) / 2.0 + 0.05),
                     _clip(1.0 - abs(trend)), {"z": z, "mean": float(window.mean()), "std": std,
                                               "trend_correlation": trend, "lookback_cycles": self.lookback})


class FundingCarry:
    """Perpetual funding carry from the desk's funding model (the premium samples of the running interval,
    averaged and capped the venue's way): when the annualized rate passes `threshold_annual`, be on the side
    that receives it (short when longs pay). Spot symbols have no funding: no signal."""

    name: ClassVar[str] = "funding_carry"
    layer: ClassVar[str] = "investor"
    description: ClassVar[str] = "receive funding when its annualized rate passes 15 %"

    def __init__(self, threshold_annual: float = 0.15, full_annual: float = 0.60) -> None:
        self.threshold = threshold_annual
        self.full = full_annual

    def generate(self, ctx: MarketContext) -> Draft | None:
        if ctx.funding_rate is None or not ctx.funding_periods_per_year:
            return None
        annual = ctx.funding_rate * ctx.funding_periods_per_year
        if abs(annual) < self.threshold:
            return None
        return Draft("short" if annual > 0 else "long", _clip(abs(annual) / self.full), 0.6,
                     {"funding_rate": ctx.funding_rate, "annualized_rate": annual})


class RegimeSignal:
    """The regime detector's forward-filtered label (tools/risk, HMM on the desk's bars): BULL long, BEAR and
    CRISIS short, strength from the label and confidence its probability. SIDEWAYS, HIGH_VOLATILITY and UNKNOWN
    (warming up) give no signal."""

    name: ClassVar[str] = "regime"
    layer: ClassVar[str] = "investor"
    description: ClassVar[str] = "direction of the tracked market regime"
    STRENGTH: ClassVar[dict[str, tuple[str, float]]] = {"BULL": ("long", 0.6), "BEAR": ("short", 0.6),
                                                        "CRISIS": ("short", 1.0)}

    def generate(self, ctx: MarketContext) -> Draft | None:
        if ctx.regime is None or ctx.regime not in self.STRENGTH:
            return None
        direction, strength = self.STRENGTH[ctx.regime]
        return Draft(direction, strength, _clip(ctx.regime_confidence or 0.0), {"regime": ctx.regime})


GENERATORS: dict[str, type[Generator]] = {
    Momentum.name: Momentum,
    MeanReversion.name: MeanReversion,
    FundingCarry.name: FundingCarry,
    RegimeSignal.name: RegimeSignal,
}
"""The registry: one line per generator."""

DEFAULT_WEIGHTS: dict[str, float] = {"momentum": 1.0, "mean_reversion": 0.5, "funding_carry": 0.5, "regime": 0.5}
