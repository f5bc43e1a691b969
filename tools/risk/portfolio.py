"""The portfolio as the desk holds it now, and its trades (the desk's fills with the orders behind them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quantdesk.tools.desk.instruments import SETTLEMENT_ASSET
from quantdesk.tools.risk.exposure import SpotCostBasis
from quantdesk.tools.risk.series import iso

if TYPE_CHECKING:
    from quantdesk.tools.desk.engine import DeskEngine

MAX_SCAN = 20_000
"""Fills read per trade query when filtering by side or source (the newest ones)."""


def portfolio(engine: DeskEngine, costs: SpotCostBasis) -> dict[str, Any]:
    """Call under the engine's lock."""
    account = engine.account()
    equity = account.equity_usd
    positions: list[dict[str, Any]] = []
    upnl_total = 0.0
    for asset, amount in sorted(engine.balances.items()):
        if asset == SETTLEMENT_ASSET or amount == 0.0:
            continue
        spot = engine.instruments.spot_for(asset)
        if spot is None:
            continue
        price = engine.markets[spot.symbol].reference_mark()
        value = amount * price if price is not None else 0.0
        avg = costs.average(engine.ledger, spot.symbol, amount, spot.lot_size)
        upnl = amount * (price - avg) if price is not None and avg is not None else None
        positions.append({"asset": asset, "symbol": spot.symbol, "kind": "spot", "quantity": amount,
                          "price_usd": price, "value_usd": value, "allocation": value / equity if equity > 0 else 0.0,
                          "avg_entry_price_usd": avg, "unrealized_pnl_usd": upnl, "leverage": None})
    for symbol, p in sorted(engine.positions.items()):
        if p.size == 0.0:
            continue
        described = engine.describe_position(p)
        mark = described["mark_price"] or p.entry_price
        value = p.size * mark
        upnl = float(described["unrealized_pnl_usd"])
        upnl_total += upnl
        positions.append({"asset": engine.instruments.by_symbol[symbol].base, "symbol": symbol, "kind": "perpetual",
                          "quantity": p.size, "price_usd": mark, "value_usd": value,
                          "allocation": value / equity if equity > 0 else 0.0, "avg_entry_price_usd": p.entry_price,
                          "unrealized_pnl_usd": upnl, "leverage": p.leverage})
    return {"total_value_usd": equity, "cash_usd": engine.balances.get(SETTLEMENT_ASSET, 0.0),
            "available_usd": account.available_usd, "unrealized_pnl_usd": upnl_total,
            "gross_exposure_usd": account.gross_exposure_usd, "net_exposure_usd": account.net_exposure_usd,
            "positions": positions, "desk_time_ms": engine.now_ms, "timestamp": iso(engine.now_ms)}


def trades(engine: DeskEngine, *, symbols: list[str] | None, side: str | None, source: str | None,
           liquidity: str | None, since_ms: int | None, until_ms: int | None, limit: int) -> list[dict[str, Any]]:
    """Fills newest first with their order's source; `source` matches the order source's prefix (risk:hedge)."""
    scan = limit if side is None and source is None else MAX_SCAN
    fills = []
    for symbol in symbols or [None]:  # type: ignore[list-item]
        fills += engine.ledger.list_fills(symbol=symbol, order_id=None, since_ms=since_ms, until_ms=until_ms,
                                          liquidity=liquidity, limit=scan)
    fills.sort(key=lambda f: f.seq, reverse=True)
    sources: dict[str, tuple[str, str | None, str | None]] = {}
    out = []
    for f in fills:
        if side is not None and f.side != side:
            continue
        if f.order_id not in sources:
            order = engine.ledger.get_order(f.order_id)
            sources[f.order_id] = (order.source, order.decision_id, order.client_order_id) if order is not None \
                else ("unknown", None, None)
        order_source, decision_id, client_order_id = sources[f.order_id]
        if source is not None and not order_source.startswith(source):
            continue
        instrument = engine.instruments.by_symbol.get(f.symbol)
        out.append({"trade_id": f.fill_id, "order_id": f.order_id, "client_order_id": client_order_id,
                    "symbol": f.symbol, "asset": instrument.base if instrument else f.symbol,
                    "kind": instrument.kind if instrument else None, "side": f.side, "quantity": f.quantity,
                    "price_usd": f.price, "notional_usd": f.notional_usd, "fee_usd": f.fee_usd,
                    "realized_pnl_usd": f.realized_pnl_usd, "liquidity": f.liquidity, "source": order_source,
                    "decision_id": decision_id, "timestamp_ms": f.timestamp_ms, "timestamp": iso(f.timestamp_ms)})
        if len(out) >= limit:
            break
    return out
