"""The manifest tools through real doors: schema, validation with every problem, presets, the hash."""

from __future__ import annotations

import httpx
import pytest

from quantdesk.schemas.manifest import SimulationManifest


def call(server, tool, args):
    response = httpx.post(f"{server.url}/tools/{tool}", json=args, headers=server.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_config_schema_is_the_manifest_schema(server):
    out = call(server, "get_config_schema", {})
    assert out["schema"] == SimulationManifest.model_json_schema()
    assert out["schema"]["properties"]["volatility_annual"]["exclusiveMinimum"] == 0


def test_a_bad_config_gets_every_problem_with_its_path(server):
    # `config` carries the manifest's schema, so its bounds are refused at the door, every one named.
    response = httpx.post(f"{server.url}/tools/validate_config", headers=server.headers(), timeout=30,
                          json={"config": {"volatility_annual": -0.5, "num_levels": 0, "duration_seconds": 10**7,
                                           "colour": "red"}})
    assert response.status_code == 422
    locs = {tuple(problem["loc"]) for problem in response.json()["detail"]}
    assert locs == {("config", "volatility_annual"), ("config", "num_levels"), ("config", "duration_seconds"),
                    ("config", "colour")}


def test_impossible_combinations_are_reported(server):
    out = call(server, "validate_config", {"config": {"initial_price": 1.0, "tick_size": 5.0}})
    assert out["valid"] is False
    assert any("tick_size" in p["message"] for p in out["problems"])


def test_a_valid_config_is_normalized_and_hashed_deterministically(server):
    first = call(server, "validate_config", {"config": {"seed": 11}})
    second = call(server, "validate_config", {"config": {"seed": 11, "volatility_annual": 0.6}})
    assert first["valid"] is True
    assert first["manifest_hash"] == second["manifest_hash"], "defaults written out hash the same"
    assert first["manifest_hash"].startswith("sha256:") and len(first["manifest_hash"]) == 71
    assert call(server, "validate_config", {"config": {"seed": 12}})["manifest_hash"] != first["manifest_hash"]


def test_legacy_aleatoric_names_are_folded_into_canonical_ones(server):
    legacy = call(server, "validate_config", {"config": {"initial_mid": 100.0, "book_depth": 5, "tick_size": 0.01}})
    canonical = call(server, "validate_config", {"config": {"initial_price": 100.0, "num_levels": 5,
                                                            "tick_size": 0.01}})
    assert legacy["normalized"] == canonical["normalized"]
    assert legacy["manifest_hash"] == canonical["manifest_hash"]
    assert "initial_mid" not in legacy["normalized"]


def test_the_aleatoric_validate_route_answers_with_hash(server):
    response = httpx.post(f"{server.url}/mcp/config/validate", json={"symbol": "ETH", "seed": 3},
                          headers=server.headers())
    body = response.json()
    assert body["valid"] is True and body["hash"] == body["manifest_hash"]


def test_the_aleatoric_validate_route_refuses_an_empty_body(server):
    response = httpx.post(f"{server.url}/mcp/config/validate", headers=server.headers())
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["config"]


@pytest.mark.parametrize("name", ["btc_calm", "btc_volatile", "eth", "smallcap_wide", "flash_crash_day"])
def test_each_preset_is_a_valid_documented_manifest(server, name):
    (preset,) = call(server, "get_presets", {"name": name})["presets"]
    assert len(preset["description"]) > 40
    assert call(server, "validate_config", {"config": preset["manifest"]})["manifest_hash"] == preset["manifest_hash"]


def test_an_unknown_preset_is_not_found_and_lists_the_known_ones(server):
    response = httpx.post(f"{server.url}/tools/get_presets", json={"name": "nope"}, headers=server.headers())
    assert response.status_code == 404
    assert "btc_calm" in response.json()["detail"]
