"""The AR(1) recursion gives the same bytes through lfilter (long paths) and through the Python loop."""

from __future__ import annotations

import numpy as np
import pytest

from quantdesk.tools.market import coarse


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.97, 0.99999])
def test_lfilter_and_the_python_recursion_agree_to_the_bit(monkeypatch, phi):
    innovations = np.random.default_rng(7).standard_normal(20_000)
    monkeypatch.setattr(coarse, "LFILTER_FROM_STEPS", 0)
    through_lfilter = coarse.ar1_path(phi, innovations, 0.25)
    monkeypatch.setattr(coarse, "LFILTER_FROM_STEPS", 10**9)
    monkeypatch.delitem(__import__("sys").modules, "scipy.signal", raising=False)
    through_python = coarse.ar1_path(phi, innovations, 0.25)
    assert through_lfilter.tobytes() == through_python.tobytes()
