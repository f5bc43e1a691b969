"""The state store fails closed: a damaged or emptied SQLite file stops every command with a clear message and a
recovery command, never opens access, and `quantdesk state check` / `state recover` repair it without deleting."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from quantdesk.server.auth import Authenticator, KeyMarker, KeyStore
from quantdesk.server.errors import Unauthorized
from quantdesk.server.state import StateDamaged, StateStore

DB = "quantdesk.sqlite3"


def store_with_key(data_dir: Path, name: str = "ops") -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    state = StateStore(data_dir / DB)
    try:
        _, secret = KeyStore(state).create(frozenset({"read", "generate"}), name)
    finally:
        state.close()
    return secret


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    assert len(data) >= 4 * 4096, "the store should span several pages"
    if how == "zero":
        damaged = b""
    elif how == "half":
        damaged = data[: len(data) // 2]
    elif how == "header":
        damaged = b"not an sqlite file at all" + data[25:]
    else:  # a b-tree page overwritten in the middle of the file: the header is fine, the pages are not
        damaged = data[:8192] + bytes(b ^ 0xFF for b in data[8192:8392]) + data[8392:]
    path.write_bytes(damaged)


def cli(quantdesk_bin: str, data_dir: Path, *args: str, env_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
    if env_key:
        env["QUANTDESK_API_KEY"] = env_key
    return subprocess.run([quantdesk_bin, "--data-dir", str(data_dir), *args], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def assert_refused_clearly(output: str, data_dir: Path) -> None:
    assert "Traceback" not in output
    assert "unavailable:" in output
    assert str(data_dir / DB) in output
    assert f"quantdesk --data-dir {data_dir} state recover" in output


def test_a_store_truncated_to_zero_bytes_refuses_to_serve_instead_of_opening_access(tmp_path, server_factory):
    store_with_key(tmp_path)
    damage(tmp_path / DB, "zero")
    with pytest.raises(RuntimeError, match="server exited"):
        running = server_factory(tmp_path, env_key=None)
        # reached only if it started: show the hole the test guards against
        answer = httpx.post(f"{running.url}/tools/get_health", json={}, timeout=10)
        pytest.fail(f"the server started on an emptied store; a keyless loopback call got {answer.status_code}")
    assert_refused_clearly((tmp_path / "server.log").read_text(), tmp_path)


@pytest.mark.parametrize("command", [("stdio",), ("call", "get_health"), ("keys", "list"),
                                     ("keys", "create", "--scopes", "read")])
def test_every_command_refuses_an_emptied_store_with_the_recovery_command(tmp_path, quantdesk_bin, command):
    store_with_key(tmp_path)
    damage(tmp_path / DB, "zero")
    result = cli(quantdesk_bin, tmp_path, *command)
    assert result.returncode != 0
    assert_refused_clearly(result.stderr, tmp_path)
    assert "holds no API keys" in result.stderr


@pytest.mark.parametrize("how", ["half", "header", "page"])
def test_a_damaged_store_refuses_to_serve_with_a_clear_message(tmp_path, server_factory, how):
    store_with_key(tmp_path)
    damage(tmp_path / DB, how)
    with pytest.raises(RuntimeError, match="server exited"):
        server_factory(tmp_path, env_key=None)
    log = (tmp_path / "server.log").read_text()
    assert_refused_clearly(log, tmp_path)
    assert "is damaged" in log


@pytest.mark.parametrize("how", ["half", "header", "page"])
def test_a_damaged_store_stops_the_cli_before_any_work(tmp_path, quantdesk_bin, how):
    store_with_key(tmp_path)
    damage(tmp_path / DB, how)
    result = cli(quantdesk_bin, tmp_path, "call", "get_health", env_key="qd_env_only_key_0123456789")
    assert result.returncode == 1
    assert_refused_clearly(result.stderr, tmp_path)


def test_the_state_store_raises_a_typed_error_for_damage(tmp_path):
    store_with_key(tmp_path)
    damage(tmp_path / DB, "page")
    with pytest.raises(StateDamaged) as raised:
        StateStore(tmp_path / DB)
    assert raised.value.kind == "unavailable" and raised.value.path == tmp_path / DB


def test_check_reports_and_recover_moves_the_damaged_file_aside_and_keys_can_be_created_again(
        tmp_path, quantdesk_bin, server_factory):
    store_with_key(tmp_path, name="desk-bot")
    damage(tmp_path / DB, "page")
    damaged_bytes = (tmp_path / DB).read_bytes()

    check = cli(quantdesk_bin, tmp_path, "state", "check", "--json")
    assert check.returncode == 1
    report = json.loads(check.stdout)
    assert report["verdict"] == "damaged" and report["problems"]
    assert [k["name"] for k in report["marked_keys"]] == ["desk-bot"]

    recover = cli(quantdesk_bin, tmp_path, "state", "recover")
    assert recover.returncode == 0, recover.stderr
    assert "desk-bot" in recover.stdout and "generate,read" in recover.stdout
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(f"{DB}.damaged-")]
    assert [p.read_bytes() for p in kept if not p.name.endswith(("-wal", "-shm"))] == [damaged_bytes]
    assert not (tmp_path / DB).exists() and not KeyMarker(tmp_path / DB).exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith("quantdesk.keys-marker.json.damaged-")]

    assert cli(quantdesk_bin, tmp_path, "state", "check").returncode == 0
    created = cli(quantdesk_bin, tmp_path, "keys", "create", "--scopes", "read", "--name", "again")
    assert created.returncode == 0, created.stderr
    running = server_factory(tmp_path, env_key=None)
    assert httpx.post(f"{running.url}/tools/get_health", json={}, timeout=10).status_code == 401
    key = created.stdout.strip()
    assert httpx.post(f"{running.url}/tools/get_health", json={}, headers={"X-API-Key": key},
                      timeout=10).status_code == 200


def test_recover_accepts_an_emptied_store_and_says_which_keys_were_lost(tmp_path, quantdesk_bin):
    store_with_key(tmp_path, name="reporting")
    damage(tmp_path / DB, "zero")
    assert json.loads(cli(quantdesk_bin, tmp_path, "state", "check", "--json").stdout)["verdict"] == "emptied"
    recover = cli(quantdesk_bin, tmp_path, "state", "recover")
    assert recover.returncode == 0, recover.stderr
    assert "lost API key" in recover.stdout and "reporting" in recover.stdout
    assert cli(quantdesk_bin, tmp_path, "keys", "list").returncode == 0


def test_recover_refuses_a_healthy_store_and_leaves_it_alone(tmp_path, quantdesk_bin):
    store_with_key(tmp_path)
    before = (tmp_path / DB).read_bytes()
    result = cli(quantdesk_bin, tmp_path, "state", "recover")
    assert result.returncode == 1 and "nothing to recover" in result.stderr
    assert (tmp_path / DB).read_bytes() == before and KeyMarker(tmp_path / DB).exists()


def test_the_environment_key_is_not_a_stored_key(tmp_path, quantdesk_bin):
    assert cli(quantdesk_bin, tmp_path, "call", "get_health", env_key="qd_env_only_key_0123456789").returncode == 0
    assert (tmp_path / DB).exists() and not KeyMarker(tmp_path / DB).exists()
    (tmp_path / DB).write_bytes(b"")
    assert cli(quantdesk_bin, tmp_path, "call", "get_health").returncode == 0


def test_a_store_from_before_markers_gets_one_when_it_opens(tmp_path):
    conn = sqlite3.connect(tmp_path / DB)
    conn.execute("CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, "
                 "scopes TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)")
    conn.execute("INSERT INTO api_keys VALUES ('abc', 'legacy', 'h', 'read', '2025-01-01T00:00:00+00:00', NULL)")
    conn.commit()
    conn.close()
    state = StateStore(tmp_path / DB)
    KeyStore(state)
    state.close()
    assert [k["name"] for k in KeyMarker(tmp_path / DB).keys()] == ["legacy"]
    (tmp_path / DB).write_bytes(b"")
    state = StateStore(tmp_path / DB)
    try:
        with pytest.raises(StateDamaged):
            KeyStore(state)
    finally:
        state.close()


def test_keys_emptied_while_running_never_open_loopback_access(tmp_path):
    store_with_key(tmp_path)
    state = StateStore(tmp_path / DB)
    try:
        auth = Authenticator(KeyStore(state))
        other = sqlite3.connect(tmp_path / DB)
        other.execute("DELETE FROM api_keys")
        other.commit()
        other.close()
        assert not auth.open_mode()
        with pytest.raises(Unauthorized):
            auth.authenticate(None, client_is_loopback=True)
    finally:
        state.close()


def test_revoking_every_stored_key_does_not_reopen_loopback_access(tmp_path):
    store_with_key(tmp_path, name="only")
    state = StateStore(tmp_path / DB)
    try:
        keys = KeyStore(state)
        keys.revoke("only")
        with pytest.raises(Unauthorized):
            Authenticator(keys).authenticate(None, client_is_loopback=True)
    finally:
        state.close()
