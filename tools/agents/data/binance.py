"""Binance spot 1-minute klines over HTTP (httpx), with endpoint failover and 429 backoff.

Endpoints are tried in order (api.binance.com, api1.binance.com, api.binance.us, then any set in
QUANTDESK_BINANCE_URLS, which replaces the list when given); a connection error, a timeout or a 5xx
moves to the next one, a 429 or 418 waits `Retry-After` (bounded) and retries. Gaps in the minute
grid carry the last close forward with zero volume (past values only, so no look-ahead). Funding is
not part of klines: this source reports none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from quantdesk.server.errors import Unavailable
from quantdesk.tools.agents.data.market import MINUTE_MS, MarketData, ProgressFn

DEFAULT_ENDPOINTS = ("https://api.binance.com", "https://api1.binance.com", "https://api.binance.us")
KLINES_LIMIT = 1000
MAX_RETRY_AFTER_SECONDS = 30.0
MAX_RATE_LIMIT_RETRIES = 5


class BinanceKlinesSource:
    name = "binance"

    def __init__(self, endpoints: Sequence[str] = DEFAULT_ENDPOINTS, *, timeout_seconds: float = 10.0,
                 now_ms: Callable[[], int] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint")
        self.endpoints = tuple(e.rstrip("/") for e in endpoints)
        self.timeout_seconds = timeout_seconds
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._sleep = sleep
        self.last_endpoint: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"data_source": "binance", "endpoints": list(self.endpoints), "interval": "1m"}

    def fetch(self, assets: Sequence[str], days_back: int, progress: ProgressFn) -> MarketData:
        import httpx

        end = self._now_ms() // MINUTE_MS * MINUTE_MS
        start = end - days_back * 1440 * MINUTE_MS
        timestamps = np.arange(start, end, MINUTE_MS, dtype=np.int64)
        ohlcv = np.full((timestamps.size, len(assets), 5), np.nan)
        missing: list[str] = []
        with httpx.Client(timeout=self.timeout_seconds) as client:
            for i, asset in enumerate(assets):
                progress(i, len(assets), f"Fetching OHLCV: {i}/{len(assets)} assets")
                rows = self.klines(client, f"{asset}USDT", start, end)
                if rows is None:
                    missing.append(asset)
                    continue
                ohlcv[:, i] = _on_grid(rows, timestamps)
        progress(len(assets), len(assets), f"Fetching OHLCV: {len(assets)}/{len(assets)} assets")
        keep = [i for i, a in enumerate(assets) if a not in missing]
        details = {**self.describe(), "missing_assets": missing, "endpoint_used": self.last_endpoint}
        return MarketData(tuple(assets[i] for i in keep), timestamps, ohlcv[:, keep],
                          np.full((timestamps.size, len(keep)), np.nan), "binance", details)

    def klines(self, client: Any, symbol: str, start_ms: int, end_ms: int) -> list[list[Any]] | None:
        """Every 1-minute kline of `symbol` in [start, end); None when the venue does not list the symbol."""
        out: list[list[Any]] = []
        cursor = start_ms
        while cursor < end_ms:
            params = {"symbol": symbol, "interval": "1m", "startTime": cursor, "endTime": end_ms - 1,
                      "limit": KLINES_LIMIT}
            page = self._get(client, "/api/v3/klines", params)
            if page is None:
                return None
            if not page:
                break
            out.extend(page)
            cursor = int(page[-1][0]) + MINUTE_MS
        return out

    def _get(self, client: Any, path: str, params: dict[str, Any]) -> list[list[Any]] | None:
        import httpx

        errors: list[str] = []
        order = [e for e in ([self.last_endpoint] if self.last_endpoint else [])] + [
            e for e in self.endpoints if e != self.last_endpoint]
        for endpoint in order:
            for _ in range(MAX_RATE_LIMIT_RETRIES + 1):
                try:
                    response = client.get(endpoint + path, params=params)
                except httpx.HTTPError as exc:
                    errors.append(f"{endpoint}: {type(exc).__name__}")
                    break
                if response.status_code in (418, 429):
                    retry = min(float(response.headers.get("Retry-After", "1") or 1), MAX_RETRY_AFTER_SECONDS)
                    self._sleep(retry)
                    continue
                if response.status_code == 400 and _invalid_symbol(response):
                    self.last_endpoint = endpoint
                    return None
                if response.status_code >= 400:
                    errors.append(f"{endpoint}: HTTP {response.status_code}")
                    break
                self.last_endpoint = endpoint
                page: list[list[Any]] = response.json()
                return page
            else:
                errors.append(f"{endpoint}: still rate limited")
        raise Unavailable("no Binance endpoint answered: " + "; ".join(errors))


def _invalid_symbol(response: Any) -> bool:
    try:
        return int(response.json().get("code", 0)) == -1121
    except (ValueError, AttributeError):
        return False


def _on_grid(rows: list[list[Any]], timestamps: np.ndarray[Any, np.dtype[np.int64]]) -> np.ndarray[Any, Any]:
    """Klines placed on the minute grid; a missing minute repeats the previous close with zero volume."""
    out = np.full((timestamps.size, 5), np.nan)
    if rows:
        opens = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
        values = np.asarray([[float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])] for r in rows])
        index = (opens - timestamps[0]) // MINUTE_MS
        ok = (index >= 0) & (index < timestamps.size)
        out[index[ok]] = values[ok]
    close = out[:, 3]
    have = np.isfinite(close)
    last = np.maximum.accumulate(np.where(have, np.arange(close.size), -1))
    filled = np.where(last >= 0, close[np.maximum(last, 0)], np.nan)
    gap = ~have
    for column in range(4):
        out[gap, column] = filled[gap]
    out[gap, 4] = np.where(np.isfinite(filled[gap]), 0.0, np.nan)
    return out
