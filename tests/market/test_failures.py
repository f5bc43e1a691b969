"""Retries, worker crashes, cancellation and output errors: the job ends cleanly and leaves no partial file."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest
from quantdesk.tools.market import pipeline, pools
from quantdesk.tools.market.faults import FAULTS_DIR_VARIABLE, FAULTS_VARIABLE
from quantdesk.tools.market.pipeline import GenerationCancelled, GenerationFailed, generate_to_parquet
from quantdesk.tools.market.pools import close_idle_pools


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


@pytest.fixture(autouse=True)
def spill_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Pool workers hand their row groups over here; whatever happens, a finished job leaves nothing in it."""
    directory = tmp_path_factory.mktemp("spill")
    monkeypatch.setattr(pipeline, "SPILL_DIRECTORY", directory)
    yield directory
    assert list(directory.iterdir()) == []


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


def test_a_finished_job_hands_its_warm_pool_to_the_next_and_a_cancelled_one_does_not(
        busy_manifest: SimulationManifest, out_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    close_idle_pools()
    started: list[int] = []
    start = pools.WarmPool._start
    monkeypatch.setattr(pools.WarmPool, "_start", lambda self: (started.append(1), start(self))[1])
    driver = DriverConfig(workers=2, window_seconds=60)
    first = generate_to_parquet(busy_manifest, driver, out_dir / "a.parquet")
    second = generate_to_parquet(busy_manifest, driver, out_dir / "b.parquet")
    assert len(started) == 1 and first.sha256 == second.sha256
    cancel = threading.Event()
    with pytest.raises(GenerationCancelled):
        generate_to_parquet(busy_manifest, driver, out_dir / "c.parquet", on_window=lambda done, total: cancel.set(),
                            cancel=cancel)
    generate_to_parquet(busy_manifest, driver, out_dir / "d.parquet")
    assert len(started) == 2


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            out |= {int(child)} | _descendants(int(child))
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists() or not hasattr(os, "pidfd_open"),
                    reason="finds and watches the workers through /proc and pidfds (Linux)")
def test_warm_workers_exit_when_the_process_that_started_them_is_killed(out_dir: Path) -> None:
    script = out_dir / "killed.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        from quantdesk.schemas.generation import DriverConfig
        from quantdesk.schemas.manifest import SimulationManifest
        from quantdesk.tools.market.pipeline import generate_to_parquet
        if __name__ == "__main__":
            generate_to_parquet(SimulationManifest(duration_seconds=120, seed=1),
                                DriverConfig(workers=2, window_seconds=60), {str(out_dir / "k.parquet")!r})
            print("ready", flush=True)
            sys.stdin.readline()
            os.kill(os.getpid(), signal.SIGKILL)
        """))
    parent = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        pool = _descendants(parent.pid)  # the forkserver and the warm workers it forked
        assert pool
    finally:
        parent.communicate("go\n", timeout=60)
    # not our children, so not waited for: a pidfd turns readable when its process has exited
    handles = []
    for pid in pool:
        with contextlib.suppress(ProcessLookupError):
            handles.append(os.pidfd_open(pid))
    try:
        deadline = time.monotonic() + 30
        waiting = list(handles)
        while waiting and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(waiting, [], [], left)
            waiting = [fd for fd in waiting if fd not in ready]
        assert not waiting, "pool processes outlived the process that started them"
    finally:
        for fd in handles:
            os.close(fd)


def test_a_local_pool_hands_row_groups_over_as_files_and_removes_them(busy_manifest: SimulationManifest,
                                                                      out_dir: Path, spill_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _reference(busy_manifest, out_dir)
    driver = DriverConfig(workers=2, window_seconds=60)
    generate_to_parquet(busy_manifest, driver, out_dir / "warm.parquet")  # a warm pool: no window made in-process
    seen: list[Path] = []
    monkeypatch.setattr(pipeline.os, "unlink", lambda path: (seen.append(Path(path)), os.remove(path)))
    out = out_dir / "pool.parquet"
    report = generate_to_parquet(busy_manifest, driver, out)
    assert out.read_bytes() == reference
    assert len([path for path in seen if path.parent == spill_dir]) == report.row_groups


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


def test_what_a_killed_process_left_in_tmpfs_is_removed_by_the_next_job(busy_manifest: SimulationManifest,
                                                                         out_dir: Path, spill_dir: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = spill_dir / f"quantdesk-{gone.stdout.strip()}-{'a' * 32}-3-0"
    alive = spill_dir / f"quantdesk-{os.getpid()}-{'b' * 32}-progress"
    dead.write_bytes(b"x" * 100)
    alive.write_bytes(b"x" * 8)
    generate_to_parquet(busy_manifest, DriverConfig(workers=2, window_seconds=60), out_dir / "next.parquet")
    assert not dead.exists() and alive.exists(), "only a dead process's files go"
    alive.unlink()
