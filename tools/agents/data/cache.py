"""The data cache: one Parquet artifact per (source, days back), prefetched in the background with progress.

Files go through the artifact store of tools/caches (staging, fsync, atomic rename, a manifest JSON
beside each file). One prefetch runs at a time; deleting while it runs, or starting a second one, is a
Conflict. A synthetic dataset never goes stale (same seed, same numbers); a venue's is refreshed by
a new prefetch.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from quantdesk.server.errors import Conflict, NotFound
from quantdesk.tools.agents.data.market import MarketData, MarketDataSource
from quantdesk.tools.caches.store import ArtifactStore

STANDARD_DAYS = (60, 90, 120, 180)
SCHEMA_VERSION = 1


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class PrefetchStatus:
    running: bool = False
    progress: str = ""
    step: int = 0
    total_steps: int = 0
    error: str | None = None
    finished_at: str | None = None
    days_back: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"running": self.running, "progress": self.progress, "step": self.step,
                "total_steps": self.total_steps, "error": self.error, "finished_at": self.finished_at,
                "days_back": self.days_back}


class DataCache:
    def __init__(self, store: ArtifactStore, source: MarketDataSource, assets: tuple[str, ...]) -> None:
        self.store = store
        self.source = source
        self.assets = assets
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._status = PrefetchStatus()
        self._thread: threading.Thread | None = None
        self._memo: tuple[int, str, MarketData] | None = None

    def name(self, days_back: int) -> str:
        return f"agents-bars-{self.source.name}-{days_back}d"

    # --- status -------------------------------------------------------------------------------

    def entry(self, days_back: int) -> dict[str, Any]:
        try:
            manifest = self.store.read_manifest(self.name(days_back))
            self.store.get(self.name(days_back))
        except NotFound:
            return {"cached": False}
        created = datetime.fromisoformat(str(manifest["created_at"]).replace("Z", "+00:00"))
        return {"cached": True, "assets": len(manifest["assets"]), "has_coinglass": False,
                "age_hours": round((datetime.now(UTC) - created).total_seconds() / 3600.0, 2),
                "data_source": manifest["data_source"], "rows": manifest["rows"],
                "bytes": manifest.get("content_length_bytes", 0), "cache_key": self.name(days_back)}

    def entries(self, extra_days: tuple[int, ...] = ()) -> dict[int, dict[str, Any]]:
        return {days: self.entry(days) for days in sorted({*STANDARD_DAYS, *extra_days})}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._status.as_dict()

    # --- prefetch ------------------------------------------------------------------------------

    def start_prefetch(self, days_back: int) -> None:
        with self._lock:
            if self._status.running:
                raise Conflict(f"a prefetch of {self._status.days_back} days is already running")
            self._status = PrefetchStatus(running=True, progress="starting", days_back=days_back)
            self._thread = threading.Thread(target=self._prefetch, args=(days_back,), daemon=True,
                                            name=f"agents-prefetch-{days_back}")
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _prefetch(self, days_back: int) -> None:
        try:
            self.build(days_back, self._report)
        except Exception as exc:  # noqa: BLE001 - a failed prefetch is reported in its status
            with self._lock:
                self._status.error = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            with self._lock:
                self._status.running = False
                self._status.finished_at = _now_iso()
                if self._status.error is None:
                    self._status.progress = "done"

    def _report(self, step: int, total: int, message: str) -> None:
        with self._lock:
            self._status.step, self._status.total_steps, self._status.progress = step, total, message

    def delete(self, days_back: int) -> bool:
        with self._lock:
            if self._status.running:
                raise Conflict("a prefetch is running; delete after it finishes")
            self._memo = None
            return self.store.delete(self.name(days_back))

    # --- build and load ------------------------------------------------------------------------

    def build(self, days_back: int, progress: Callable[[int, int, str], None]) -> MarketData:
        data = self.source.fetch(self.assets, days_back, progress)
        self._write(days_back, data)
        return data

    def load(self, days_back: int, progress: Callable[[int, int, str], None] | None = None) -> MarketData:
        """The cached dataset, built first when missing (agents call this; one build at a time)."""
        name = self.name(days_back)
        with self._load_lock:
            try:
                artifact = self.store.get(name)
            except NotFound:
                return self.build(days_back, progress or (lambda *_: None))
            memo = self._memo
            if memo is not None and memo[0] == days_back and memo[1] == artifact.sha256:
                return memo[2]
            data = _read(artifact.path, self.store.read_manifest(name))
            self._memo = (days_back, artifact.sha256, data)
            return data

    def load_assets(self, days_back: int, assets: tuple[str, ...],
                    progress: Callable[[int, int, str], None] | None = None) -> MarketData:
        """These assets only: from the full entry when it exists, else from (or into) an entry of just them.

        A source's assets do not depend on which others are fetched with them (the synthetic market
        factor is BTC's own path), so a subset entry holds the same numbers as the full one.
        """
        try:
            self.store.get(self.name(days_back))
            return self.load(days_back, progress).select(assets)
        except NotFound:
            pass
        key = hashlib.sha256(",".join(sorted(assets)).encode()).hexdigest()[:8]
        name = f"{self.name(days_back)}-{key}"
        with self._load_lock:
            try:
                artifact = self.store.get(name)
                return _read(artifact.path, self.store.read_manifest(name)).select(assets)
            except NotFound:
                data = self.source.fetch(assets, days_back, progress or (lambda *_: None))
                self._write(days_back, data, name=name)
                return data.select(assets)

    def _write(self, days_back: int, data: MarketData, name: str | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows, n = data.rows, len(data.assets)
        columns: dict[str, Any] = {
            "timestamp_ms": np.tile(data.timestamps_ms, n),
            "asset": pa.DictionaryArray.from_arrays(np.repeat(np.arange(n, dtype=np.int32), rows),
                                                    pa.array(list(data.assets))),
        }
        for k, field in enumerate(("open", "high", "low", "close", "volume")):
            columns[field] = data.ohlcv[:, :, k].T.reshape(-1)
        columns["funding_rate"] = data.funding.T.reshape(-1)
        table = pa.table(columns)
        name = name or self.name(days_back)
        manifest = {"kind": "agents_bars", "schema_version": SCHEMA_VERSION, "data_source": data.data_source,
                    "days_back": days_back, "assets": list(data.assets), "rows": rows,
                    "first_timestamp_ms": int(data.timestamps_ms[0]) if rows else None,
                    "created_at": _now_iso(), "details": data.details, "generated_at_unix": time.time()}
        with self.store.staging(name) as staged:
            pq.write_table(table, staged, compression="zstd")
            self.store.commit(staged, name, manifest)
        with self._lock:
            self._memo = None


def _read(path: Any, manifest: dict[str, Any]) -> MarketData:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assets = tuple(manifest["assets"])
    rows, n = int(manifest["rows"]), len(assets)
    ohlcv = np.empty((rows, n, 5))
    for k, field in enumerate(("open", "high", "low", "close", "volume")):
        ohlcv[:, :, k] = table.column(field).to_numpy().reshape(n, rows).T
    funding = table.column("funding_rate").to_numpy(zero_copy_only=False).astype(np.float64).reshape(n, rows).T
    timestamps = table.column("timestamp_ms").to_numpy()[:rows].astype(np.int64)
    return MarketData(assets, timestamps, ohlcv, np.ascontiguousarray(funding), str(manifest["data_source"]),
                      dict(manifest.get("details", {})))
