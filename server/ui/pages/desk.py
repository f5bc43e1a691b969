"""Desk: the equity curve and its drawdown, the account, positions with P&L, open orders with Cancel, recent
fills, risk metrics and limits, the tracked regimes and the latest signals, and a place-order form.

Every figure is a tool's: the panels arrange and format what the desk, risk and signals tools answer, and
re-render when the event bus reports their topics (fills, positions, order events, equity samples, regime
changes, signals), so nothing polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from quantdesk.server.errors import InvalidArgument, NotFound, QuantdeskError
from quantdesk.server.ui.forms import FormSpec
from quantdesk.server.ui.site import Page, Panel, Visit

ORDER_TOPICS = ("order_accepted", "order_rejected", "order_cancelled", "order_expired", "order_triggered",
                "order_amended")
EQUITY_SAMPLES = 1440
"""A day of the default one-minute equity samples."""
FILLS_SHOWN = 20
SIGNALS_SHOWN = 10
RISK_BARS = ("1d", "1h", "1m")
"""get_risk_metrics needs a few returns on its bar: the longest bar the equity series already covers is used."""

FORMS = (
    FormSpec("desk.place_order", "place_order", submit="Place order", result="brief",
             fields=("symbol", "side", "order_type", "quantity", "price", "stop_price", "time_in_force",
                     "reduce_only", "post_only"),
             defaults={"symbol": "BTC-USDT-PERP", "order_type": "market"},
             labels={"order_type": "order type", "stop_price": "stop price", "time_in_force": "time in force",
                     "reduce_only": "reduce only", "post_only": "post only"}),
    FormSpec("desk.cancel", "cancel_order", fields=(), hidden=("order_id",), submit="Cancel", inline=True,
             result="brief"),
)


async def _context(visit: Visit) -> Mapping[str, Any]:
    """How the desk runs (clock, market source), for the page's heading."""
    try:
        return {"desk": await visit.call("get_desk_status")}
    except QuantdeskError:
        return {"desk": None}


async def _equity(visit: Visit) -> Mapping[str, Any]:
    series = await visit.call("get_equity_series", {"limit": EQUITY_SAMPLES})
    samples = series["samples"]
    return {"series": series, "xs": [s["timestamp_ms"] / 1000 for s in samples],
            "equity": [s["equity_usd"] for s in samples],
            # the tool's drawdown (a positive fraction) drawn below zero, in percent: an underwater curve
            "drawdown": [-s["drawdown_pct"] * 100 for s in samples],
            "last": samples[-1] if samples else None}


async def _account(visit: Visit) -> Mapping[str, Any]:
    return {"account": await visit.call("get_account_summary")}


async def _positions(visit: Visit) -> Mapping[str, Any]:
    positions, balances = await asyncio.gather(visit.call("get_positions"), visit.call("get_balances"))
    return {"positions": positions, "balances": balances}


async def _orders(visit: Visit) -> Mapping[str, Any]:
    open_orders, latest = await asyncio.gather(visit.call("list_orders", {"status": "open"}),
                                               visit.call("list_orders", {"status": "all", "limit": 1}))
    return {"orders": open_orders, "latest": latest["orders"][0] if latest["orders"] else None}


async def _fills(visit: Visit) -> Mapping[str, Any]:
    return {"fills": await visit.call("list_fills", {"limit": FILLS_SHOWN})}


async def _risk_metrics(visit: Visit) -> tuple[dict[str, Any] | None, QuantdeskError | None]:
    """The metrics on the longest bar with enough returns; when none has, the tool's reason."""
    reason: QuantdeskError | None = None
    for bar in RISK_BARS:
        try:
            return await visit.call("get_risk_metrics", {"bar": bar}), None
        except InvalidArgument as exc:
            reason = exc
    return None, reason


async def _risk(visit: Visit) -> Mapping[str, Any]:
    (metrics, why), usage = await asyncio.gather(_risk_metrics(visit), visit.call("get_risk_limit_usage"))
    performance = await visit.call("get_performance_metrics", {"bar": metrics["bar"] if metrics else "1h"})
    return {"metrics": metrics, "metrics_error": why, "usage": usage, "performance": performance}


async def _regime_of(visit: Visit, symbol: str) -> dict[str, Any] | None:
    try:
        return await visit.call("get_market_regime", {"symbol": symbol})
    except NotFound:
        return None


async def _regimes(visit: Visit) -> Mapping[str, Any]:
    """The regime of every tracked symbol. No tool lists what is tracked: get_market_regime without a symbol
    answers the first tracked one (or says nothing is tracked), then each desk symbol is asked."""
    try:
        first = await visit.call("get_market_regime")
    except NotFound as exc:
        regimes: list[dict[str, Any]] = []
        untracked: str | None = exc.message
    else:
        symbols = (await visit.call("get_desk_status"))["symbols"]
        others = await asyncio.gather(*(_regime_of(visit, s) for s in symbols if s != first["symbol"]))
        regimes, untracked = [first, *(r for r in others if r is not None)], None
    signals = await visit.call("list_signals", {"limit": SIGNALS_SHOWN})
    return {"regimes": regimes, "untracked": untracked, "signals": signals}


async def _quote(visit: Visit, symbol: str) -> dict[str, Any]:
    try:
        return await visit.call("get_quote", {"symbol": symbol})
    except QuantdeskError as exc:
        return {"symbol": symbol, "error": exc.message}


async def _markets(visit: Visit) -> Mapping[str, Any]:
    symbols = (await visit.call("get_desk_status"))["symbols"]
    return {"quotes": await asyncio.gather(*(_quote(visit, s) for s in symbols))}


def page() -> Page:
    return Page(slug="desk", title="Desk", template="desk.html", order=10, forms=FORMS, context=_context, panels=(
        Panel("account", "desk_account.html", _account, title="Account",
              topics=("fill", "position", "equity", "funding", "liquidation", "order_accepted", "order_cancelled",
                      "order_expired")),
        Panel("equity", "desk_equity.html", _equity, topics=("equity",), title="Equity and drawdown"),
        Panel("markets", "desk_markets.html", _markets, topics=("fill", "equity"), title="Markets"),
        Panel("positions", "desk_positions.html", _positions, title="Positions and balances",
              topics=("position", "fill", "funding", "liquidation", "equity")),
        Panel("orders", "desk_orders.html", _orders, topics=(*ORDER_TOPICS, "fill"), title="Open orders"),
        Panel("fills", "desk_fills.html", _fills, topics=("fill", "liquidation"), title="Recent fills"),
        Panel("risk", "desk_risk.html", _risk, topics=("equity", "fill", "risk_event", "state_change"),
              title="Risk metrics and limits"),
        Panel("regime", "desk_regime.html", _regimes, topics=("regime_change", "signal", "equity"),
              title="Regime and signals"),
    ))
