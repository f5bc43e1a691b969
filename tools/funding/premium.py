"""The premium index: a seeded Ornstein-Uhlenbeck process with optional jumps, and venue averaging.

The process is advanced one funding period at a time at the venue's sampling cadence, so a
period's samples are exactly what the venue would average. It uses the exact OU transition
(not Euler), which stays stable for any mean-reversion speed and cadence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantdesk.tools.venues.models import Averaging

FloatArray = NDArray[np.float64]

# Numerical guard, not a venue rule: extreme jump settings could push the premium below -100 %
# (a negative perp price), so samples are held within the +/-50 % that inputs are held to.
MAX_ABS_PREMIUM_SAMPLE = 0.5


@dataclass(frozen=True, slots=True)
class PremiumDynamics:
    """OU parameters as fractions of spot and per-hour rates."""

    initial: float
    long_run_mean: float
    mean_reversion_per_hour: float
    volatility_per_sqrt_hour: float
    jump_intensity_per_hour: float = 0.0
    jump_mean: float = 0.0
    jump_std: float = 0.0


class PremiumProcess:
    """Premium path state; `advance(n)` returns the next n samples, one per cadence step."""

    def __init__(self, dynamics: PremiumDynamics, step_seconds: float, seed: int) -> None:
        # Separate streams for diffusion and jumps: switching jumps on leaves the diffusion path unchanged.
        diffusion_seed, jump_seed = np.random.SeedSequence(seed).spawn(2)
        self._diffusion = np.random.default_rng(diffusion_seed)
        self._jumps = np.random.default_rng(jump_seed)
        self._dynamics = dynamics
        self._level = dynamics.initial
        step_hours = step_seconds / 3600.0
        kappa = dynamics.mean_reversion_per_hour
        self._step_hours = step_hours
        self._decay = math.exp(-kappa * step_hours)
        if kappa > 0:
            variance_per_unit = -math.expm1(-2 * kappa * step_hours) / (2 * kappa)
            self._noise_sd = dynamics.volatility_per_sqrt_hour * math.sqrt(variance_per_unit)
        else:
            self._noise_sd = dynamics.volatility_per_sqrt_hour * math.sqrt(step_hours)

    @property
    def level(self) -> float:
        return self._level

    def advance(self, n: int) -> FloatArray:
        d = self._dynamics
        shocks = np.zeros(n, dtype=np.float64)
        if self._noise_sd > 0:
            shocks += self._noise_sd * self._diffusion.standard_normal(n)
        if d.jump_intensity_per_hour > 0:
            counts = self._jumps.poisson(d.jump_intensity_per_hour * self._step_hours, n).astype(np.float64)
            shocks += counts * d.jump_mean + np.sqrt(counts) * d.jump_std * self._jumps.standard_normal(n)
        # Imported here: scipy.signal takes ~0.8 s to import and the server imports every engine at start.
        from scipy.signal import lfilter

        # x_t = a x_{t-1} + shock_t on the deviation from the mean, solved in C by an IIR filter.
        start = self._decay * (self._level - d.long_run_mean)
        deviation, _ = lfilter([1.0], [1.0, -self._decay], shocks, zi=[start])
        path = np.asarray(deviation, dtype=np.float64) + d.long_run_mean
        self._level = float(path[-1])
        return path


def clip_premium(samples: FloatArray) -> FloatArray:
    return np.clip(samples, -MAX_ABS_PREMIUM_SAMPLE, MAX_ABS_PREMIUM_SAMPLE)


def average_premium(samples: FloatArray, averaging: Averaging, trim_ratio: float = 0.0) -> float:
    """Average one period's samples the way the venue does."""
    n = samples.size
    if n == 0:
        raise ValueError("no premium samples to average")
    if averaging == "linear_twap":
        weights = np.arange(1, n + 1, dtype=np.float64)
        return float(weights @ samples / weights.sum())
    if averaging == "mean":
        return float(samples.mean())
    # dYdX: sort, drop floor(n * 2 * ratio) samples (half from the bottom, the rest from the top), then mean.
    total = math.floor(n * 2 * trim_ratio)
    if total == 0 or total >= n:
        return float(samples.mean())
    bottom = total // 2
    top = total - bottom
    return float(np.sort(samples)[bottom : n - top].mean())
