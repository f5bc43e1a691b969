"""A generation job as the tools run it: cache lookup, the pipeline in a worker thread, progress, cancellation.

The pipeline is synchronous (it drives processes or a Dask cluster); it runs in a thread so the
server stays responsive. Progress crosses back to the event loop after every window. Cancelling
the calling task sets the pipeline's cancel event and waits, shielded, until the pipeline has
removed its temporary file, so a cancelled or failed job never leaves a partial artifact.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest
from quantdesk.server.errors import InvalidArgument, Problem, Unavailable
from quantdesk.tools.caches.index import CacheEntry
from quantdesk.tools.caches.service import CacheService
from quantdesk.tools.caches.store import Artifact
from quantdesk.tools.market.pipeline import GenerationCancelled, GenerationFailed, generate_to_parquet

Progress = Callable[[float, float | None, str | None], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    job_id: str
    entry: CacheEntry
    artifact: Artifact
    manifest_hash: str
    cached: bool
    windows: int
    retries: int
    elapsed_seconds: float
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None
    rows_by_event_type: dict[str, int]


def new_job_id() -> str:
    return f"qd_gen_{secrets.token_hex(8)}"


def _from_cache(service: CacheService, entry: CacheEntry) -> JobOutcome:
    manifest = service.store.read_manifest(entry.cache_key)
    first, last = manifest.get("time_range_ms", [None, None])
    report = manifest.get("generation", {})
    return JobOutcome(entry.job_id or entry.cache_key, entry, service.store.get(entry.cache_key),
                      str(entry.manifest_hash), True, int(report.get("windows", 0)), int(report.get("retries", 0)),
                      0.0, first, last, dict(manifest.get("rows_by_event_type", {})))


async def run_generation(service: CacheService, manifest: SimulationManifest, driver: DriverConfig,
                         progress: Progress, *, use_cache: bool = True) -> JobOutcome:
    manifest_hash = manifest.manifest_hash()
    async with service.async_lock_for(manifest_hash):
        if use_cache and (entry := service.index.find_dataset(manifest_hash)) is not None:
            await progress(1, 1, "served from the cache")
            return _from_cache(service, entry)
        if not use_cache and (old := service.index.find_dataset(manifest_hash)) is not None:
            service.delete(old.cache_key)
        return await _generate(service, manifest, manifest_hash, driver, progress)


async def _generate(service: CacheService, manifest: SimulationManifest, manifest_hash: str, driver: DriverConfig,
                    progress: Progress) -> JobOutcome:
    job_id = new_job_id()
    service.index.start_job(job_id, "generate_dataset", manifest_hash)
    cancel, finished = threading.Event(), threading.Event()
    started = time.perf_counter()

    def on_window(done: int, total: int) -> None:
        try:
            anyio.from_thread.run(progress, done, total, f"window {done} of {total} written")
        except Exception:  # a client that went away must not fail the job; cancellation arrives separately
            pass

    with service.staging(job_id) as staged:
        def work() -> Any:
            try:
                return generate_to_parquet(manifest, driver, staged, on_window=on_window, cancel=cancel)
            finally:
                finished.set()

        try:
            report = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            cancel.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait)
                service.index.finish_job(job_id, "cancelled", error="cancelled by the caller")
            raise
        except GenerationCancelled:
            service.index.finish_job(job_id, "cancelled", error="cancelled")
            raise Unavailable("the generation job was cancelled") from None
        except GenerationFailed as exc:
            service.index.finish_job(job_id, "failed", error=str(exc))
            raise Unavailable(f"generation failed in window {exc.window} after "
                              f"{driver.max_retries} retries: {exc}") from None
        except ValueError as exc:
            service.index.finish_job(job_id, "failed", error=str(exc))
            raise InvalidArgument.from_problems([Problem("$.config", str(exc))]) from None
        except OSError as exc:
            service.index.finish_job(job_id, "failed", error=exc.strerror or type(exc).__name__)
            raise Unavailable(f"could not write the dataset: {exc.strerror or type(exc).__name__}") from None
        elapsed = time.perf_counter() - started
        generation = {"job_id": job_id, "windows": report.windows, "retries": report.retries,
                      "row_groups": report.row_groups, "elapsed_seconds": round(elapsed, 3),
                      "driver": driver.model_dump(mode="json")}
        document = {"config": manifest.canonical(), "manifest_hash": manifest_hash, "model_version": MODEL_VERSION,
                    "schema": EVENT_SCHEMA.to_string(show_schema_metadata=False).splitlines(),
                    "file_sha256": report.sha256, "generation": generation, "data_source": "synthetic"}
        entry, artifact = service.publish(staged, job_id, "dataset", document, manifest_hash=manifest_hash,
                                          job_id=job_id, symbol=manifest.symbol, source="synthetic")
    service.index.finish_job(job_id, "completed", cache_key=job_id, report=generation)
    return JobOutcome(job_id, entry, artifact, manifest_hash, False, report.windows, report.retries, elapsed,
                      report.first_timestamp_ms, report.last_timestamp_ms, dict(report.rows_by_event_type))
