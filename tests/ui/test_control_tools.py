"""The Control and Tools pages in a real browser, and the login gate in front of every page."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_login_refuses_a_wrong_key_then_lets_the_right_one_in(browser: Any, ui_server: Any, login: Any,
                                                               shot: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{ui_server.url}/ui/control")
    assert "/ui/login" in page.url
    page.get_by_label("API key").fill("qd_not_a_key")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "unknown or revoked API key"
    shot(page, "login")
    login(page, ui_server, path="/ui/control")
    assert page.url.endswith("/ui/control")
    cookie = next(c for c in context.cookies() if c["name"] == "qd_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    context.close()


def test_a_post_without_the_csrf_token_is_refused(ui_server: Any) -> None:
    with httpx.Client(base_url=ui_server.url) as client:
        login = client.get("/ui/login")
        token = login.text.split('name="_csrf" value="')[1].split('"')[0]
        assert client.post("/ui/login", data={"_csrf": token, "key": ui_server.admin_key}).status_code == 303
        refused = client.post("/ui/form/control.pause", data={"reason": "from another site"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        status = httpx.post(f"{ui_server.url}/tools/get_control_status", json={}, headers=ui_server.headers()).json()
        assert status["reason"] != "from another site"


def test_trip_and_reset_the_kill_switch(page: Any, ui_server: Any, shot: Any) -> None:
    page.goto(f"{ui_server.url}/ui/control")
    page.wait_for_selector("#live-status[data-state=on]")
    kill = page.locator("#f-control-kill")
    kill.get_by_label("reason").fill("browser test: stop everything")
    page.once("dialog", lambda dialog: dialog.accept())
    kill.get_by_role("button", name="Trip the kill switch").click()
    page.wait_for_selector("#panel-status [data-state=killed]")
    assert "browser test: stop everything" in page.locator("#panel-decisions").inner_text()
    shot(page, "control-killed")

    reset = page.locator("#f-control-reset")
    reset.get_by_label("reason").fill("browser test: all clear")
    reset.get_by_role("button", name="Reset the kill switch").click()
    assert "must be true" in reset.locator(".field-error").inner_text().lower() or \
        reset.locator(".field-error").count() == 1
    reset.get_by_label("I understand").check()
    page.locator("#f-control-reset").get_by_role("button", name="Reset the kill switch").click()
    page.wait_for_selector("#panel-status [data-state=paused]")
    resume = page.locator("#f-control-resume")
    resume.get_by_role("button", name="Resume").click()
    page.wait_for_selector("#panel-status [data-state=running]")
    shot(page, "control")


def test_a_tool_form_shows_the_tools_own_error_beside_the_field(page: Any, ui_server: Any, shot: Any) -> None:
    page.goto(f"{ui_server.url}/ui/tools")
    page.get_by_label("Filter tools").fill("simulate_funding")
    page.locator("#tool-simulate_funding_regime summary").click()
    form = page.locator("#f-tool-simulate_funding_regime")
    form.wait_for()
    form.get_by_label("num periods", exact=True).fill("-3")
    form.get_by_role("button", name="Call simulate_funding_regime").click()
    error = page.locator("#f-tool-simulate_funding_regime [data-field=num_periods] .field-error")
    error.wait_for()
    assert "minimum" in error.inner_text() or ">=" in error.inner_text()
    assert page.locator("#f-tool-simulate_funding_regime-num_periods").get_attribute("aria-invalid") == "true"
    shot(page, "tools-field-error")


def test_a_password_user_logs_in_and_sees_only_what_their_scopes_allow(browser: Any, ui_server: Any,
                                                                       quantdesk_bin: str) -> None:
    subprocess.run([quantdesk_bin, "--data-dir", str(ui_server.data_dir), "users", "create", "viewer",
                    "--scopes", "read,stream"], input="correct horse battery", text=True, check=True)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{ui_server.url}/ui/control")
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in with a password").click()
    assert "incorrect username or password" in page.get_by_role("alert").inner_text()
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in with a password").click()
    page.wait_for_selector("#panel-status [data-state]")
    assert page.url.endswith("/ui/control")
    # A read-only user sees the state, and the kill switch's button is there but disabled, saying why.
    kill = page.locator("#f-control-kill")
    assert kill.get_by_role("button", name="Trip the kill switch").is_disabled()
    assert "control" in kill.inner_text()
    context.close()
