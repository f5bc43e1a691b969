"""Runs inside the sandbox: load the strategy, walk through time, write embeddings and sampled features.

Self-contained (standard library and numpy only): it is copied into the sandbox's working directory
and started as `python -I -B child.py`. It reads `job.json` and `data.npz` from that directory and
writes `embeddings.npy`, `features.npz` and `result.json` there. The strategy module
(`strategy.py`) subclasses `Featurizer` and `Predictor` from `quantdesk_strategy` (or, as MANTIS
strategies do, from `model_iteration_tool`).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
from typing import Any

import numpy as np

MAX_FEATURE_SAMPLES = 6000
MAX_FEATURE_VALUES = 64


class StrategyError(Exception):
    pass


class CausalView:
    """Data up to the current minute t (inclusive); every method returns a copy.

    `lookback` limits a copy to the last rows (the whole history by default, as in MANTIS).
    """

    __slots__ = ("_t", "_assets", "_ohlcv", "_funding", "_index", "_timestamps")

    def __init__(self, assets: list[str], ohlcv: Any, funding: Any, timestamps: Any) -> None:
        self._t = 0
        self._timestamps = timestamps
        self._assets = list(assets)
        self._ohlcv = ohlcv
        self._funding = funding
        self._index = {a: i for i, a in enumerate(assets)}

    @property
    def t(self) -> int:
        return self._t

    @property
    def assets(self) -> list[str]:
        return list(self._assets)

    def _rows(self, lookback: int | None) -> tuple[int, int]:
        stop = self._t + 1
        start = 0 if lookback is None else max(0, stop - int(lookback))
        return start, stop

    def _column(self, asset: str) -> int:
        try:
            return self._index[asset]
        except KeyError:
            raise KeyError(f"unknown asset {asset!r}; assets: {self._assets}") from None

    def prices(self, asset: str, lookback: int | None = None) -> Any:
        a, b = self._rows(lookback)
        return self._ohlcv[a:b, self._column(asset), 3].copy()

    def ohlcv(self, asset: str, lookback: int | None = None) -> Any:
        a, b = self._rows(lookback)
        return self._ohlcv[a:b, self._column(asset), :].copy()

    def ohlcv_matrix(self, lookback: int | None = None) -> Any:
        """rows x assets x (open, high, low, close, volume) (a quantdesk extension)."""
        a, b = self._rows(lookback)
        return self._ohlcv[a:b].copy()

    def timestamps(self, lookback: int | None = None) -> Any:
        """Bar open times, ms since the epoch (a quantdesk extension)."""
        a, b = self._rows(lookback)
        return self._timestamps[a:b].copy()

    def prices_matrix(self, lookback: int | None = None) -> Any:
        a, b = self._rows(lookback)
        return self._ohlcv[a:b, :, 3].copy()

    def has_funding(self) -> bool:
        return bool(np.isfinite(self._funding).any())

    def funding(self, asset: str, lookback: int | None = None) -> Any:
        a, b = self._rows(lookback)
        return self._funding[a:b, self._column(asset)].copy()

    def funding_matrix(self, lookback: int | None = None) -> Any:
        a, b = self._rows(lookback)
        return self._funding[a:b].copy()

    def has_cg(self) -> bool:
        return self.has_funding()

    def cg_fields(self, asset: str) -> list[str]:
        return ["funding_1h"] if self.has_funding() else []

    def cg(self, asset: str, field: str) -> Any:
        if field != "funding_1h":
            raise KeyError(f"unknown field {field!r}")
        return self.funding(asset)


class Featurizer:
    warmup = 0
    compute_interval = 1

    def setup(self, assets: list[str], total_timesteps: int) -> None:
        pass

    def compute(self, view: CausalView) -> dict[str, Any]:
        raise NotImplementedError


class Predictor:
    def predict(self, features: dict[str, Any]) -> Any:
        raise NotImplementedError


def _install_api() -> None:
    """Make `quantdesk_strategy` and `model_iteration_tool` importable with the classes above."""
    import types

    for name in ("quantdesk_strategy", "model_iteration_tool"):
        module: Any = types.ModuleType(name)
        module.Featurizer, module.Predictor, module.CausalView = Featurizer, Predictor, CausalView
        sys.modules[name] = module


def _pick(module: Any, base: type) -> Any:
    found = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, base) and v is not base
             and getattr(v, "__module__", "") == module.__name__]
    if not found:
        raise StrategyError(f"strategy.py defines no subclass of {base.__name__}")
    return found[-1]


def _flatten(features: Any, t: int) -> dict[str, Any]:
    if not isinstance(features, dict):
        raise StrategyError(f"Featurizer.compute must return a dict of arrays, got {type(features).__name__} "
                            f"at t={t}")
    out = {}
    for key, value in features.items():
        array = np.asarray(value, dtype=np.float64).ravel()
        if array.size <= MAX_FEATURE_VALUES:
            out[str(key)[:64]] = array
    return out


def run(job: dict[str, Any]) -> dict[str, Any]:
    data = np.load("data.npz")
    ohlcv, funding = data["ohlcv"], data["funding"]
    total = ohlcv.shape[0]
    dim = int(job["dim"])
    spec = importlib.util.spec_from_file_location("strategy", "strategy.py")
    if spec is None or spec.loader is None:
        raise StrategyError("strategy.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules["strategy"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise StrategyError(f"strategy.py does not import: {type(exc).__name__}: {exc}") from exc
    featurizer = _pick(module, Featurizer)()
    predictor = _pick(module, Predictor)()
    warmup = int(getattr(featurizer, "warmup", 0) or 0)
    interval = max(1, int(getattr(featurizer, "compute_interval", 1) or 1))
    if warmup < 0 or warmup >= total:
        raise StrategyError(f"warmup {warmup} must lie in [0, {total})")
    view = CausalView(job["assets"], ohlcv, funding, data["timestamps_ms"])
    featurizer.setup(list(job["assets"]), total)
    embeddings = np.full((total, dim), np.nan, dtype=np.float32)
    sample_every = max(1, -(-(total - warmup) // interval // MAX_FEATURE_SAMPLES))
    sample_rows: list[int] = []
    samples: dict[str, list[Any]] = {}
    cache, cache_t, computes = None, 0, 0
    for t in range(warmup, total):
        if cache is None or t - cache_t >= interval:
            view._t = t
            cache = featurizer.compute(view)
            flat = _flatten(cache, t)
            if computes % sample_every == 0:
                sample_rows.append(t)
                for key, value in flat.items():
                    samples.setdefault(key, []).append(value)
            cache_t, computes = t, computes + 1
        emb = np.asarray(predictor.predict(cache), dtype=np.float64).ravel()
        if emb.size != dim:
            raise StrategyError(f"Predictor.predict returned {emb.size} values at t={t}; the challenge needs {dim}")
        embeddings[t] = emb
    np.save("embeddings.npy", embeddings)
    consistent = {k: np.vstack(v) for k, v in samples.items() if len(v) == len(sample_rows)
                  and len({a.size for a in v}) == 1}
    arrays: dict[str, Any] = {"__rows__": np.asarray(sample_rows, dtype=np.int64), **consistent}
    np.savez("features.npz", **arrays)
    return {"warmup": warmup, "compute_interval": interval, "computes": computes, "rows": total}


def main() -> int:
    started = time.perf_counter()
    _install_api()
    try:
        with open("job.json") as handle:
            job = json.load(handle)
        outcome = {"ok": True, **run(job)}
        code = 0
    except StrategyError as exc:
        outcome, code = {"ok": False, "error": str(exc)}, 1
    except MemoryError:
        outcome, code = {"ok": False, "error": "MemoryError: the strategy exceeded the memory limit"}, 1
    except BaseException as exc:  # noqa: BLE001 - every strategy fault becomes a reported failure
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        outcome, code = {"ok": False, "error": "".join(lines[-6:])[-2000:]}, 1
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    try:
        with open("result.json", "w") as handle:
            json.dump(outcome, handle)
    except OSError:
        code = 2
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
