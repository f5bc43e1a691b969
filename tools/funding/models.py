"""The contract of `simulate_funding_regime`: one request model and one result model.

Request field names follow the Aleatoric shape (`exchange`, `spot_price`, `mark_price`,
`position_size`, `num_periods`, `use_soft_cap`, `seed`); the premium-dynamics and schedule
fields are quantdesk's. Sign convention everywhere: a positive rate means longs pay shorts,
and `payment` is cash to the holder of `position_size` (negative = the position pays).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.tools.venues.models import Averaging, ReferencePrice

FundingExchange = Literal["binance", "bybit", "okx", "hyperliquid", "dydx", "sgx", "cme"]
MAX_PERIODS = 1000
BPS = 1e-4
HOURS_PER_YEAR = 365 * 24
YEAR_2100_MS = 4_102_444_800_000
SIGN_CONVENTION = (
    "positive funding_rate: longs pay shorts; payment = -position_size x reference_price x funding_rate, "
    "so a negative payment is cash the position pays"
)


class FundingRegimeRequest(BaseModel):
    """Arguments of simulate_funding_regime."""

    model_config = ConfigDict(extra="forbid")

    exchange: FundingExchange = Field(
        description="Venue whose funding rules apply (the tool's description says how each pays)."
    )
    spot_price: float = Field(
        gt=0, le=1e9, description="Spot / index / oracle price in USD. Held constant during the simulation."
    )
    mark_price: float = Field(
        gt=0,
        le=1e9,
        description="Perpetual mark price in USD (for cme: the futures price). The initial premium is "
        "(mark_price - spot_price) / spot_price.",
    )
    position_size: float = Field(
        default=1.0, ge=-1e9, le=1e9, description="Position in base units (e.g. BTC): positive long, negative short."
    )
    num_periods: int = Field(
        default=1,
        ge=1,
        le=MAX_PERIODS,
        description="Funding periods to simulate (8 h each on binance/bybit/okx/sgx, 1 h on hyperliquid/dydx, "
        "1 day on cme).",
    )
    use_soft_cap: bool = Field(
        default=False,
        description="Replace the venue's hard cap clamp(F, -c, c) by the smooth c*tanh(F/c) (a proposal, not a "
        "venue rule; it also damps rates inside the cap).",
    )
    seed: int | None = Field(
        default=None, ge=0, le=2**53 - 1, description="Random seed; the same seed gives the same result. Omitted: "
        "a fresh seed is drawn and reported in summary.seed."
    )
    start_ts_ms: int | None = Field(
        default=None,
        ge=0,
        le=YEAR_2100_MS,
        description="Simulation start, ms since the epoch (UTC); aligned down to the venue's funding schedule "
        "(e.g. 00/08/16 UTC). Omitted: now.",
    )
    premium_mean_reversion_per_hour: float = Field(
        default=1.5, ge=0, le=100, description="Ornstein-Uhlenbeck mean-reversion speed of the premium, per hour."
    )
    premium_long_run_mean_bps: float | None = Field(
        default=None,
        ge=-5000,
        le=5000,
        description="Level the premium reverts to, in bps of spot. Omitted: the initial premium (the regime persists).",
    )
    premium_volatility_bps: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="Premium volatility in bps per square-root hour. 0 (with no jumps) holds the premium at its "
        "long-run mean and makes the result deterministic.",
    )
    jump_intensity_per_hour: float = Field(
        default=0.0, ge=0, le=60, description="Expected premium jumps per hour (compound Poisson); 0 disables jumps."
    )
    jump_mean_bps: float = Field(default=0.0, ge=-5000, le=5000, description="Mean premium jump size, bps.")
    jump_std_bps: float = Field(default=0.0, ge=0, le=5000, description="Standard deviation of a premium jump, bps.")
    days_to_expiry: float | None = Field(
        default=None,
        gt=0,
        le=3650,
        description="cme only: days from the first period's start to the futures expiry. Omitted: the first monthly "
        "expiry (last Friday, 16:00 London) at or after the end of the simulated horizon.",
    )


class FundingPeriod(BaseModel):
    """One funding (or carry-accrual) period."""

    model_config = ConfigDict(extra="forbid")

    period_index: int = Field(description="0-based.")
    start_ts_ms: int = Field(description="Period start, ms since the epoch, on the venue's schedule.")
    next_funding_time: int = Field(description="When this period's funding is paid (period end), ms since the epoch.")
    premium: float = Field(description="Averaged premium index over the period (fraction of spot); for cme the basis.")
    premium_bps: float
    raw_funding_rate: float = Field(description="Rate per period from the formula before the outer cap.")
    funding_rate: float = Field(description="Rate paid this period (fraction); positive = longs pay shorts.")
    funding_rate_bps: float
    funding_rate_annualized: float = Field(description="funding_rate x periods per year (fraction per year).")
    cap_hit: bool = Field(description="The raw rate exceeded the cap.")
    perp_price: float = Field(description="Perpetual (cme: futures) price at the funding time, USD.")
    index_price: float = Field(description="Spot / index / oracle price, USD.")
    reference_price: float = Field(description="Price the payment is computed on (mark or oracle/index), USD.")
    payment: float = Field(description="Cash to the position this period, USD; negative = the position pays.")
    pnl: float = Field(description="Same as payment (field read by Aleatoric clients).")
    cumulative_payment: float = Field(description="Running sum of payment up to and including this period, USD.")

    @classmethod
    def from_rates(
        cls, *, index: int, start_ts_ms: int, interval_ms: int, premium: float, raw_rate: float, rate: float,
        periods_per_year: float, cap_hit: bool, perp_price: float, index_price: float, reference_price: float,
        payment: float, cumulative_payment: float,
    ) -> FundingPeriod:
        """Build a period from its primary figures; bps, annualized and pnl are derived here, once."""
        return cls(
            period_index=index,
            start_ts_ms=start_ts_ms,
            next_funding_time=start_ts_ms + interval_ms,
            premium=premium,
            premium_bps=premium / BPS,
            raw_funding_rate=raw_rate,
            funding_rate=rate,
            funding_rate_bps=rate / BPS,
            funding_rate_annualized=rate * periods_per_year,
            cap_hit=cap_hit,
            perp_price=perp_price,
            index_price=index_price,
            reference_price=reference_price,
            payment=payment,
            pnl=payment,
            cumulative_payment=cumulative_payment,
        )


class FundingSummary(BaseModel):
    """Totals, the rules applied, and what is not a venue fact."""

    model_config = ConfigDict(extra="forbid")

    exchange: FundingExchange
    model: Literal["perpetual_funding", "basis_carry"] = Field(
        description="basis_carry (cme) is not funding: dated futures converge to spot instead."
    )
    data_source: Literal["simulated"] = "simulated"
    formula: str
    sign_convention: str = SIGN_CONVENTION
    interval_hours: float
    periods_per_year: float
    num_periods: int
    first_period_start_ts_ms: int
    reference_price_kind: ReferencePrice
    position_size: float
    position_contracts: float | None = Field(description="position_size in venue contracts, where sizes are contracts.")
    initial_premium_bps: float
    mean_funding_rate: float
    mean_funding_rate_bps: float
    mean_funding_rate_annualized: float
    total_payment: float = Field(description="Sum of payments, USD; negative = the position paid.")
    cap_mode: Literal["hard", "soft", "none"]
    cap_rate: float | None = Field(description="Cap on the rate paid per period (fraction); null when none.")
    cap_bps: float | None
    cap_hits: int = Field(description="Periods whose raw rate exceeded the cap.")
    sample_interval_seconds: float
    samples_per_period: int
    premium_averaging: Averaging
    premium_mean_reversion_per_hour: float
    premium_long_run_mean_bps: float = Field(description="The long-run mean actually used.")
    premium_volatility_bps: float
    jump_intensity_per_hour: float
    seed: int = Field(description="Seed used; pass it back to reproduce this result.")
    expiry_ts_ms: int | None = Field(default=None, description="cme: futures expiry, ms since the epoch.")
    days_to_expiry: float | None = Field(default=None, description="cme: days from the first period start to expiry.")
    contract_symbol: str | None = Field(default=None, description="cme: venue contract code, e.g. BTCZ6.")
    canonical_symbol: str | None = Field(default=None, description="cme: quantdesk symbol, e.g. BTC-USD-261225.")
    caveats: list[str] = Field(description="Unverified figures and modelling choices behind this result.")


class FundingRegimeResult(BaseModel):
    """Result of simulate_funding_regime."""

    model_config = ConfigDict(extra="forbid")

    exchange: FundingExchange
    periods: list[FundingPeriod]
    summary: FundingSummary
    funding_rate_bps: float = Field(description="Mean funding rate per period, bps (Aleatoric scalar).")
    premium_bps: float = Field(description="Mean premium, bps (Aleatoric scalar).")
    annualized_rate: float = Field(description="Mean annualized funding rate, fraction (Aleatoric scalar).")
    settlement_pnl: float = Field(description="Total payment, USD (Aleatoric scalar).")
