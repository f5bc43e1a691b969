"""A resumable generation continues from its checkpoint to the very bytes of an uninterrupted one."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market import pipeline
from quantdesk.tools.market.pipeline import (
    GROUPS_NAME,
    PARTIAL_NAME,
    Checkpoint,
    GenerationCancelled,
    generate_resumable,
    generate_to_parquet,
    usable_checkpoint,
)


@pytest.fixture
def every_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint after every written window (not at most once a second), so tests see each one."""
    monkeypatch.setattr(pipeline, "_CHECKPOINT_SECONDS", 0.0)


@pytest.fixture
def hour(tmp_path: Path) -> tuple[SimulationManifest, bytes]:
    """A busy hour in seven row-group units, and its file made in one go."""
    manifest = SimulationManifest(duration_seconds=3600, trade_rate_per_second=500.0, seed=9)
    out = tmp_path / "reference.parquet"
    generate_to_parquet(manifest, DriverConfig(workers=1), out)
    return manifest, out.read_bytes()


def _interrupted(manifest: SimulationManifest, driver: DriverConfig, work: Path, after: int) -> Checkpoint:
    """Run until `after` windows are written, then cancel: the last checkpoint, as a stopped server leaves it."""
    points: list[Checkpoint] = []
    cancel = threading.Event()

    def on_checkpoint(point: Checkpoint) -> None:
        points.append(point)
        if point.windows_written >= after:
            cancel.set()

    with pytest.raises(GenerationCancelled):
        generate_resumable(manifest, driver, work, on_checkpoint=on_checkpoint, cancel=cancel)
    assert points and points[-1].windows_written >= after
    return points[-1]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_resumed_from_its_checkpoint_writes_the_same_bytes(every_window: None, hour: tuple, tmp_path: Path,
                                                                  workers: int) -> None:
    manifest, reference = hour
    driver = DriverConfig(workers=workers, window_seconds=60)
    work = tmp_path / "work"
    point = _interrupted(manifest, driver, work, after=3)
    report = generate_resumable(manifest, driver, work, checkpoint=point)
    assert report.resumed_windows == point.windows_written > 0
    assert Path(report.path).read_bytes() == reference
    assert report.row_groups == 7 and report.sha256 == hashlib.sha256(reference).hexdigest()


def test_what_was_written_after_the_checkpoint_is_cut_off_and_made_again(every_window: None, hour: tuple,
                                                                         tmp_path: Path) -> None:
    manifest, reference = hour
    driver = DriverConfig(workers=1, window_seconds=60)
    work = tmp_path / "work"
    point = _interrupted(manifest, driver, work, after=2)
    with open(work / PARTIAL_NAME, "ab") as partial, open(work / GROUPS_NAME, "ab") as groups:
        partial.write(b"half a window that a kill interrupted" * 100)
        groups.write(b"\x07\x00\x00\x00partial")
    report = generate_resumable(manifest, driver, work, checkpoint=point)
    assert Path(report.path).read_bytes() == reference


def test_a_checkpoint_its_files_no_longer_match_is_refused_with_the_reason(every_window: None, hour: tuple,
                                                                            tmp_path: Path) -> None:
    manifest, _ = hour
    work = tmp_path / "work"
    point = _interrupted(manifest, DriverConfig(workers=1, window_seconds=60), work, after=2)
    assert usable_checkpoint(work, point) is None
    assert "generator changed" in str(usable_checkpoint(work, replace(point, model_version="older/1")))
    data = bytearray((work / PARTIAL_NAME).read_bytes())
    data[100] ^= 0xFF
    (work / PARTIAL_NAME).write_bytes(bytes(data))
    assert "does not match" in str(usable_checkpoint(work, point))
    with pytest.raises(ValueError, match="cannot resume"):
        generate_resumable(manifest, DriverConfig(workers=1), work, checkpoint=point)
    (work / PARTIAL_NAME).write_bytes(bytes(data[:50]))
    assert "shorter" in str(usable_checkpoint(work, point))


def test_checkpoints_round_trip_through_json(every_window: None, hour: tuple, tmp_path: Path) -> None:
    import json

    manifest, _ = hour
    point = _interrupted(manifest, DriverConfig(workers=1, window_seconds=60), tmp_path / "work", after=1)
    assert Checkpoint.from_dict(json.loads(json.dumps(point.as_dict()))) == point
