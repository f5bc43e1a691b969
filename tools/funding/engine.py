"""simulate_funding_regime: per-venue funding (or, for cme, basis carry) on a simulated premium path.

Recipe (spec §5.3, a proposal): the premium starts at (mark - spot)/spot and follows a seeded
OU process sampled at the venue's cadence; each period's samples are averaged with the venue's
weights, the venue's formula, interval, interest and cap turn the average into the rate paid,
and the payment is made on the venue's reference price. Every venue figure comes from
`tools/venues/venues.json`.
"""

from __future__ import annotations

import secrets
import time

import numpy as np

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.tools.funding.carry import Contract, carry_periods, choose_contract
from quantdesk.tools.funding.models import (
    BPS,
    HOURS_PER_YEAR,
    FundingPeriod,
    FundingRegimeRequest,
    FundingRegimeResult,
    FundingSummary,
)
from quantdesk.tools.funding.premium import PremiumDynamics, PremiumProcess, average_premium, clip_premium
from quantdesk.tools.funding.rates import apply_cap, period_rate
from quantdesk.tools.funding.schedule import DAY_MS, HOUR_MS, align_period_start
from quantdesk.tools.venues.catalog import FundingParameters, funding_parameters

MAX_ABS_INITIAL_PREMIUM = 0.5


def simulate_funding_regime(request: FundingRegimeRequest, *, now_ms: int | None = None) -> FundingRegimeResult:
    """Simulate `request.num_periods` funding periods; `now_ms` is the clock used when no start is given."""
    params = funding_parameters(request.exchange)
    initial_premium = (request.mark_price - request.spot_price) / request.spot_price
    _check(request, params, initial_premium)

    # 53 bits: a seed a client echoes back must survive JavaScript numbers (2^53) unrounded.
    seed = request.seed if request.seed is not None else secrets.randbits(53)
    start_ms = request.start_ts_ms if request.start_ts_ms is not None else (
        now_ms if now_ms is not None else time.time_ns() // 1_000_000
    )
    first_start = align_period_start(start_ms, params.interval_hours, params.schedule_anchor_utc_hour)
    long_run = (
        request.premium_long_run_mean_bps * BPS if request.premium_long_run_mean_bps is not None else initial_premium
    )
    dynamics = PremiumDynamics(
        initial=initial_premium,
        long_run_mean=long_run,
        mean_reversion_per_hour=request.premium_mean_reversion_per_hour,
        volatility_per_sqrt_hour=request.premium_volatility_bps * BPS,
        jump_intensity_per_hour=request.jump_intensity_per_hour,
        jump_mean=request.jump_mean_bps * BPS,
        jump_std=request.jump_std_bps * BPS,
    )
    process = PremiumProcess(dynamics, params.sample_seconds, seed)

    carry: Contract | None = None
    if params.model == "basis_carry":
        carry = choose_contract(request, params, first_start)
        periods = carry_periods(request, params, process, first_start, carry.expiry_ts_ms)
    else:
        periods = _funding_periods(request, params, process, first_start)
    summary = _summary(request, params, periods, first_start, initial_premium, long_run, seed, carry)
    return FundingRegimeResult(
        exchange=request.exchange,
        periods=periods,
        summary=summary,
        funding_rate_bps=summary.mean_funding_rate_bps,
        premium_bps=float(np.mean([p.premium_bps for p in periods])),
        annualized_rate=summary.mean_funding_rate_annualized,
        settlement_pnl=summary.total_payment,
    )


def _check(request: FundingRegimeRequest, params: FundingParameters, initial_premium: float) -> None:
    """Cross-field rules the schema cannot state."""
    problems = []
    if abs(initial_premium) > MAX_ABS_INITIAL_PREMIUM:
        problems.append(
            Problem("$.mark_price", "differs from spot_price by more than 50 %; both must be USD prices of one unit")
        )
    if request.days_to_expiry is not None:
        if params.model != "basis_carry":
            problems.append(Problem("$.days_to_expiry", f"applies to cme only, not to {request.exchange}"))
        elif request.num_periods * params.interval_hours > request.days_to_expiry * 24:
            problems.append(
                Problem("$.num_periods", f"{request.num_periods} daily periods run past the expiry in "
                        f"{request.days_to_expiry:g} days; lower num_periods or raise days_to_expiry")
            )
    if problems:
        raise InvalidArgument.from_problems(problems)


