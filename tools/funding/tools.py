"""The funding tool: per-venue perpetual funding (or CME basis carry) on a simulated premium path."""

from __future__ import annotations

from quantdesk.server.registry import CallContext, ToolSet
from quantdesk.server.resources import PromptArgument
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
    from quantdesk.tools.funding.engine import simulate_funding_regime as simulate  # numpy: loaded on first use

    return simulate(args, now_ms=int(ctx.started_at * 1000))


@tools.prompt(title="Analyze funding costs", arguments=(
    PromptArgument("exchange", "Venue: binance, bybit, okx, hyperliquid, dydx, sgx or cme.", required=True),
    PromptArgument("position_usd", "Position size in USD, negative for a short (default 100000)."),
    PromptArgument("days", "Holding period in days (default 30)."),
))
def analyze_funding_costs(arguments: dict[str, str]) -> str:
    """Estimate what holding a perpetual position costs or earns in funding on one venue, and compare venues."""
    exchange = arguments["exchange"]
    position = arguments.get("position_usd", "100000")
    days = arguments.get("days", "30")
    return (
        f"Analyze the funding cost of holding a {position} USD perpetual position on {exchange} for {days} days.\n"
        "1. Call get_venue_details for the venue to read its funding interval, caps and formula (note any "
        "value marked unverified).\n"
        "2. Call simulate_funding_regime with exchange, a spot_price and a mark_price around the current BTC "
        "level (a mark above spot means a positive premium: longs pay), position_size in base units "
        f"({position} USD divided by the price), and num_periods covering {days} days at the venue's "
        "interval. Pass a seed so the result can be reproduced, and run two or three seeds to see the spread.\n"
        "3. Report the total funding paid or received, the mean rate per period and annualized, how often the "
        "cap bound, and the caveats the tool returns. Say plainly that the result is simulated "
        "(data_source: simulated), not a forecast.\n"
        "4. If useful, repeat for another venue with a different interval (hourly hyperliquid vs 8-hourly "
        "binance) and compare."
    )
