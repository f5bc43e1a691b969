"""What the generation engine costs a process before it makes anything: no scipy, the same numbers without it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import lfilter

from quantdesk.tools.market.coarse import ar1_path


@pytest.mark.parametrize("phi", [0.93, 0.996, 0.99993, 0.5, 1e-9])
def test_the_volatility_recursion_is_lfilter_to_the_bit(phi: float) -> None:
    x = np.random.default_rng(1).standard_normal(3600) * 0.1
    assert ar1_path(phi, x, 0.3).tobytes() == lfilter([1.0], [1.0, -phi], x, zi=[phi * 0.3])[0].tobytes()


def test_the_generation_engine_does_not_import_scipy() -> None:
    # scipy.signal alone costs a process 0.8 s, paid by the server and again by every pool's forkserver
    code = ("import sys, quantdesk.tools.market.pipeline, quantdesk.tools.market.worker_process;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'matplotlib', 'dask')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_tools_modules_import_no_engine_and_no_heavy_library() -> None:
    # `quantdesk tools` and the stdio server import every tools.py: the engines wait for a call that needs them
    code = ("import sys, quantdesk.tools.market.tools, quantdesk.tools.jobs.tools;"
            "heavy = ('numpy', 'pyarrow', 'scipy', 'matplotlib', 'dask', 'distributed', 'pandas');"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy"
            " or m.startswith(('quantdesk.tools.market.pipeline', 'quantdesk.tools.market.executors',"
            " 'quantdesk.tools.market.coarse', 'quantdesk.tools.market.stylized', 'quantdesk.tools.market.plot'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
