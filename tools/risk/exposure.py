"""Exposure per asset, spot and perpetual together, and the control plane's limits in USD.

Read from the desk engine under its lock. Spot holdings are valued at the spot mark (the mid), perpetual
positions at their mark; an asset's net exposure is spot value + signed perpetual notional, its gross
exposure the sum of their absolute values. The hedge ratio is in base units: -perpetual size / spot
holding (1 = the spot holding is fully offset); `hedge_ratio_by_value` uses the marks.

Limits are the control plane's (`tools/control`), shown in USD at the current equity: the engine
enforces the ratios (leverage, drawdown and daily loss as fractions), so the USD figures move with equity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from quantdesk.server.errors import InvalidArgument, Problem
from quantdesk.tools.desk.instruments import SETTLEMENT_ASSET, Instrument

if TYPE_CHECKING:
    from quantdesk.tools.control.store import RiskLimits
    from quantdesk.tools.desk.engine import DeskEngine
    from quantdesk.tools.desk.gate import AccountSnapshot
    from quantdesk.tools.desk.ledger import Ledger


@dataclass(frozen=True, slots=True)
class AssetExposure:
    asset: str
    spot_symbol: str | None
    perpetual_symbol: str | None
    spot_quantity: float
    spot_price_usd: float | None
    spot_value_usd: float
    spot_avg_entry_price_usd: float | None
    futures_quantity: float
    futures_mark_price_usd: float | None
    futures_value_usd: float
    futures_entry_price_usd: float | None
    futures_leverage: float | None
    futures_margin_mode: str | None
    futures_initial_margin_usd: float
    futures_unrealized_pnl_usd: float
    net_exposure_usd: float
    gross_exposure_usd: float
    net_exposure_fraction: float
    """Net exposure / equity (signed)."""
    gross_exposure_fraction: float
    hedge_ratio: float | None
    hedge_ratio_by_value: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mark(engine: DeskEngine, symbol: str) -> float | None:
    """The price the engine values the symbol at (mark, else last trade), as its equity does."""
    return engine.markets[symbol].reference_mark()


class SpotCostBasis:
    """Average entry price of spot holdings from the desk's spot fills (average-cost method, fees excluded)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, float, float]] = {}

    def average(self, ledger: Ledger, symbol: str, holding: float, lot: float) -> float | None:
        newest = ledger.list_fills(symbol=symbol, order_id=None, since_ms=None, until_ms=None, liquidity=None,
                                   limit=1)
        if not newest:
            return None
        cached = self._cache.get(symbol)
        if cached is None or cached[0] != newest[0].seq:
            fills = ledger.list_fills(symbol=symbol, order_id=None, since_ms=None, until_ms=None, liquidity=None,
                                      limit=10_000_000)
            quantity = cost = 0.0
            for f in sorted(fills, key=lambda x: x.seq):
                if f.side == "buy":
                    quantity += f.quantity
                    cost += f.quantity * f.price
                elif quantity > 0:
                    sold = min(f.quantity, quantity)
                    cost *= (quantity - sold) / quantity
                    quantity -= sold
                if quantity <= lot / 2:
                    quantity = cost = 0.0
            cached = self._cache[symbol] = (newest[0].seq, quantity, cost)
        _, quantity, cost = cached
        # holdings that did not come from fills (a deposit) have no known entry price
        if quantity <= 0 or abs(quantity - holding) > lot / 2:
            return None
        return cost / quantity


