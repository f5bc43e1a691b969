"""Strategy profiles: named sets of risk parameters. Per-trade risk, stop and take-profit multiples, leverage
cap and Kelly fraction are the analytics' sizing profiles (tools/risk/sizing.py PROFILES, spec/desk.md §4);
the position cap, daily loss limit and allowed signal types are the strategy's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantdesk.tools.risk.sizing import PROFILES as SIZING_PROFILES


@dataclass(frozen=True, slots=True)
class StrategyProfile:
    name: str
    max_position_fraction: float
    """A position's notional at most this fraction of equity."""
    daily_loss_limit_pct: float
    """At this daily loss the loop opens nothing new (spec/desk.md §4 daily loss halt); exits still go."""
    allowed_signal_types: tuple[str, ...]
    entry_threshold: float
    """|combined score| needed to open a position."""

    def describe(self) -> dict[str, Any]:
        sizing = SIZING_PROFILES[self.name]
        return {"profile": self.name, "risk_per_trade_pct": sizing.risk_per_trade_pct,
                "stop_atr_multiple": sizing.stop_atr_multiple,
                "take_profit_r_multiple": sizing.take_profit_r_multiple, "max_leverage": sizing.max_leverage,
                "kelly_fraction": sizing.kelly_fraction, "max_position_fraction": self.max_position_fraction,
                "daily_loss_limit_pct": self.daily_loss_limit_pct,
                "allowed_signal_types": list(self.allowed_signal_types), "entry_threshold": self.entry_threshold}


PROFILES: dict[str, StrategyProfile] = {
    # conservative leaves mean reversion out: fading a move is the riskiest of the four
    "conservative": StrategyProfile("conservative", 0.25, 0.02, ("momentum", "funding_carry", "regime"), 0.4),
    "balanced": StrategyProfile("balanced", 0.50, 0.03, ("momentum", "mean_reversion", "funding_carry", "regime"),
                                0.3),
    "aggressive": StrategyProfile("aggressive", 1.00, 0.05,
                                  ("momentum", "mean_reversion", "funding_carry", "regime"), 0.2),
}
DEFAULT_PROFILE = "balanced"