def _funding_periods(
    request: FundingRegimeRequest, params: FundingParameters, process: PremiumProcess, first_start: int
) -> list[FundingPeriod]:
    interval_ms = round(params.interval_hours * HOUR_MS)
    per_year = HOURS_PER_YEAR / params.interval_hours
    cap = params.cap_per_period
    spot = request.spot_price
    periods: list[FundingPeriod] = []
    cumulative = 0.0
    for index in range(request.num_periods):
        samples = clip_premium(process.advance(params.samples_per_period))
        if params.sample_clamp is not None:
            samples = np.clip(samples, -params.sample_clamp, params.sample_clamp)
        premium = average_premium(samples, params.averaging, params.trim_ratio)
        raw = period_rate(params, premium)
        rate, hit = apply_cap(raw, cap, request.use_soft_cap)
        # The index is held at spot; the perp sits at spot x (1 + premium) at the funding time.
        perp = spot + spot * float(samples[-1])
        reference = perp if params.reference_price == "mark" else spot
        payment = -request.position_size * reference * rate
        cumulative += payment
        periods.append(FundingPeriod.from_rates(
            index=index, start_ts_ms=first_start + index * interval_ms, interval_ms=interval_ms, premium=premium,
            raw_rate=raw, rate=rate, periods_per_year=per_year, cap_hit=hit, perp_price=perp, index_price=spot,
            reference_price=reference, payment=payment, cumulative_payment=cumulative,
        ))
    return periods


def _summary(
    request: FundingRegimeRequest, params: FundingParameters, periods: list[FundingPeriod], first_start: int,
    initial_premium: float, long_run: float, seed: int, carry: Contract | None,
) -> FundingSummary:
    per_year = HOURS_PER_YEAR / params.interval_hours
    mean_rate = float(np.mean([p.funding_rate for p in periods]))
    cap = params.cap_per_period
    contract = params.contract_size_base
    return FundingSummary(
        exchange=request.exchange,
        model=params.model,
        formula=params.formula_text,
        interval_hours=params.interval_hours,
        periods_per_year=per_year,
        num_periods=len(periods),
        first_period_start_ts_ms=first_start,
        reference_price_kind=params.reference_price,
        position_size=request.position_size,
        position_contracts=request.position_size / contract if contract else None,
        initial_premium_bps=initial_premium / BPS,
        mean_funding_rate=mean_rate,
        mean_funding_rate_bps=mean_rate / BPS,
        mean_funding_rate_annualized=mean_rate * per_year,
        total_payment=periods[-1].cumulative_payment,
        cap_mode="none" if cap is None else ("soft" if request.use_soft_cap else "hard"),
        cap_rate=cap,
        cap_bps=cap / BPS if cap is not None else None,
        cap_hits=sum(p.cap_hit for p in periods),
        sample_interval_seconds=params.sample_seconds,
        samples_per_period=params.samples_per_period,
        premium_averaging=params.averaging,
        premium_mean_reversion_per_hour=request.premium_mean_reversion_per_hour,
        premium_long_run_mean_bps=long_run / BPS,
        premium_volatility_bps=request.premium_volatility_bps,
        jump_intensity_per_hour=request.jump_intensity_per_hour,
        seed=seed,
        expiry_ts_ms=carry.expiry_ts_ms if carry else None,
        days_to_expiry=(carry.expiry_ts_ms - first_start) / DAY_MS if carry else None,
        contract_symbol=carry.contract_symbol if carry else None,
        canonical_symbol=carry.canonical_symbol if carry else None,
        caveats=_caveats(request, params),
    )


def _caveats(request: FundingRegimeRequest, params: FundingParameters) -> list[str]:
    notes = []
    if params.model == "basis_carry":
        notes.append(
            f"{params.exchange} has no funding: this is a basis-and-carry model (a proposal, not a venue rule); "
            "the futures price converges to spot at expiry; exchange holidays are not modelled."
        )
    notes.append(
        "Simulated: the spot/index/oracle price is held at spot_price and only the premium moves "
        "(OU process sampled at the venue cadence); no order book is simulated, so impact notionals do not enter."
    )
    if request.use_soft_cap:
        if params.cap_per_period is None:
            notes.append("use_soft_cap has no effect: this venue has no cap.")
        else:
            notes.append(
                "Soft cap c*tanh(F/c) replaces the venue's hard clamp (a proposal, spec §5.4); it also lowers "
                "rates inside the cap (about -8 % at half the cap). The inner interest band stays a hard clamp."
            )
    notes.extend(params.caveats)
    return notes
