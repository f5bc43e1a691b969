"""Dashboard fixtures: a keyed `quantdesk serve` per module, Debian's Chromium driven headless by Playwright,
a logged-in page, and screenshots of what the tests saw (in .ui-screenshots/, not committed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("QUANTDESK_SCREENSHOTS", Path(__file__).resolve().parents[2] / ".ui-screenshots"))


def chromium_path() -> str:
    found = os.environ.get("QUANTDESK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is missing: `make test-ui` installs Debian's package (scripts/ensure_chromium.sh)")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def ui_server(module_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server with keys (so the dashboard asks for one), on the desk's defaults: a live synthetic market."""
    return module_server_factory(tmp_path_factory.mktemp("ui"))


def log_in(page: Any, server: Any, key: str | None = None, path: str = "/ui/") -> None:
    page.goto(f"{server.url}{path}")
    page.get_by_label("API key").fill(key or server.admin_key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#live-status")


@pytest.fixture
def page(browser: Any, ui_server: Any) -> Iterator[Any]:
    """A fresh browser context logged in with the admin key; console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(opened, ui_server)
    yield opened
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def take_shot(page: Any, name: str) -> Path:
    """A full-page screenshot for a reviewer to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def shot() -> Any:
    """`shot(page, name)`: a full-page screenshot in .ui-screenshots/<name>.png."""
    return take_shot


@pytest.fixture
def login() -> Any:
    """`login(page, server, key=None, path="/ui/")`: log in through the form (the admin key by default)."""
    return log_in