def asset_exposures(engine: DeskEngine, costs: SpotCostBasis, *, include_flat: bool = False) -> list[AssetExposure]:
    """One row per base asset with a spot holding or a perpetual position (all assets with include_flat)."""
    account = engine.account()
    equity = account.equity_usd
    rows = []
    bases = list(dict.fromkeys(i.base for i in engine.instruments.instruments))
    for base in bases:
        spot = engine.instruments.spot_for(base)
        perp = next((i for i in engine.instruments.perpetuals() if i.base == base), None)
        held = engine.holding(base)
        position = engine.positions.get(perp.symbol) if perp is not None else None
        size = position.size if position is not None else 0.0
        if not include_flat and held == 0.0 and size == 0.0:
            continue
        spot_price = _mark(engine, spot.symbol) if spot is not None else None
        spot_value = held * spot_price if spot_price is not None else 0.0
        perp_mark = _mark(engine, perp.symbol) if perp is not None else None
        if perp_mark is None and position is not None and size:
            perp_mark = position.entry_price
        futures_value = size * perp_mark if perp_mark is not None else 0.0
        described = engine.describe_position(position) if position is not None and size else None
        avg = costs.average(engine.ledger, spot.symbol, held, spot.lot_size) if spot is not None and held > 0 \
            else None
        net = spot_value + futures_value
        gross = abs(spot_value) + abs(futures_value)
        rows.append(AssetExposure(
            asset=base, spot_symbol=spot.symbol if spot else None, perpetual_symbol=perp.symbol if perp else None,
            spot_quantity=held, spot_price_usd=spot_price, spot_value_usd=spot_value, spot_avg_entry_price_usd=avg,
            futures_quantity=size, futures_mark_price_usd=perp_mark, futures_value_usd=futures_value,
            futures_entry_price_usd=position.entry_price if position is not None and size else None,
            futures_leverage=position.leverage if position is not None else (
                engine.peek_position(perp.symbol).leverage if perp is not None else None),
            futures_margin_mode=position.margin_mode if position is not None else (
                engine.peek_position(perp.symbol).margin_mode if perp is not None else None),
            futures_initial_margin_usd=float(described["initial_margin_usd"]) if described else 0.0,
            futures_unrealized_pnl_usd=float(described["unrealized_pnl_usd"]) if described else 0.0,
            net_exposure_usd=net, gross_exposure_usd=gross,
            net_exposure_fraction=net / equity if equity > 0 else 0.0,
            gross_exposure_fraction=gross / equity if equity > 0 else 0.0,
            hedge_ratio=-size / held if held > 0 else None,
            hedge_ratio_by_value=-futures_value / spot_value if spot_value > 0 else None))
    return rows


def resolve_asset(engine: DeskEngine, value: str, field: str, *, prefer: str = "perpetual") -> Instrument:
    """An instrument from a canonical symbol (BTC-USDT-PERP), a venue symbol (BTCUSDT) or a base asset (BTC)."""
    table = engine.instruments
    if value in table.by_symbol:
        return table.by_symbol[value]
    upper = value.upper()
    candidates = [i for i in table.instruments if i.base == upper or i.venue_symbol == upper
                  or i.symbol == upper]
    if not candidates:
        bases = sorted({i.base for i in table.instruments})
        known = f"known assets: {', '.join(bases)}; symbols: {', '.join(table.by_symbol)}"
        raise InvalidArgument.from_problems([Problem(field, f"unknown asset {value!r}; {known}")])
    preferred = [i for i in candidates if i.kind == prefer]
    return (preferred or candidates)[0]


