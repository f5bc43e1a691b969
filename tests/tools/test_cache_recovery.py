"""Crash recovery of the caches happens when a process starts, and only touches what dead processes left behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from quantdesk.server.state import StateStore
from quantdesk.tools.caches.service import CacheService

# A writer that dies the way `kill -9` kills a server mid-generation: a job row left `running` and a partial
# file left in the staging folder, with no chance to clean up.
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from quantdesk.server.state import StateStore
from quantdesk.tools.caches.service import CacheService
data_dir = Path(sys.argv[1])
service = CacheService(data_dir, StateStore(data_dir / "quantdesk.sqlite3"))
service.index.start_job("qd_gen_killed", "generate_dataset", None)
with service.staging("qd_gen_killed") as staged:
    with open(staged, "wb") as handle:
        handle.write(os.urandom(1 << 20))
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""


def jobs(data_dir: Path) -> dict[str, tuple[str, str | None]]:
    conn = sqlite3.connect(f"{(data_dir / 'quantdesk.sqlite3').as_uri()}?mode=ro", uri=True)
    try:
        return {row[0]: (row[1], row[2]) for row in conn.execute("SELECT job_id, status, error FROM jobs")}
    finally:
        conn.close()


def staged(data_dir: Path) -> list[Path]:
    folder = data_dir / "artifacts" / ".staging"
    return sorted(folder.iterdir()) if folder.exists() else []


def call_cli(data_dir: Path, quantdesk_bin: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
    env["QUANTDESK_DATA_DIR"] = str(data_dir)
    return subprocess.run([quantdesk_bin, "call", "get_health"], env=env, capture_output=True, text=True, timeout=120)


def test_what_a_killed_writer_left_is_cleaned_up_when_the_next_server_starts(tmp_path, server_factory):
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.stat().st_size for p in staged(tmp_path)] == [1 << 20]
    assert jobs(tmp_path)["qd_gen_killed"][0] == "running"

    running = server_factory(tmp_path)  # healthy: nothing has called a cache tool yet
    assert staged(tmp_path) == []
    status, error = jobs(tmp_path)["qd_gen_killed"]
    assert status == "failed" and error is not None and error.startswith("interrupted")
    assert "qd_gen_killed" in running.log()


def test_a_second_process_on_the_same_data_directory_leaves_running_jobs_alone(tmp_path, quantdesk_bin):
    state = StateStore(tmp_path / "quantdesk.sqlite3")
    service = CacheService(tmp_path, state)
    try:
        service.index.start_job("qd_gen_live", "generate_dataset", None)
        with service.staging("qd_gen_live") as partial:
            partial.write_bytes(b"PAR1 half written")
            assert call_cli(tmp_path, quantdesk_bin).returncode == 0
            assert partial.exists()
            assert service.index.job("qd_gen_live").status == "running"

            service.close()  # this process is now as good as dead to the others
            assert call_cli(tmp_path, quantdesk_bin).returncode == 0
            assert not partial.exists()
            job = service.index.job("qd_gen_live")
            assert job.status == "failed" and job.error is not None and job.error.startswith("interrupted")
    finally:
        service.close()
        state.close()


def test_the_cache_modules_do_not_import_pyarrow_parquet(tmp_path):
    code = ("import sys, quantdesk.tools.caches.tools, quantdesk.tools.caches.service; "
            "print('pyarrow.parquet' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "False"
