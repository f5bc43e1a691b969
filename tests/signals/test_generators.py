"""Each generator's rule on hand-made inputs: what fires, which way, how strong, and with which layer's TTL."""

from __future__ import annotations

import numpy as np
import pytest

from quantdesk.tools.signals.generators import (
    GENERATORS,
    FundingCarry,
    MarketContext,
    MeanReversion,
    Momentum,
    RegimeSignal,
)
from quantdesk.tools.signals.model import LAYER_TTL_SECONDS


def ctx(prices: list[float], **kwargs: object) -> MarketContext:
    return MarketContext("BTC-USDT-PERP", 0, np.asarray(prices, dtype=np.float64), **kwargs)  # type: ignore[arg-type]


def test_the_registry_and_the_layers_ttls():
    assert set(GENERATORS) == {"momentum", "mean_reversion", "funding_carry", "regime"}
    assert LAYER_TTL_SECONDS == {"scalping": 300, "momentum": 1800, "mean_reversion": 3600, "investor": 86_400}
    assert {g.layer for g in GENERATORS.values()} <= set(LAYER_TTL_SECONDS)


def test_momentum_follows_a_trend_and_needs_its_lookback():
    up = [100.0 * 1.001**i for i in range(21)]
    draft = Momentum().generate(ctx(up))
    assert draft is not None and draft.direction == "long" and draft.strength > 0.99 and draft.confidence == 1.0
    down = Momentum().generate(ctx(up[::-1]))
    assert down is not None and down.direction == "short"
    assert Momentum().generate(ctx(up[:20])) is None  # 20 prices: one short of the lookback
    wiggle = [100.0 + (0.1 if i % 2 else -0.1) for i in range(21)]
    assert Momentum().generate(ctx(wiggle)) is None  # no net move: |z| below the threshold


def test_mean_reversion_fades_a_spike_but_distrusts_a_trend():
    flat = [100.0 + (0.1 if i % 2 else -0.1) for i in range(19)]
    spike = MeanReversion().generate(ctx([*flat, 101.0]))
    assert spike is not None and spike.direction == "short" and spike.confidence > 0.5
    dip = MeanReversion().generate(ctx([*flat, 99.0]))
    assert dip is not None and dip.direction == "long"
    trend = MeanReversion().generate(ctx([100.0 + i for i in range(20)]))
    assert trend is not None and trend.confidence < 0.05  # a z-score in a straight line is momentum


def test_funding_carry_takes_the_receiving_side_past_its_threshold():
    periods = 3 * 365
    assert FundingCarry().generate(ctx([100.0], funding_rate=0.0001, funding_periods_per_year=periods)) is None
    paid = FundingCarry().generate(ctx([100.0], funding_rate=0.0003, funding_periods_per_year=periods))
    assert paid is not None and paid.direction == "short"
    assert paid.strength == pytest.approx(0.0003 * periods / 0.60)
    received = FundingCarry().generate(ctx([100.0], funding_rate=-0.0005, funding_periods_per_year=periods))
    assert received is not None and received.direction == "long"
    assert FundingCarry().generate(ctx([100.0])) is None  # spot: no funding


@pytest.mark.parametrize(("regime", "direction"), [("BULL", "long"), ("BEAR", "short"), ("CRISIS", "short"),
                                                   ("SIDEWAYS", None), ("HIGH_VOLATILITY", None), (None, None)])
def test_regime_signal_reads_the_label(regime, direction):
    draft = RegimeSignal().generate(ctx([100.0], regime=regime, regime_confidence=0.8))
    assert (draft.direction if draft else None) == direction
    if draft:
        assert draft.confidence == 0.8
