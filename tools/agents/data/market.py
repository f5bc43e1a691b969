"""`MarketData`: minute OHLCV bars and funding rates for a set of assets on one shared minute grid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MINUTE_MS = 60_000
OHLCV = ("open", "high", "low", "close", "volume")
ProgressFn = Callable[[int, int, str], None]
"""`progress(step, total_steps, message)`."""


@dataclass(frozen=True, slots=True)
class MarketData:
    """Rows are minutes (`timestamps_ms` = bar open times), columns assets.

    `ohlcv[t, i]` = open, high, low, close, volume of asset i in minute t; `funding[t, i]` = the latest
    funding rate settled at or before the close of minute t (NaN when the source has none).
    """

    assets: tuple[str, ...]
    timestamps_ms: IntArray
    ohlcv: FloatArray
    funding: FloatArray
    data_source: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.timestamps_ms.shape[0])

    def close(self, asset: str) -> FloatArray:
        out: FloatArray = self.ohlcv[:, self.assets.index(asset), 3]
        return out

    def closes(self) -> FloatArray:
        out: FloatArray = self.ohlcv[:, :, 3]
        return out

    def has_funding(self, assets: Sequence[str]) -> bool:
        columns = [self.assets.index(a) for a in assets if a in self.assets]
        return bool(columns) and bool(np.isfinite(self.funding[:, columns]).any())

    def select(self, assets: Sequence[str]) -> MarketData:
        """Only these assets (those the data has), in this order."""
        chosen = [a for a in assets if a in self.assets]
        columns = [self.assets.index(a) for a in chosen]
        return MarketData(tuple(chosen), self.timestamps_ms, self.ohlcv[:, columns], self.funding[:, columns],
                          self.data_source, self.details)

    def head(self, rows: int) -> MarketData:
        """The first `rows` minutes: what a strategy may see when the rest is held out."""
        return MarketData(self.assets, self.timestamps_ms[:rows], self.ohlcv[:rows], self.funding[:rows],
                          self.data_source, self.details)


class MarketDataSource(Protocol):
    """Where minute bars come from: quantdesk's generator (embedded default) or a venue's public API."""

    name: str

    def fetch(self, assets: Sequence[str], days_back: int, progress: ProgressFn) -> MarketData: ...

    def describe(self) -> dict[str, Any]: ...
