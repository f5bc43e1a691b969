"""The dashboard is served at /ui unless it is turned off, and the root document says where it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from quantdesk.server.app import create_app
from quantdesk.server.settings import Settings


def test_the_dashboard_can_be_turned_off(tmp_path: Path, threaded_server: Any) -> None:
    settings = Settings.from_env({"QUANTDESK_DATA_DIR": str(tmp_path), "QUANTDESK_DASHBOARD": "0"})
    with threaded_server(create_app(settings)) as server:
        assert httpx.get(f"{server.url}/ui/control", timeout=10).status_code == 404
        assert "dashboard" not in httpx.get(f"{server.url}/", timeout=10).json()


def test_the_root_document_points_at_the_dashboard(tmp_path: Path, threaded_server: Any) -> None:
    settings = Settings.from_env({"QUANTDESK_DATA_DIR": str(tmp_path)})
    with threaded_server(create_app(settings)) as server:
        assert httpx.get(f"{server.url}/", timeout=10).json()["dashboard"] == "/ui/"
        page = httpx.get(f"{server.url}/ui/control", timeout=10)  # loopback, no keys: straight in
        assert page.status_code == 200 and "Decision log" in page.text
