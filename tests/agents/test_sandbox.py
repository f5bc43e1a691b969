"""Each sandbox limit, tested with a strategy that breaks it: the evaluation fails cleanly with its reason."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from quantdesk.tools.agents.challenges import Challenge
from quantdesk.tools.agents.evaluate.evaluator import Evaluator
from quantdesk.tools.agents.evaluate.scoring import make_split
from quantdesk.tools.agents.sandbox.sandbox import Limits, Sandbox

SECRET = "qd-secret-7c1e5f0a"

TEMPLATE = '''
import numpy as np, os, socket, sys
from quantdesk_strategy import Featurizer, Predictor

def attempt():
{body}

attempt()

class F(Featurizer):
    warmup = 2
    def compute(self, view):
        return {{"x": np.array([0.0])}}

class P(Predictor):
    def predict(self, features):
        return np.array([0.5, 0.5])
'''


def strategy(body: str) -> str:
    return TEMPLATE.format(body="\n".join("    " + line for line in body.strip().splitlines()))


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Evaluator:
    hidden = tmp_path_factory.mktemp("server-data")
    (hidden / "anthropic.key").write_text(SECRET)
    sandbox = Sandbox(hidden=(hidden,), limits=Limits(wall_seconds=8, cpu_seconds=5, memory_bytes=1 << 30,
                                                      file_bytes=16 << 20, open_files=64, processes=32))
    return Evaluator(sandbox)


@pytest.fixture(scope="module")
def mode(tight: Evaluator) -> str:
    return str(tight.sandbox.capabilities()["mode"])


def run(evaluator: Evaluator, challenge: Challenge, data: Any, code: str, workdir: Path) -> Any:
    split = make_split(challenge, data.rows, 1)
    return evaluator.development(challenge, data, split, code, workdir)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from quantdesk.tools.agents.challenges import CHALLENGES
    from quantdesk.tools.agents.data.synthetic import SyntheticSource

    return SyntheticSource(3).generate(CHALLENGES["ETH-1H-BINARY"].assets + ("BTC",), 3 * 1440)


def test_the_probe_reports_the_isolation_in_force(mode: str, tight: Evaluator) -> None:
    capabilities = tight.sandbox.capabilities()
    assert capabilities["ok"]
    if os.geteuid() == 0:
        assert mode == "root"
        assert capabilities["network_namespace"] and capabilities["pid_namespace"] and capabilities["uid_drop"]


def test_a_strategy_that_opens_a_socket_cannot_reach_anything(
        tight: Evaluator, mode: str, eth: Challenge, tiny: Any, workdir: Path) -> None:
    if mode == "rlimits":
        pytest.skip("no network namespace on this machine")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0)
    port = listener.getsockname()[1]
    try:
        outcome = run(tight, eth, tiny, strategy(f'socket.create_connection(("127.0.0.1", {port}), timeout=2)'),
                      workdir)
        assert not outcome.ok
        assert "unreachable" in (outcome.error or "").lower()
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


def test_a_strategy_sees_neither_the_server_environment_nor_its_files(
        tight: Evaluator, mode: str, eth: Challenge, tiny: Any, workdir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    data_dir = tight.sandbox.hidden[-1]
    body = f'''
found = []
if "{SECRET}" in repr(dict(os.environ)):
    found.append("environ")
for pid in ("{os.getpid()}", "{os.getppid()}", "1", "self"):
    try:
        if "{SECRET}" in open(f"/proc/{{pid}}/environ", "rb").read().decode("latin-1"):
            found.append("proc " + pid)
    except OSError:
        pass
try:
    if "{SECRET}" in open("{data_dir}/anthropic.key").read():
        found.append("key file")
except OSError:
    pass
raise RuntimeError("LEAKED " + ", ".join(found) if found else "CLEAN uid=" + str(os.getuid()))
'''
    outcome = run(tight, eth, tiny, strategy(body), workdir)
    assert not outcome.ok
    assert "CLEAN" in (outcome.error or ""), outcome.error
    if mode == "root":
        assert "uid=65534" in (outcome.error or "")


def test_a_strategy_that_forks_without_end_is_stopped_and_leaves_no_process(
        tight: Evaluator, mode: str, eth: Challenge, tiny: Any, workdir: Path) -> None:
    if mode != "root":
        pytest.skip("RLIMIT_NPROC needs the uid drop of root mode")
    body = '''
children = []
while True:
    pid = os.fork()
    if pid == 0:
        import time
        time.sleep(600)
        os._exit(0)
    children.append(pid)
'''
    outcome = run(tight, eth, tiny, strategy(body), workdir)
    assert not outcome.ok
    assert "Resource temporarily unavailable" in (outcome.error or "") or "BlockingIOError" in (outcome.error or "")
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == 65534]
    assert leftovers == []


def _uid(proc: Path) -> int | None:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def test_a_strategy_that_allocates_without_end_hits_the_memory_limit(
        tight: Evaluator, eth: Challenge, tiny: Any, workdir: Path) -> None:
    outcome = run(tight, eth, tiny, strategy('blocks = []\nwhile True:\n    blocks.append(bytearray(256 << 20))'),
                  workdir)
    assert not outcome.ok
    assert "MemoryError" in (outcome.error or "")


@pytest.mark.parametrize("body", ["while True:\n    pass", "import time\ntime.sleep(3600)"], ids=["busy", "sleeping"])
def test_a_strategy_that_runs_forever_is_killed_at_the_deadline(
        tight: Evaluator, eth: Challenge, tiny: Any, workdir: Path, body: str) -> None:
    outcome = run(tight, eth, tiny, strategy(body), workdir)
    assert not outcome.ok
    # a busy loop meets the CPU limit (5 s) first, a sleeping one the wall clock (8 s)
    assert outcome.timed_out or "CPU time limit" in (outcome.error or "")


def test_a_strategy_that_writes_a_huge_file_hits_the_file_size_limit(
        tight: Evaluator, eth: Challenge, tiny: Any, workdir: Path) -> None:
    outcome = run(tight, eth, tiny, strategy('open("big.bin", "wb").write(b"x" * (64 << 20))'), workdir)
    assert not outcome.ok
    assert "File too large" in (outcome.error or "")


def test_a_strategy_that_opens_files_without_end_hits_the_open_file_limit(
        tight: Evaluator, eth: Challenge, tiny: Any, workdir: Path) -> None:
    outcome = run(tight, eth, tiny, strategy('handles = [open("child.py") for _ in range(1000)]'), workdir)
    assert not outcome.ok
    assert "Too many open files" in (outcome.error or "")


def test_after_a_failed_strategy_the_next_one_runs_normally(
        tight: Evaluator, eth: Challenge, tiny: Any, workdir: Path) -> None:
    assert not run(tight, eth, tiny, strategy("raise SystemExit(3)"), workdir).ok
    good = run(tight, eth, tiny, strategy("pass"), workdir)
    assert good.ok, good.error
