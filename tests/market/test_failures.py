"""Retries, worker crashes, cancellation and output errors: the job ends cleanly and leaves no partial file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market.faults import FAULTS_DIR_VARIABLE, FAULTS_VARIABLE
from quantdesk.tools.market.pipeline import GenerationCancelled, GenerationFailed, generate_to_parquet


@pytest.fixture
def fail_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Faults set through QUANTDESK_MARKET_FAULTS fire once each (markers go here)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(FAULTS_DIR_VARIABLE, str(markers))
    return markers


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def _reference(manifest: SimulationManifest, directory: Path) -> bytes:
    out = directory / "reference.parquet"
    generate_to_parquet(manifest, DriverConfig(workers=1, window_seconds=60), out)
    data = out.read_bytes()
    out.unlink()
    return data


@pytest.mark.parametrize("workers", [1, 2])
def test_a_window_that_fails_once_is_retried_and_the_bytes_do_not_change(
        busy_manifest: SimulationManifest, out_dir: Path, fail_once: Path, monkeypatch: pytest.MonkeyPatch,
        workers: int) -> None:
    reference = _reference(busy_manifest, out_dir)
    monkeypatch.setenv(FAULTS_VARIABLE, "raise:1,raise:2")
    out = out_dir / "retried.parquet"
    report = generate_to_parquet(busy_manifest, DriverConfig(workers=workers, window_seconds=60,
                                                             backoff_seconds=0.01), out)
    assert report.retries == 2
    assert out.read_bytes() == reference
    assert sorted(p.name for p in fail_once.iterdir()) == ["raise-1", "raise-2"]


def test_a_crashed_worker_is_replaced_and_its_window_retried(busy_manifest: SimulationManifest, out_dir: Path,
                                                             fail_once: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _reference(busy_manifest, out_dir)
    monkeypatch.setenv(FAULTS_VARIABLE, "exit:2")
    out = out_dir / "crashed.parquet"
    report = generate_to_parquet(busy_manifest, DriverConfig(workers=2, window_seconds=60, backoff_seconds=0.01), out)
    assert report.retries >= 1
    assert out.read_bytes() == reference


@pytest.mark.parametrize("workers", [1, 2])
def test_a_window_that_keeps_failing_fails_the_job_and_leaves_nothing(
        busy_manifest: SimulationManifest, out_dir: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setenv(FAULTS_VARIABLE, "raise:1")
    with pytest.raises(GenerationFailed) as failure:
        generate_to_parquet(busy_manifest, DriverConfig(workers=workers, window_seconds=60, max_retries=2,
                                                        backoff_seconds=0.0), out_dir / "failed.parquet")
    assert failure.value.window == 1
    assert list(out_dir.iterdir()) == []


def test_cancelling_between_windows_leaves_nothing(busy_manifest: SimulationManifest, out_dir: Path) -> None:
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def on_window(done: int, total: int) -> None:
        seen.append((done, total))
        cancel.set()

    with pytest.raises(GenerationCancelled):
        generate_to_parquet(busy_manifest, DriverConfig(workers=1, window_seconds=60), out_dir / "c.parquet",
                            on_window=on_window, cancel=cancel)
    assert seen[0] == (1, 4) and len(seen) < 4
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("backend", ["process", "dask"])
def test_cancelling_a_stuck_window_stops_the_workers(busy_manifest: SimulationManifest, out_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.delenv("QUANTDESK_DASK_ADDRESS", raising=False)
    monkeypatch.setenv(FAULTS_VARIABLE, "hang:1")
    cancel = threading.Event()
    with pytest.raises(GenerationCancelled):
        # window 1 sleeps for an hour; the first finished window triggers the cancel
        generate_to_parquet(busy_manifest, DriverConfig(workers=2, window_seconds=60, backend=backend),
                            out_dir / "stuck.parquet", on_window=lambda done, total: cancel.set(), cancel=cancel)
    assert list(out_dir.iterdir()) == []


def test_an_output_directory_that_is_a_file_fails_cleanly(short_manifest: SimulationManifest, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(OSError):
        generate_to_parquet(short_manifest, DriverConfig(workers=1), blocker / "out.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-directory"]


def test_an_unwritable_directory_fails_cleanly(short_manifest: SimulationManifest, out_dir: Path) -> None:
    if os.geteuid() == 0:
        # root ignores permission bits; the immutable attribute stops root too
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(out_dir)]).returncode != 0:
            pytest.skip("running as root without a working chattr")
    else:
        out_dir.chmod(0o555)
    try:
        with pytest.raises(PermissionError):
            generate_to_parquet(short_manifest, DriverConfig(workers=1), out_dir / "out.parquet")
        assert list(out_dir.iterdir()) == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(out_dir)], check=True)
        else:
            out_dir.chmod(0o755)


def test_a_full_disk_fails_cleanly_and_removes_the_temporary_file(out_dir: Path) -> None:
    # RLIMIT_FSIZE makes writes past 256 KiB fail with EFBIG, as a full disk fails with ENOSPC, mid-file
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
        from quantdesk.schemas.generation import DriverConfig
        from quantdesk.schemas.manifest import SimulationManifest
        from quantdesk.tools.market.pipeline import generate_to_parquet
        manifest = SimulationManifest(duration_seconds=900, trade_rate_per_second=1000.0, num_levels=5, seed=7)
        try:
            generate_to_parquet(manifest, DriverConfig(workers=1, window_seconds=60), {str(out_dir / "big.parquet")!r})
        except OSError as exc:
            print("OSError", exc.errno)
            sys.exit(0)
        sys.exit("the write did not fail")
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OSError")
    assert list(out_dir.iterdir()) == []


def test_an_impossible_manifest_is_refused_before_any_file(out_dir: Path) -> None:
    manifest = SimulationManifest(volatility_annual=0.05, jump_intensity_per_hour=100.0, jump_std_bps=50.0)
    with pytest.raises(ValueError, match="jumps"):
        generate_to_parquet(manifest, DriverConfig(workers=2), out_dir / "x.parquet")
    assert list(out_dir.iterdir()) == []
