"""Position sizing reproduces hand-computed cases (the desk's own numbers: BTC-USDT-PERP taker fee 5 bps, lot
0.001, tick 0.1, maintenance 0.4 %, leverage 5x; control-plane defaults)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from quantdesk.server.errors import InvalidArgument
from quantdesk.tools.risk.sizing import SizingFacts, SizingRequest, size_position

FACTS = SizingFacts(
    symbol="BTC-USDT-PERP", is_perpetual=True, equity_usd=100_000.0, available_usd=100_000.0, gross_exposure_usd=0.0,
    position_notional_usd=0.0, entry_price_usd=50_000.0, atr_usd=1_000.0, volatility_annual=0.6,
    taker_fee_rate=0.0005, lot_size=0.001, quantity_decimals=3, tick_size=0.1, min_notional_usd=100.0,
    symbol_leverage=5.0, maintenance_margin_rate=0.004, max_position_notional_usd=500_000.0,
    max_gross_exposure_usd=1_000_000.0, max_leverage=10.0, max_order_notional_usd=250_000.0)


def test_a_balanced_long_is_sized_by_its_risk_budget_as_computed_by_hand():
    out = size_position(SizingRequest(), FACTS)
    # stop = 50,000 - 2 x 1,000 = 48,000; take-profit = 50,000 + 2 R x 2,000 = 54,000
    assert (out["stop_loss_price_usd"], out["take_profit_price_usd"]) == (48_000.0, 54_000.0)
    # loss per unit at the stop = 2,000 + (50,000 + 48,000) x 0.0005 = 2,049; budget 1 % x 100,000 = 1,000
    factors = {f["name"]: f["value"] for f in out["factors"]}
    assert factors["loss_per_unit_at_stop"] == pytest.approx(2_049.0, abs=1e-9)
    assert out["risk_budget_usd"] == pytest.approx(1_000.0, abs=1e-9)
    # 1,000 / 2,049 = 0.48804... -> 0.488 on the 0.001 lot
    assert factors["quantity_by_risk"] == pytest.approx(1_000.0 / 2_049.0, abs=1e-12)
    assert out["quantity"] == 0.488 and out["binding_constraint"] == "risk_per_trade"
    assert out["risk_usd"] == pytest.approx(0.488 * 2_049.0, abs=1e-9)
    # tightest cap: volatility target 100,000 x 0.15 / 0.6 = 25,000 USD = 0.5 BTC
    caps = {c["name"]: c["max_quantity"] for c in out["caps"]}
    assert caps["volatility_target"] == pytest.approx(0.5, abs=1e-12)
    assert caps["order_notional_limit"] == pytest.approx(5.0, abs=1e-12)
    assert caps["profile_leverage"] == pytest.approx(6.0, abs=1e-12)  # 3x of equity
    assert out["max_quantity"] == 0.5
    # liquidation distance at 5x: 50,000 x (0.2 - 0.004) = 9,800; the 2,000 stop is inside it
    assert factors["liquidation_distance"] == pytest.approx(9_800.0, abs=1e-9)
    assert "stop_distance_clamped" not in factors


def test_a_short_puts_its_stop_above_and_its_target_below_the_entry():
    out = size_position(SizingRequest(side="short"), FACTS)
    assert (out["stop_loss_price_usd"], out["take_profit_price_usd"]) == (52_000.0, 46_000.0)
    # 1,000 / (2,000 + (50,000 + 52,000) x 0.0005 = 2,051) = 0.48756 -> 0.487
    assert out["quantity"] == 0.487


def test_a_kelly_estimate_caps_the_risk_and_the_volatility_target_caps_the_size():
    facts = replace(FACTS, win_rate=0.35, payoff_ratio=2.0, kelly_source="given")
    out = size_position(SizingRequest(profile="aggressive"), facts)
    # f* = 0.35 - 0.65 / 2 = 0.025; lambda 0.5 -> 0.0125 < the profile's 2 %
    assert out["kelly"]["applied"] is True
    assert out["kelly"]["f_star"] == pytest.approx(0.025, abs=1e-12)
    assert out["risk_fraction_used"] == pytest.approx(0.0125, abs=1e-12)
    # stop 1.5 ATR = 1,500 -> 48,500; take-profit 3 R -> 54,500
    assert (out["stop_loss_price_usd"], out["take_profit_price_usd"]) == (48_500.0, 54_500.0)
    # 1,250 / (1,500 + 98,500 x 0.0005 = 1,549.25) = 0.8068 BTC > the 0.5 BTC volatility cap
    assert out["quantity"] == 0.5 and out["binding_constraint"] == "volatility_target"


def test_a_negative_edge_recommends_nothing():
    out = size_position(SizingRequest(), replace(FACTS, win_rate=0.3, payoff_ratio=2.0))
    assert out["kelly"]["f_star"] == pytest.approx(-0.05, abs=1e-12)
    assert out["quantity"] == 0.0 and out["binding_constraint"] == "min_notional" and out["note"]


def test_the_stop_is_clamped_to_the_largest_stop_and_inside_the_liquidation_price():
    wide = size_position(SizingRequest(stop_atr_multiple=8.0), FACTS)  # 8,000 > 10 % of 50,000
    assert wide["stop_distance_usd"] == pytest.approx(5_000.0) and wide["stop_loss_price_usd"] == 45_000.0
    levered = size_position(SizingRequest(stop_atr_multiple=4.0), replace(FACTS, symbol_leverage=20.0))
    # at 20x the liquidation distance is 50,000 x (0.05 - 0.004) = 2,300; 95 % of it = 2,185
    assert levered["stop_distance_usd"] == pytest.approx(2_185.0, abs=1e-9)


def test_spot_cannot_be_sized_short_and_a_stop_on_the_wrong_side_is_refused():
    with pytest.raises(InvalidArgument) as spot:
        size_position(SizingRequest(side="short"), replace(FACTS, is_perpetual=False, symbol="BTC-USDT"))
    assert spot.value.problems[0].path == "$.side"
    with pytest.raises(InvalidArgument) as wrong:
        size_position(SizingRequest(stop_price_usd=51_000.0), FACTS)
    assert wrong.value.problems[0].path == "$.stop_price_usd"