def limits_view(limits: RiskLimits, account: AccountSnapshot, largest_position: tuple[str, float] | None
                ) -> dict[str, Any]:
    """The limits in USD at the current equity, their use now, and the AlphaPulse-shaped blocks."""
    equity = account.equity_usd
    peak = account.peak_equity_usd
    margin = limits.max_leverage * equity if limits.max_leverage is not None else None
    drawdown = limits.max_drawdown_pct * peak if limits.max_drawdown_pct is not None else None
    daily = limits.max_daily_loss_pct * account.day_start_equity_usd if limits.max_daily_loss_pct is not None \
        else None
    loss_from_peak = max(0.0, peak - equity)
    daily_loss = max(0.0, account.day_start_equity_usd - equity)

    def use(value: float, limit: float | None) -> float | None:
        return value / limit if limit else None

    position_now = largest_position[1] if largest_position else 0.0
    return {
        "position_limits": {"default": limits.max_position_notional_usd},
        "margin_limits": {"total": margin},
        "exposure_limits": {"total": limits.max_gross_exposure_usd, "net": limits.max_net_exposure_usd},
        "drawdown_limits": {"max": drawdown, "daily_loss": daily},
        "usage": {
            "largest_position_symbol": largest_position[0] if largest_position else None,
            "largest_position_usd": position_now,
            "position_utilization": use(position_now, limits.max_position_notional_usd),
            "gross_exposure_usd": account.gross_exposure_usd,
            "gross_exposure_utilization": use(account.gross_exposure_usd, limits.max_gross_exposure_usd),
            "net_exposure_usd": account.net_exposure_usd,
            "net_exposure_utilization": use(abs(account.net_exposure_usd), limits.max_net_exposure_usd),
            "leverage": account.gross_exposure_usd / equity if equity > 0 else 0.0,
            "margin_utilization": use(account.gross_exposure_usd, margin),
            "loss_from_peak_usd": loss_from_peak, "drawdown_utilization": use(loss_from_peak, drawdown),
            "daily_loss_usd": daily_loss, "daily_loss_utilization": use(daily_loss, daily),
        },
        "enforced": asdict(limits),
        "basis": {"equity_usd": equity, "peak_equity_usd": peak, "day_start_equity_usd": account.day_start_equity_usd},
    }


USD_LIMIT_FIELDS = ("position_limit_usd", "exposure_limit_usd", "net_exposure_limit_usd", "margin_limit_usd",
                    "drawdown_limit_usd", "daily_loss_limit_usd", "order_notional_limit_usd")


def usd_limit_changes(values: dict[str, float], account: AccountSnapshot) -> dict[str, Any]:
    """Control-plane limit changes from limits given in USD (ratios converted at the current equity)."""
    changes: dict[str, Any] = {}
    problems = []
    direct = {"position_limit_usd": "max_position_notional_usd", "exposure_limit_usd": "max_gross_exposure_usd",
              "net_exposure_limit_usd": "max_net_exposure_usd", "order_notional_limit_usd": "max_order_notional_usd"}
    for name, target in direct.items():
        if name in values:
            changes[target] = values[name]
    ratios = (("margin_limit_usd", "max_leverage", account.equity_usd, 200.0, "equity"),
              ("drawdown_limit_usd", "max_drawdown_pct", account.peak_equity_usd, 1.0, "peak equity"),
              ("daily_loss_limit_usd", "max_daily_loss_pct", account.day_start_equity_usd, 1.0,
               "the day's starting equity"))
    for name, target, basis, ceiling, label in ratios:
        if name not in values:
            continue
        if basis <= 0:
            problems.append(Problem(f"$.{name}", f"{label} is not positive: a USD limit cannot be converted"))
            continue
        ratio = values[name] / basis
        if ratio > ceiling:
            problems.append(Problem(f"$.{name}", f"is {ratio:g} x {label} ({basis:,.2f} USD); at most "
                                                 f"{ceiling:g} x is allowed"))
            continue
        changes[target] = ratio
    if problems:
        raise InvalidArgument.from_problems(problems)
    if not changes:
        raise InvalidArgument.from_problems([Problem("$", "give at least one limit")])
    return changes


def largest_position(engine: DeskEngine) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for symbol, p in engine.positions.items():
        if p.size == 0.0:
            continue
        mark = engine.markets[symbol].reference_mark() or p.entry_price
        value = abs(p.size) * mark
        if best is None or value > best[1]:
            best = (symbol, value)
    for asset, amount in engine.balances.items():
        if asset == SETTLEMENT_ASSET or amount == 0.0:
            continue
        spot = engine.instruments.spot_for(asset)
        if spot is None:
            continue
        spot_mark = engine.markets[spot.symbol].reference_mark()
        if spot_mark is None:
            continue
        value = abs(amount) * spot_mark
        if best is None or value > best[1]:
            best = (spot.symbol, value)
    return best
