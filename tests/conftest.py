"""Shared fixtures: real servers (a `quantdesk serve` subprocess, or an app with extra test tools served by
uvicorn in a thread) on free loopback ports, and the official MCP client over every door."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from quantdesk.server.auth import KeyStore
from quantdesk.server.state import StateStore

REPO = Path(__file__).resolve().parent.parent
QUANTDESK = str(Path(sys.executable).parent / "quantdesk")
ADMIN_KEY = "qd_test_admin_key_0123456789abcdef"
PLUGINS = str(Path(__file__).resolve().parent / "plugins")
TEST_TOOL_ENV = {"QUANTDESK_TOOL_MODULES": "qd_testtools", "PYTHONPATH": PLUGINS, "QUANTDESK_TOOLS_PAGE_SIZE": "2"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy")


@dataclass
class RunningServer:
    """A `quantdesk serve` process on a loopback port, with its data directory and stderr log."""

    url: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    admin_key: str | None = ADMIN_KEY
    _keys: dict[frozenset[str], str] = field(default_factory=dict)

    def key(self, *scopes: str) -> str:
        """A stored key holding exactly these scopes, created in the server's real SQLite file."""
        wanted = frozenset(scopes)
        if wanted not in self._keys:
            state = StateStore(self.data_dir / "quantdesk.sqlite3")
            try:
                _, secret = KeyStore(state).create(wanted, f"test-{'-'.join(sorted(wanted))}")
            finally:
                state.close()
            self._keys[wanted] = secret
        return self._keys[wanted]

    def headers(self, key: str | None = None) -> dict[str, str]:
        key = key or self.admin_key
        return {"X-API-Key": key} if key else {}

    def log(self) -> str:
        return self.log_path.read_text()


def spawn_server(data_dir: Path, *, env_key: str | None = ADMIN_KEY, args: tuple[str, ...] = (),
                 extra_env: dict[str, str] | None = None, preexec: Any = None) -> RunningServer:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
    env["QUANTDESK_DATA_DIR"] = str(data_dir)
    if env_key:
        env["QUANTDESK_API_KEY"] = env_key
    env.update(extra_env or {})
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([QUANTDESK, "serve", "--port", str(port), *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=data_dir, preexec_fn=preexec)
    server = RunningServer(f"http://127.0.0.1:{port}", data_dir, log_path, proc, env_key)
    try:
        wait_until_healthy(server.url, proc)
    except BaseException:
        stop_process(proc)
        raise
    return server


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One keyed server for the whole session (QUANTDESK_API_KEY set, so every route needs a key)."""
    running = spawn_server(tmp_path_factory.mktemp("server"), extra_env=TEST_TOOL_ENV)
    yield running
    assert running.proc is not None
    stop_process(running.proc)


@pytest.fixture
def server_factory() -> Iterator[Any]:
    """Spawn extra `quantdesk serve` processes (stopped at teardown): `server_factory(data_dir, env_key=...)`."""
    started: list[RunningServer] = []

    def factory(data_dir: Path, **kwargs: Any) -> RunningServer:
        running = spawn_server(data_dir, **kwargs)
        started.append(running)
        return running

    yield factory
    for running in started:
        if running.proc is not None:
            stop_process(running.proc)


@pytest.fixture(scope="module")
def module_server_factory() -> Iterator[Any]:
    """Like `server_factory`, for servers shared by the tests of one module."""
    started: list[RunningServer] = []

    def factory(data_dir: Path, **kwargs: Any) -> RunningServer:
        running = spawn_server(data_dir, **kwargs)
        started.append(running)
        return running

    yield factory
    for running in started:
        if running.proc is not None:
            stop_process(running.proc)


@pytest.fixture
def quantdesk_bin() -> str:
    return QUANTDESK


@pytest.fixture
def unused_port() -> int:
    return free_port()


class ThreadedServer:
    """An app object (for instance with extra test tools) served by uvicorn on a loopback port in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on",
                                timeout_graceful_shutdown=2)
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        wait_until_healthy(self.url, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def threaded_server() -> Any:
    return ThreadedServer


@contextlib.asynccontextmanager
async def mcp_client(door: str, server: RunningServer, key: str | None = None, **options: Any) -> AsyncIterator[Client]:
    """The official SDK client over one door: `stdio`, `http-legacy` (initialize handshake) or `http-modern`."""
    if door == "stdio":
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
        env["QUANTDESK_DATA_DIR"] = str(server.data_dir / "stdio")
        env.update(TEST_TOOL_ENV)
        params = StdioServerParameters(command=QUANTDESK, args=["stdio"], env=env)
        async with Client(params, mode="legacy", **options) as client:
            yield client
        return
    headers = {"X-API-Key": key or server.admin_key} if (key or server.admin_key) else {}
    async with create_mcp_http_client(headers=headers) as http:
        transport = streamable_http_client(f"{server.url}/mcp", http_client=http)
        mode = "legacy" if door == "http-legacy" else "auto"
        async with Client(transport, mode=mode, **options) as client:
            yield client


@pytest.fixture
def open_mcp() -> Any:
    return mcp_client


DOORS = ["stdio", "http-legacy", "http-modern"]


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest) -> str:
    return str(request.param)
