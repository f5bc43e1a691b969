"""The server side of the sandbox: build a working directory, run the launcher under a deadline, collect results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOBODY = 65534
OUTPUT_TAIL_BYTES = 64 * 1024
ALWAYS_HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/dev/shm")


@dataclass(frozen=True, slots=True)
class Limits:
    wall_seconds: float = 600.0
    cpu_seconds: int = 600
    memory_bytes: int = 3 << 30
    file_bytes: int = 256 << 20
    open_files: int = 64
    processes: int = 64


@dataclass(frozen=True, slots=True)
class SandboxResult:
    returncode: int
    timed_out: bool
    seconds: float
    output_tail: str
    outcome: dict[str, Any]
    """child.py's result.json ({"ok": false, "error": ...} when it could not write one)."""

    @property
    def ok(self) -> bool:
        return bool(self.outcome.get("ok")) and self.returncode == 0 and not self.timed_out

    def failure(self) -> str:
        """Why the run failed, for an iteration record."""
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s (wall-clock limit); the process group was killed"
        if self.outcome.get("error"):
            return str(self.outcome["error"])
        if self.returncode >= 128:
            number = self.returncode - 128
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = str(number)
            reason = {"SIGXCPU": "CPU time limit", "SIGXFSZ": "file size limit", "SIGKILL": "killed",
                      "SIGSEGV": "crashed"}.get(name, name)
            return f"the strategy process ended by {name} ({reason})"
        return f"the strategy process exited with status {self.returncode} without a result"


class Sandbox:
    def __init__(self, hidden: tuple[Path, ...] = (), limits: Limits | None = None, *,
                 python: str | None = None, concurrency: int = 2) -> None:
        self.python = python or sys.executable
        self.limits = limits or Limits()
        self.hidden = tuple(dict.fromkeys([*ALWAYS_HIDDEN, *(str(p.resolve()) for p in hidden)]))
        self._semaphore = threading.BoundedSemaphore(concurrency)
        self._capabilities: dict[str, Any] | None = None
        self._probe_lock = threading.Lock()
        self._active: dict[int, str] = {}
        self._active_lock = threading.Lock()

    # --- capabilities ------------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Which mode works here (probed once): root, user or rlimits, and what each step did."""
        with self._probe_lock:
            if self._capabilities is None:
                self._capabilities = self._probe()
            return dict(self._capabilities)

    def _probe(self) -> dict[str, Any]:
        modes = ["root", "rlimits"] if os.geteuid() == 0 else ["user", "rlimits"]
        reports = []
        for mode in modes:
            workspace = Path(self._tempdir("probe"))
            try:
                completed = subprocess.run(
                    [self.python, "-I", "-B", str(HERE / "launcher.py"), "--probe",
                     json.dumps(self._config(workspace, mode))],
                    env={}, capture_output=True, timeout=30, start_new_session=True, check=False)
                report = json.loads(completed.stdout or b"{}")
            except (subprocess.TimeoutExpired, ValueError) as exc:
                report = {"mode": mode, "ok": False, "error": str(exc)}
            finally:
                shutil.rmtree(workspace, ignore_errors=True)
            reports.append(report)
            if report.get("ok"):
                return {**report, "limits": asdict(self.limits), "tried": reports}
        return {"mode": "none", "ok": False, "tried": reports, "limits": asdict(self.limits)}

    # --- running ---------------------------------------------------------------------------------

    def _keep(self) -> list[str]:
        """Folders the interpreter needs, which may live under a hidden path (a pyenv under /root, say)."""
        paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
                 os.path.dirname(os.path.realpath(self.python))}
        venv = Path(self.python).parent.parent
        if (venv / "pyvenv.cfg").exists():
            paths.add(str(venv.resolve()))
        return sorted(p for p in paths if os.path.isdir(p))

    def _config(self, workspace: Path, mode: str) -> dict[str, Any]:
        return {"mode": mode, "workspace": str(workspace), "python": self.python, "keep": self._keep(),
                "hide": list(self.hidden), "uid": NOBODY, "gid": NOBODY,
                "limits": {"cpu_seconds": self.limits.cpu_seconds, "memory_bytes": self.limits.memory_bytes,
                           "file_bytes": self.limits.file_bytes, "open_files": self.limits.open_files,
                           "processes": self.limits.processes}}

    @staticmethod
    def _tempdir(prefix: str) -> str:
        import tempfile

        return tempfile.mkdtemp(prefix=f"qd-sandbox-{prefix}-")

    def prepare(self, workspace: Path, strategy_code: str, job: dict[str, Any], arrays: dict[str, Any]) -> None:
        """Write the working directory: the strategy, the child runner, the job and the data it may see."""
        import numpy as np

        workspace.mkdir(parents=True, exist_ok=True)
        (workspace / "strategy.py").write_text(strategy_code)
        shutil.copyfile(HERE / "child.py", workspace / "child.py")
        (workspace / "job.json").write_text(json.dumps(job))
        np.savez(workspace / "data.npz", **arrays)
        for path in workspace.iterdir():
            path.chmod(0o644)
        if os.geteuid() == 0:
            os.chown(workspace, NOBODY, NOBODY)
        workspace.chmod(0o755)

    def kill_owner(self, owner: str) -> None:
        """Kill the running evaluations started for `owner` (an agent being stopped)."""
        with self._active_lock:
            groups = [pgid for pgid, who in self._active.items() if who == owner]
        for pgid in groups:
            _kill_group(pgid)

    def kill_all(self) -> None:
        with self._active_lock:
            groups = list(self._active)
        for pgid in groups:
            _kill_group(pgid)

    def run(self, workspace: Path, output: Path, *, wall_seconds: float | None = None,
            owner: str = "") -> SandboxResult:
        """Run child.py in `workspace` under every limit the probe found usable; output goes to `output`."""
        mode = self.capabilities().get("mode", "rlimits")
        if mode == "none":
            mode = "rlimits"
        deadline = wall_seconds or self.limits.wall_seconds
        with self._semaphore:
            started = time.monotonic()
            with open(output, "wb") as log:
                proc = subprocess.Popen(
                    [self.python, "-I", "-B", str(HERE / "launcher.py"), json.dumps(self._config(workspace, mode))],
                    env={}, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workspace,
                    close_fds=True, start_new_session=True)
                timed_out = False
                with self._active_lock:
                    self._active[proc.pid] = owner
                try:
                    proc.wait(timeout=deadline)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    _kill_group(proc.pid)
                    proc.wait()
                    with self._active_lock:
                        self._active.pop(proc.pid, None)
            seconds = time.monotonic() - started
        outcome: dict[str, Any] = {"ok": False}
        result_file = workspace / "result.json"
        if result_file.exists() and not timed_out:
            try:
                outcome = json.loads(result_file.read_text()[:100_000])
            except ValueError:
                outcome = {"ok": False, "error": "result.json is not valid JSON"}
        return SandboxResult(proc.returncode, timed_out, seconds, _tail(output), outcome)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            handle.seek(max(0, size - OUTPUT_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
