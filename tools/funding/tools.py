"""The funding tool: per-venue perpetual funding (or CME basis carry) on a simulated premium path."""

from __future__ import annotations

from quantdesk.server.registry import CallContext, ToolSet
from quantdesk.tools.funding.engine import simulate_funding_regime as simulate
from quantdesk.tools.funding.models import FundingRegimeRequest, FundingRegimeResult

tools = ToolSet("funding")


@tools.tool(scope="read", title="Simulate a funding regime", read_only=True, idempotent=True)
async def simulate_funding_regime(args: FundingRegimeRequest, ctx: CallContext) -> FundingRegimeResult:
    """Simulate what holding a perpetual costs or earns in funding on one venue, period by period.

    Venues: binance, bybit, okx (8 h), hyperliquid and dydx (hourly, paid on the oracle price), sgx
    (±35 bps cap; interval and formula unverified), and cme (no funding: a labelled basis-and-carry
    model of a dated future). The premium starts at (mark - spot) / spot and follows a seeded
    mean-reverting process sampled at the venue's cadence; the venue's formula, interest, caps (hard,
    or soft c*tanh(F/c)) and reference price give each period's rate and payment. Positive rates mean
    longs pay. Returns periods[] and a summary with caveats; `data_source` is `simulated`.
    """
    return simulate(args, now_ms=int(ctx.started_at * 1000))
