"""Named, documented starting points for SimulationManifest: each one a realistic market to simulate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantdesk.schemas.manifest import SimulationManifest


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    title: str
    description: str
    overrides: dict[str, Any]

    def manifest(self) -> SimulationManifest:
        return SimulationManifest.model_validate(self.overrides)


PRESETS: tuple[Preset, ...] = (
    Preset(
        "default", "Defaults",
        "The manifest's own defaults: a liquid BTC perpetual at 50,000 with 60% annualized volatility, "
        "four-factor log-SV (half-lives 1 min to 2 days) fitted to real BTC minute data, BTC's hour-of-day and "
        "weekday seasonality, volume that follows each minute's move, Merton jumps, Hawkes trades, a one-tick "
        "spread and about 2 BTC at the touch of a 10-level book.",
        {},
    ),
    Preset(
        "btc_calm", "Calm BTC perpetual",
        "A quiet BTC-USDT perpetual at 95,000: 35% volatility, rare small jumps, one-tick spreads "
        "($0.1 tick, about 0.01 bps), 20 trades/s, a deep 20-level book refreshed every 100 ms.",
        {"symbol": "BTC-USDT-PERP", "initial_price": 95_000.0, "tick_size": 0.1, "lot_size": 0.001,
         "volatility_annual": 0.35, "jump_intensity_per_hour": 0.1, "jump_std_bps": 15.0,
         "base_spread_bps": 0.012, "spread_vol_elasticity": 0.3, "trade_rate_per_second": 20.0,
         "hawkes_branching_ratio": 0.7, "trade_size_median": 0.005, "num_levels": 20,
         "depth_level_size": 2.0},
    ),
    Preset(
        "btc_volatile", "Volatile BTC perpetual",
        "A stressed BTC-USDT perpetual: 100% volatility with stronger volatility clustering, fatter "
        "tails (t with 3 degrees of freedom), frequent 60 bps jumps, busier tape (60 trades/s) and "
        "spreads that widen sharply with volatility.",
        {"symbol": "BTC-USDT-PERP", "initial_price": 90_000.0, "tick_size": 0.1, "lot_size": 0.001,
         "volatility_annual": 1.0, "vol_factor_stdevs": [0.30, 0.42, 0.42, 0.40], "return_tail_dof": 3.0,
         "jump_intensity_per_hour": 1.0, "jump_std_bps": 60.0, "base_spread_bps": 0.05,
         "spread_vol_elasticity": 1.0, "trade_rate_per_second": 60.0, "hawkes_branching_ratio": 0.8,
         "trade_rate_vol_elasticity": 1.5, "trade_size_median": 0.005, "num_levels": 20,
         "depth_level_size": 1.0},
    ),
    Preset(
        "eth", "ETH perpetual",
        "An ETH-USDT perpetual at 3,300 with 75% volatility, $0.01 tick, 15 trades/s and a "
        "20-level book with about 20 ETH per level.",
        {"symbol": "ETH-USDT-PERP", "initial_price": 3_300.0, "tick_size": 0.01, "lot_size": 0.001,
         "volatility_annual": 0.75, "jump_intensity_per_hour": 0.3, "jump_std_bps": 30.0,
         "base_spread_bps": 0.05, "trade_rate_per_second": 15.0, "trade_size_median": 0.05,
         "num_levels": 20, "depth_level_size": 20.0},
    ),
    Preset(
        "smallcap_wide", "Small-cap token, wide spreads",
        "A thin small-cap token around $0.85: 160% volatility, 25 bps typical spread that is noisy and "
        "very sensitive to volatility, under one trade a second, 150 bps jumps and a shallow book "
        "updated every 500 ms.",
        {"symbol": "SMALL-USDT", "initial_price": 0.85, "tick_size": 0.0001, "lot_size": 1.0,
         "volatility_annual": 1.6, "return_tail_dof": 3.0, "jump_intensity_per_hour": 0.5,
         "jump_std_bps": 150.0, "base_spread_bps": 25.0, "spread_noise_sd": 0.5,
         "spread_vol_elasticity": 1.2, "trade_rate_per_second": 0.8, "hawkes_branching_ratio": 0.5,
         "trade_size_median": 150.0, "trade_size_log_sd": 1.3, "num_levels": 10,
         "book_interval_ms": 500, "depth_level_size": 2500.0},
    ),
    Preset(
        "btc_thin_venue", "BTC on a thin venue",
        "BTC at 50,000 on a thin venue: spreads around 0.75 bps (dozens of ticks), under 1 BTC per level, "
        "small trades (about 5 BTC a minute) whose arrivals follow volatility only, no seasonality.",
        {"symbol": "BTC-USD", "base_spread_bps": 0.75, "depth_level_size": 1.0, "trade_size_median": 0.01,
         "trade_rate_vol_elasticity": 1.0, "volume_shock_weight": 0.0, "seasonality": False},
    ),
    Preset(
        "flash_crash_day", "Flash-crash day",
        "A full day of BTC with violent downside: rare Kou jumps skewed down (about one a day; "
        "80% fall, 300 bps mean), strong mean reversion toward the opening price so crashes "
        "largely recover within the hour, a leverage effect, and spreads and trade arrivals that "
        "explode with volatility. 120% total volatility; jumps carry about 45% of the variance.",
        {"symbol": "BTC-USDT-PERP", "initial_price": 60_000.0, "tick_size": 0.1, "lot_size": 0.001,
         "duration_seconds": 86_400, "volatility_annual": 1.2, "jump_model": "kou",
         "jump_intensity_per_hour": 0.05, "kou_up_probability": 0.2, "kou_up_mean_bps": 50.0,
         "kou_down_mean_bps": 300.0, "mean_reversion_per_day": 24.0, "leverage_correlation": -0.3,
         "base_spread_bps": 0.05, "spread_vol_elasticity": 1.5, "trade_rate_per_second": 25.0,
         "trade_rate_vol_elasticity": 1.5, "trade_size_median": 0.005, "num_levels": 20},
    ),
)

PRESETS_BY_NAME: dict[str, Preset] = {p.name: p for p in PRESETS}
