"""The `quantdesk` command: tools, call (in-process, same registry), exit codes."""

from __future__ import annotations

import json
import subprocess


def run(quantdesk_bin, tmp_path, *args):
    return subprocess.run([quantdesk_bin, "--data-dir", str(tmp_path), *args], capture_output=True, text=True,
                          timeout=120)


def test_tools_lists_every_tool_with_its_scope(quantdesk_bin, tmp_path):
    result = run(quantdesk_bin, tmp_path, "tools")
    assert result.returncode == 0
    assert "get_health" in result.stdout and "[read]" in result.stdout


def test_tools_json_gives_schemas(quantdesk_bin, tmp_path):
    tools = json.loads(run(quantdesk_bin, tmp_path, "tools", "--json").stdout)
    health = next(t for t in tools if t["name"] == "get_health")
    assert health["inputSchema"]["type"] == "object" and health["outputSchema"]["type"] == "object"


def test_call_prints_the_structured_result(quantdesk_bin, tmp_path):
    result = run(quantdesk_bin, tmp_path, "call", "validate_config", "--args", '{"config": {"seed": 7}}')
    assert result.returncode == 0
    out = json.loads(result.stdout)
    assert out["valid"] is True and out["normalized"]["seed"] == 7
    assert out["manifest_hash"].startswith("sha256:")


def test_call_exits_non_zero_on_a_tool_error(quantdesk_bin, tmp_path):
    result = run(quantdesk_bin, tmp_path, "call", "get_presets", "--args", '{"name": 1}')
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "invalid_argument" and error["problems"][0]["path"] == "$.name"


def test_call_refuses_arguments_that_are_not_json(quantdesk_bin, tmp_path):
    result = run(quantdesk_bin, tmp_path, "call", "get_health", "--args", "{nope")
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr


def test_call_of_an_unknown_tool_fails(quantdesk_bin, tmp_path):
    result = run(quantdesk_bin, tmp_path, "call", "no_such_tool")
    assert result.returncode == 1
    assert "unknown tool" in result.stderr


def test_normalize_refuses_to_replace_an_output_unless_told_and_takes_contract_sizes(quantdesk_bin, tmp_path):
    feed = tmp_path / "okx.jsonl"
    feed.write_text(json.dumps({"arg": {"channel": "trades", "instId": "DOGE-USDT-SWAP"}, "data": [
        {"instId": "DOGE-USDT-SWAP", "tradeId": "1", "px": "0.1", "sz": "3", "side": "buy", "ts": "1700000000000"}]})
        + "\n")
    out = tmp_path / "out.parquet"
    args = ("normalize", str(feed), "-o", str(out), "--source", "okx", "--contract-size", "DOGE-USDT-SWAP=1000")
    first = run(quantdesk_bin, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["counts"]["accepted"] == 1
    again = run(quantdesk_bin, tmp_path, *args)
    assert again.returncode != 0 and "overwrite" in again.stderr
    replaced = run(quantdesk_bin, tmp_path, *args, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
