"""quantdesk's own minute bars: the generator's coarse path for every challenge asset, funding from the funding model.

Per asset, a SimulationManifest (the asset's price and volatility, a seed derived from the root seed
and the asset name) drives the market engine's deterministic pre-pass (`CoarseProcess`): log-SV
volatility factors, Student-t block returns and jumps, one block per minute. A minute's open and
close are the engine's log price at the block's start and end; its high and low are drawn from the
exact law of a Brownian bridge's extremes with the block's own variance; its volume follows the
engine's trade-arrival model (rate times (sigma_t / sigma)^elasticity times the mean trade size,
with Poisson count noise). Assets share a market factor (correlation `market_correlation` with BTC's
returns), as crypto assets do. Funding for the FUNDING-XSEC perpetuals is `simulate_funding_regime`
(binance rules, 8-hour periods) on a per-asset premium process, and a rate is visible from the end
of its period. Same seed, same days: identical numbers.

A planted signal (`planted_reversal`) can be added for tests and demonstrations: each minute's return
is pulled by -strength/60 times the sum of the previous 60 minutes' returns (a 60-minute reversal).
The dataset's `details` record it; `data_source` stays `synthetic`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest
from quantdesk.tools.agents.data.market import MINUTE_MS, FloatArray, MarketData, ProgressFn
from quantdesk.tools.market.blocks import SEGMENT_BLOCKS
from quantdesk.tools.market.coarse import CoarseProcess
from quantdesk.tools.market.params import ModelParams, derive_params

DEFAULT_START_MS = 1_735_689_600_000
"""2025-01-01T00:00Z: synthetic history starts here, so a dataset depends on its seed and length only."""
DEFAULT_SEED = 123

# (price in USD, annualised volatility): round figures of the kind these assets trade at
ASSET_PROFILES: dict[str, tuple[float, float]] = {
    "BTC": (95_000.0, 0.55), "ETH": (3_300.0, 0.70), "XRP": (2.3, 0.90), "SOL": (190.0, 0.85),
    "TRX": (0.25, 0.60), "DOGE": (0.32, 1.00), "ADA": (0.9, 0.95), "BCH": (450.0, 0.80), "XMR": (200.0, 0.70),
    "LINK": (22.0, 0.95), "XLM": (0.4, 0.95), "ZEC": (60.0, 1.05), "SUI": (4.2, 1.20), "LTC": (110.0, 0.80),
    "AVAX": (38.0, 1.00), "HBAR": (0.28, 1.05), "SHIB": (0.000022, 1.05), "TON": (5.5, 0.85),
    "CRO": (0.15, 0.95), "DOT": (7.0, 0.95), "UNI": (13.0, 1.05), "MNT": (1.0, 1.00), "TAO": (450.0, 1.20),
    "AAVE": (320.0, 1.05), "PEPE": (0.000018, 1.30), "NEAR": (5.2, 1.05), "ICP": (10.0, 1.05),
    "ETC": (27.0, 0.90), "ONDO": (1.4, 1.20),
}
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
MAX_FUNDING_PERIODS_PER_CALL = 1000


@dataclass(frozen=True, slots=True)
class PlantedReversal:
    strength: float
    lookback_minutes: int = 60
    assets: tuple[str, ...] = ()
    """Empty: every asset."""


def asset_seed(root_seed: int, asset: str, stream: int = 0) -> int:
    sequence = np.random.SeedSequence(root_seed, spawn_key=(zlib.crc32(asset.encode()), stream))
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(11))  # JSON-safe: 53 bits


def asset_manifest(asset: str, root_seed: int) -> SimulationManifest:
    price, vol = ASSET_PROFILES.get(asset, (100.0, 0.9))
    tick = 10.0 ** (math.floor(math.log10(price)) - 4)
    return SimulationManifest(symbol=asset, seed=asset_seed(root_seed, asset), initial_price=price,
                              tick_size=tick, volatility_annual=vol, start_time_ms=DEFAULT_START_MS,
                              trade_rate_per_second=5.0, jump_intensity_per_hour=0.3, jump_std_bps=30.0)


@dataclass(frozen=True, slots=True)
class _Path:
    log_open: FloatArray
    log_return: FloatArray
    block_variance: FloatArray
    relative_vol: FloatArray


def _coarse_path(params: ModelParams, minutes: int) -> _Path:
    process = CoarseProcess(params)
    segments = -(-minutes // SEGMENT_BLOCKS)
    log_price, variance, rel = [], [], []
    for _ in range(segments):
        blocks = process.next_segment()
        relative_var = np.exp(2.0 * blocks.log_vol_ratio)
        log_price.append(blocks.log_price)
        variance.append(params.var_per_second * blocks.mix * relative_var.sum(axis=1))
        rel.append(np.sqrt(relative_var.mean(axis=1)))
    starts = np.concatenate(log_price)
    # the price at the end of the last block: one more segment's first block start
    end = process.next_segment().log_price[0]
    path = np.concatenate([starts, [end]])[: minutes + 1]
    returns = np.diff(path)
    return _Path(path[:-1], returns, np.concatenate(variance)[:minutes], np.concatenate(rel)[:minutes])


class SyntheticSource:
    """Minute bars for any of the challenge assets from seeded synthetic markets (see the module docstring)."""

    name = "synthetic"

    def __init__(self, seed: int = DEFAULT_SEED, *, market_correlation: float = 0.5,
                 planted: PlantedReversal | None = None, start_ms: int = DEFAULT_START_MS) -> None:
        self.seed = seed
        self.market_correlation = market_correlation
        self.planted = planted
        self.start_ms = start_ms

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data_source": "synthetic", "seed": self.seed, "model_version": MODEL_VERSION,
                               "market_correlation": self.market_correlation, "start_ms": self.start_ms,
                               "funding_model": "simulate_funding_regime(binance), 8 h periods"}
        if self.planted is not None:
            out["planted_reversal"] = {"strength": self.planted.strength,
                                       "lookback_minutes": self.planted.lookback_minutes,
                                       "assets": list(self.planted.assets) or "all"}
        return out

    def fetch(self, assets: Sequence[str], days_back: int, progress: ProgressFn) -> MarketData:
        return self.generate(assets, days_back * 1440, progress)

    def generate(self, assets: Sequence[str], minutes: int, progress: ProgressFn | None = None) -> MarketData:
        from quantdesk.tools.agents.challenges import FUNDING_ASSETS

        assets = tuple(dict.fromkeys(assets))
        total = len(assets) + 1
        paths: dict[str, _Path] = {}
        params_by_asset: dict[str, ModelParams] = {}
        for step, asset in enumerate(assets, start=1):
            params = derive_params(asset_manifest(asset, self.seed))
            params_by_asset[asset] = params
            paths[asset] = _coarse_path(params, minutes)
            if progress:
                progress(step, total, f"Generating minute bars: {step}/{len(assets)} assets")
        returns = np.column_stack([paths[a].log_return for a in assets])
        variance = np.column_stack([paths[a].block_variance for a in assets])
        returns = self._correlate(assets, returns, params_by_asset)
        if self.planted is not None:
            returns = self._plant(assets, returns)
        ohlcv = np.empty((minutes, len(assets), 5))
        for i, asset in enumerate(assets):
            ohlcv[:, i] = self._bars(asset, paths[asset], returns[:, i], variance[:, i], params_by_asset[asset])
        timestamps = self.start_ms + MINUTE_MS * np.arange(minutes, dtype=np.int64)
        funding = np.full((minutes, len(assets)), np.nan)
        for i, asset in enumerate(assets):
            if asset in FUNDING_ASSETS:
                funding[:, i] = self._funding(asset, float(ohlcv[0, i, 0]), timestamps)
        if progress:
            progress(total, total, "Generated")
        return MarketData(assets, timestamps, ohlcv, funding, "synthetic", self.describe())

    def _correlate(self, assets: tuple[str, ...], returns: FloatArray,
                   params: dict[str, ModelParams]) -> FloatArray:
        """Mix a common factor (BTC's standardised return) into every other asset, keeping each one's variance."""
        rho = self.market_correlation
        if rho == 0.0 or "BTC" not in assets:
            return returns
        btc = assets.index("BTC")
        sd = {a: math.sqrt(params[a].var_per_second * 60.0) for a in assets}
        factor = returns[:, btc] / sd["BTC"]
        out = returns.copy()
        for i, asset in enumerate(assets):
            if i != btc:
                out[:, i] = rho * sd[asset] * factor + math.sqrt(1.0 - rho * rho) * returns[:, i]
        return out

    def _plant(self, assets: tuple[str, ...], returns: FloatArray) -> FloatArray:
        assert self.planted is not None
        lookback, pull = self.planted.lookback_minutes, self.planted.strength / self.planted.lookback_minutes
        columns = [i for i, a in enumerate(assets) if not self.planted.assets or a in self.planted.assets]
        out = returns.copy()
        window = np.zeros(len(columns))
        for t in range(returns.shape[0]):
            out[t, columns] = returns[t, columns] - pull * window
            window += out[t, columns]
            if t >= lookback:
                window -= out[t - lookback, columns]
        return out

    def _bars(self, asset: str, path: _Path, returns: FloatArray, variance: FloatArray,
              params: ModelParams) -> FloatArray:
        rng = np.random.default_rng(np.random.SeedSequence(asset_seed(self.seed, asset, stream=1)))
        log_close = path.log_open[0] + np.cumsum(returns)
        log_open = np.concatenate([[path.log_open[0]], log_close[:-1]])
        # extremes of a Brownian bridge from 0 to r with variance v: (r +/- sqrt(r^2 - 2 v log U)) / 2
        u_high, u_low = rng.random(returns.size), rng.random(returns.size)
        high = (returns + np.sqrt(returns**2 - 2.0 * variance * np.log1p(-u_high))) / 2.0
        low = (returns - np.sqrt(returns**2 - 2.0 * variance * np.log1p(-u_low))) / 2.0
        manifest = asset_manifest(asset, self.seed)
        mean_size = manifest.trade_size_median * math.exp(manifest.trade_size_log_sd**2 / 2.0) * 1000.0 / math.sqrt(
            manifest.initial_price / 100.0)
        expected = manifest.trade_rate_per_second * 60.0 * path.relative_vol ** params.trade_vol_elasticity
        volume = rng.poisson(expected) * mean_size
        out = np.empty((returns.size, 5))
        out[:, 0] = np.exp(log_open)
        out[:, 1] = np.exp(log_open + np.maximum(high, np.maximum(returns, 0.0)))
        out[:, 2] = np.exp(log_open + np.minimum(low, np.minimum(returns, 0.0)))
        out[:, 3] = np.exp(log_close)
        out[:, 4] = volume
        return out

    def _funding(self, asset: str, price: float, timestamps: np.ndarray[Any, np.dtype[np.int64]]) -> FloatArray:
        """Settled binance funding per minute: a period's rate is visible from its end on."""
        from quantdesk.tools.funding.engine import simulate_funding_regime
        from quantdesk.tools.funding.models import FundingRegimeRequest

        rng = np.random.default_rng(np.random.SeedSequence(asset_seed(self.seed, asset, stream=2)))
        long_run_bps = float(rng.uniform(-8.0, 14.0))
        first = int(timestamps[0]) - FUNDING_INTERVAL_MS
        end = int(timestamps[-1]) + MINUTE_MS
        periods = -(-(end - first) // FUNDING_INTERVAL_MS)
        ends: list[int] = []
        rates: list[float] = []
        premium = long_run_bps * 1e-4
        chunk = 0
        while len(rates) < periods:
            count = min(MAX_FUNDING_PERIODS_PER_CALL, periods - len(rates))
            result = simulate_funding_regime(FundingRegimeRequest(
                exchange="binance", spot_price=price, mark_price=price * (1.0 + premium), num_periods=count,
                seed=asset_seed(self.seed, asset, stream=10 + chunk), start_ts_ms=first + len(rates) *
                FUNDING_INTERVAL_MS, premium_mean_reversion_per_hour=0.25,
                premium_long_run_mean_bps=long_run_bps, premium_volatility_bps=6.0))
            for period in result.periods:
                ends.append(period.next_funding_time)
                rates.append(period.funding_rate)
            premium = result.periods[-1].premium
            chunk += 1
        settled_at = np.asarray(ends, dtype=np.int64)
        # the rate visible at the close of minute t: the last period that ended at or before it
        index = np.searchsorted(settled_at, timestamps + MINUTE_MS, side="right") - 1
        values = np.asarray(rates)
        out: FloatArray = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
        return out
