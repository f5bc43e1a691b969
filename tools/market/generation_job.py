"""Generation as a job: cache lookup, the resumable pipeline in a worker thread, progress, publication.

The pipeline is synchronous (it drives processes or a Dask cluster); it runs in a thread so the
job loop stays free. It writes into the job's work folder and records a checkpoint after written
windows, so a job that a server stop interrupted continues from its last checkpoint at the next
start (`resume`); a checkpoint the folder no longer matches makes the job start over, and a
generator whose model version changed since makes it fail (its bytes would differ from the
manifest hash it promised). Cancelling the job sets the pipeline's cancel event and waits,
shielded, until the workers are stopped; nothing is published then.

The job's result is what `generate_dataset` answers (the Aleatoric shape plus counts and hashes).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from quantdesk.schemas.events import EVENT_SCHEMA
from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest
from quantdesk.server.errors import InvalidArgument, Problem, Unavailable
from quantdesk.tools.caches.index import CacheEntry
from quantdesk.tools.caches.service import CacheService
from quantdesk.tools.jobs.kinds import CannotResume, JobContext
from quantdesk.tools.market.pipeline import (
    Checkpoint,
    GenerationCancelled,
    GenerationFailed,
    GenerationReport,
    generate_resumable,
    progress_total,
    usable_checkpoint,
)

WORK_FOLDER = "generation"


def job_arguments(manifest: SimulationManifest, driver: DriverConfig, use_cache: bool) -> dict[str, Any]:
    """What a generation job records: enough to run it again after a restart."""
    return {"config": manifest.canonical(), "driver": driver.model_dump(mode="json"), "use_cache": use_cache,
            "manifest_hash": manifest.manifest_hash(), "model_version": MODEL_VERSION}


def result_of(service: CacheService, entry: CacheEntry, *, cached: bool, elapsed_seconds: float) -> dict[str, Any]:
    """The generate_dataset answer for a published dataset, from its cache entry and manifest."""
    document = service.store.read_manifest(entry.cache_key)
    artifact = service.store.get(entry.cache_key)
    first, last = document.get("time_range_ms", [None, None])
    report = document.get("generation", {})
    return {
        "status": "completed", "job_id": entry.job_id or entry.cache_key, "cache_key": entry.cache_key,
        "cached": cached, "download_url": service.download_url(entry.cache_key),
        "storage_backend": service.store.backend, "row_count": entry.rows,
        "rows_by_event_type": dict(document.get("rows_by_event_type", {})),
        "content_length_bytes": artifact.bytes, "file_sha256": artifact.sha256,
        "manifest_hash": str(entry.manifest_hash), "model_version": document.get("model_version", MODEL_VERSION),
        "first_timestamp_ms": first, "last_timestamp_ms": last, "windows": int(report.get("windows", 0)),
        "retries": int(report.get("retries", 0)), "resumed_windows": int(report.get("resumed_windows", 0)),
        "elapsed_seconds": round(elapsed_seconds, 3),
        "events_per_second": round(entry.rows / elapsed_seconds) if elapsed_seconds > 0 and not cached else None,
        "data_source": "synthetic",
    }


async def run_generation(job: JobContext) -> dict[str, Any]:
    """The `generate_dataset` job kind, for a fresh job and for one resumed after a restart alike."""
    args = job.arguments
    if args.get("model_version") != MODEL_VERSION:
        raise CannotResume(f"the generator changed since the job started ({args.get('model_version')} -> "
                           f"{MODEL_VERSION}); its bytes would not match the manifest hash it was given")
    manifest = SimulationManifest.model_validate(args["config"])
    driver = DriverConfig.model_validate(args["driver"])
    manifest_hash = manifest.manifest_hash()
    service = job.services.get(CacheService)
    total = progress_total(manifest) + 1.0  # the last step: the file published
    started = time.perf_counter()
    async with service.async_lock_for(manifest_hash):
        entry = service.index.find_dataset(manifest_hash)
        if entry is not None and args.get("use_cache", True):
            job.report(total, total, "served from the cache")
            return result_of(service, entry, cached=True, elapsed_seconds=0.0)
        if entry is not None:
            service.delete(entry.cache_key)
        report = await _generate(job, manifest, driver, total)
        generation = {"job_id": job.job_id, "windows": report.windows, "retries": report.retries,
                      "row_groups": report.row_groups, "resumed_windows": report.resumed_windows,
                      "elapsed_seconds": round(time.perf_counter() - started, 3),
                      "driver": driver.model_dump(mode="json")}
        document = {"config": manifest.canonical(), "manifest_hash": manifest_hash, "model_version": MODEL_VERSION,
                    "schema": EVENT_SCHEMA.to_string(show_schema_metadata=False).splitlines(),
                    "file_sha256": report.sha256, "generation": generation, "data_source": "synthetic"}
        with service.staging(job.job_id) as staged:
            _move(report.path, staged)
            entry, _ = service.publish(staged, job.job_id, "dataset", document, manifest_hash=manifest_hash,
                                       job_id=job.job_id, symbol=manifest.symbol, source="synthetic")
        job.report(total, total, "published")
        return result_of(service, entry, cached=False, elapsed_seconds=time.perf_counter() - started)


def _move(source: str, target: os.PathLike[str]) -> None:
    try:
        os.replace(source, target)
    except OSError:  # the work folder and the artifacts on different filesystems
        shutil.copyfile(source, target)
        os.unlink(source)


async def _generate(job: JobContext, manifest: SimulationManifest, driver: DriverConfig,
                    total: float) -> GenerationReport:
    work = job.workdir / WORK_FOLDER
    checkpoint = Checkpoint.from_dict(job.checkpoint) if job.checkpoint else None
    cancel, finished = threading.Event(), threading.Event()

    def on_progress(done: float, steps: float) -> None:
        job.report(done, total, f"{done / steps:.0%} of the blocks generated and encoded")

    def on_checkpoint(point: Checkpoint) -> None:
        job.save_checkpoint(point.as_dict())

    def work_from(start: Checkpoint | None) -> Callable[[], GenerationReport]:
        def run() -> GenerationReport:
            try:
                return generate_resumable(manifest, driver, work, checkpoint=start, on_checkpoint=on_checkpoint,
                                          on_progress=on_progress, cancel=cancel)
            finally:
                finished.set()

        return run

    if checkpoint is not None and (problem := usable_checkpoint(work, checkpoint)) is not None:
        # the files no longer match what was recorded (a disk that lost its tail, say): start over
        job.report(0.0, total, f"starting over: {problem}")
        shutil.rmtree(work, ignore_errors=True)
        checkpoint = None
    try:
        return await anyio.to_thread.run_sync(work_from(checkpoint), abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        cancel.set()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(finished.wait)
        raise
    except GenerationCancelled:
        raise Unavailable("the generation job was cancelled") from None
    except GenerationFailed as exc:
        raise Unavailable(f"generation failed in window {exc.window} after {driver.max_retries} retries: "
                          f"{exc}") from None
    except ValueError as exc:
        raise InvalidArgument.from_problems([Problem("$.config", str(exc))]) from None
    except OSError as exc:
        raise Unavailable(f"could not write the dataset: {exc.strerror or type(exc).__name__}") from None

