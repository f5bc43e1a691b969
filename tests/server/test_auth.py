"""Authentication and scopes over every route the app has, and the key lifecycle through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route, WebSocketRoute

from quantdesk.server.app import create_app
from quantdesk.server.context import IMPLIED_SCOPES, SCOPES
from quantdesk.server.route_table import RouteTable
from quantdesk.server.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

PUBLIC = {"/", "/health", "/token", "/mcp/tools/list", "/.well-known/mcp.json", "/.well-known/mcp-config",
          "/mcp/server-card", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


def app_routes(tmp_path: Path) -> list[tuple[str, str, list[str]]]:
    """Every (method, path, required scopes) of the real app, read from the app object itself."""
    app = create_app(Settings(data_dir=tmp_path, tool_modules=("qd_testtools",)))
    routes = []
    for route in app.routes:
        if isinstance(route, RouteTable):
            routes += [(r.method, r.path, r.operation["x-quantdesk-scopes"]) for r in route.routes()]
            continue
        if isinstance(route, WebSocketRoute):
            continue  # the first frame or ?token= authenticates: tests/compat_http test every channel's refusal
        if isinstance(route, Mount) and route.path == "/ui":
            continue  # the dashboard sends a browser to its login page: dashboard_routes() below
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        if isinstance(route, APIRoute):
            scopes = list((route.openapi_extra or {}).get("x-quantdesk-scopes", []))
        elif route.path == "/mcp":
            scopes = [route.endpoint.required_scope]
        else:
            scopes = []
        for method in sorted(route.methods or []):
            if method != "HEAD":
                routes.append((method, route.path, scopes))
    return routes


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "x", path)


def lacking_key(server, scopes: list[str]) -> str:
    """A key that holds some scope, but none of these (nor one implying them)."""
    for candidate in SCOPES:
        grants = {candidate} | IMPLIED_SCOPES.get(candidate, frozenset())
        if candidate != "admin" and not grants & set(scopes):
            return server.key(candidate)
    raise AssertionError(f"no scope lacks {scopes}")


def request(server, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    return httpx.request(method, f"{server.url}{concrete(path)}", content=body, headers=headers, timeout=30)


def test_every_route_refuses_a_missing_key_and_a_key_without_its_scope(server, tmp_path):
    routes = app_routes(tmp_path)
    assert len(routes) > 20
    checked_public = set()
    for method, path, scopes in routes:
        if path in PUBLIC:
            assert not scopes, f"{path} is public but declares scopes"
            response = request(server, method, path, None)
            assert response.status_code not in (401, 403), (method, path, response.status_code)
            checked_public.add(path)
            continue
        assert scopes, f"{method} {path} declares no scope and is not in the public list"
        response = request(server, method, path, None)
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        response = request(server, method, path, lacking_key(server, scopes))
        assert response.status_code == 403, (method, path, scopes, response.status_code, response.text)
    assert {"/", "/health", "/mcp/tools/list", "/.well-known/mcp.json", "/.well-known/mcp-config", "/docs",
            "/openapi.json"} <= checked_public


DASHBOARD_PUBLIC = {"/ui/", "/ui/login"}


def dashboard_routes(tmp_path: Path) -> list[tuple[str, str]]:
    app = create_app(Settings(data_dir=tmp_path, tool_modules=("qd_testtools",)))
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/ui")
    return [(method, "/ui" + sub.path) for sub in mount.routes if isinstance(sub, Route)
            for method in sorted(sub.methods or []) if method != "HEAD"]


def test_every_dashboard_route_sends_a_visitor_without_a_key_to_the_login_page(server, tmp_path):
    routes = dashboard_routes(tmp_path)
    assert ("GET", "/ui/{page:str}") in routes and ("POST", "/ui/form/{form:str}") in routes
    for method, path in routes:
        url = f"{server.url}{concrete(path)}".replace("/x", "/control", 1) if "{page" in path else \
            f"{server.url}{concrete(path)}"
        response = httpx.request(method, url, data={"reason": "x"} if method == "POST" else None,
                                 follow_redirects=False, timeout=30)
        if path in DASHBOARD_PUBLIC:  # a login post without the form's token is refused (403), not redirected
            assert response.status_code in (200, 303, 403), (method, path, response.status_code)
            assert not response.headers.get("location", "").startswith("/ui/login"), (method, path)
            continue
        assert response.status_code == 303, (method, path, response.status_code, response.text[:200])
        assert response.headers["location"].startswith("/ui/login?next="), (method, path)
    served = httpx.get(f"{server.url}/ui/control", headers={"X-API-Key": server.key("read")}, timeout=30)
    assert served.status_code == 200 and "Decision log" in served.text
    refused = httpx.get(f"{server.url}/ui/control", headers={"X-API-Key": "qd_not_a_key"}, timeout=30)
    assert refused.status_code == 303


def test_a_key_with_the_scope_is_served(server):
    key = server.key("mcp")
    assert request(server, "GET", "/mcp/presets", key).status_code == 200
    key = server.key("read")
    assert request(server, "POST", "/tools/get_presets", key).status_code == 200
    assert request(server, "GET", "/mcp/presets", key).status_code == 403, "the Aleatoric routes need `mcp`"


def test_metrics_need_the_metrics_scope(server):
    assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers={"X-API-Key": server.key("read")}, timeout=10).status_code == 403
    response = httpx.get(f"{server.url}/metrics", headers={"X-API-Key": server.key("metrics")}, timeout=10)
    assert response.status_code == 200


def test_keys_are_created_listed_and_revoked_through_the_cli(server):
    env_dir = ["--data-dir", str(server.data_dir)]
    created = subprocess.run([sys.executable, "-m", "quantdesk.server.cli", *env_dir, "keys", "create",
                              "--scopes", "read,generate", "--name", "cli-made"], capture_output=True, text=True,
                             check=True)
    secret = created.stdout.strip()
    assert secret.startswith("qd_") and len(secret) > 40
    listing = subprocess.run([sys.executable, "-m", "quantdesk.server.cli", *env_dir, "keys", "list", "--json"],
                             capture_output=True, text=True, check=True).stdout
    assert "cli-made" in listing and secret not in listing
    assert request(server, "POST", "/tools/get_health", secret).status_code == 200
    subprocess.run([sys.executable, "-m", "quantdesk.server.cli", *env_dir, "keys", "revoke", "cli-made"],
                   capture_output=True, check=True)
    assert request(server, "POST", "/tools/get_health", secret).status_code == 401


def test_unknown_scopes_are_refused_by_the_cli(server):
    result = subprocess.run([sys.executable, "-m", "quantdesk.server.cli", "--data-dir", str(server.data_dir),
                             "keys", "create", "--scopes", "read,superuser"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "superuser" in result.stderr


def test_keys_never_appear_in_logs_or_responses(server):
    key = server.key("read")
    response = request(server, "POST", "/tools/get_manifest", key)
    assert key not in response.text and server.admin_key not in response.text
    request(server, "POST", "/tools/get_health", "qd_wrong_key_that_must_not_be_logged")
    log = server.log()
    assert key not in log
    assert server.admin_key not in log
    assert "qd_wrong_key_that_must_not_be_logged" not in log


def test_with_no_key_configured_loopback_callers_are_served_and_told_so(tmp_path, server_factory):
    running = server_factory(tmp_path / "open", env_key=None)
    assert httpx.post(f"{running.url}/tools/get_presets", json={}, timeout=10).status_code == 200
    assert "no API key configured" in running.log()


def test_a_non_loopback_bind_without_a_key_refuses_to_start(tmp_path, quantdesk_bin, unused_port):
    env = {"QUANTDESK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([quantdesk_bin, "serve", "--host", "0.0.0.0", "--port", str(unused_port)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "refusing to bind" in result.stderr


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_both_credential_headers_work_on_rest(server, header):
    key = server.key("read")
    value = key if header == "X-API-Key" else f"Bearer {key}"
    response = httpx.post(f"{server.url}/tools/get_health", json={}, headers={header: value}, timeout=10)
    assert response.status_code == 200
