"""The Agents page in a real browser: create an agent through the form, follow its first iteration live, read that
iteration's code and computed feature report, message it, ask it, see its holdout beside the noise floor, delete it.

Agents run on the server's default market data, quantdesk's synthetic generator (as tests/agents does): the
60-day minimum lookback is built in seconds on first use, and one built-in iteration takes about ten seconds.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser
SLOW = 240_000
"""Milliseconds: an agent's first iteration (data built, one sandboxed walk-forward run) on a busy 2-core box."""


def test_a_bad_value_shows_the_tools_error_beside_its_field(page: Any, ui_server: Any) -> None:
    page.goto(f"{ui_server.url}/ui/agents")
    form = page.locator("#f-agents-create")
    form.get_by_label("goal").fill("anything")
    form.get_by_label("days of history").fill("30")
    form.get_by_role("button", name="Create agent").click()
    error = page.locator("#f-agents-create [data-field=days_back] .field-error")
    error.wait_for()
    assert "60" in error.inner_text()
    assert page.locator("#f-agents-create-days_back").get_attribute("aria-invalid") == "true"

    page.locator("#f-agents-create-days_back").fill("60")
    page.locator("#f-agents-create-challenge").fill("ETH-2H-BINARY")
    page.locator("#f-agents-create").get_by_role("button", name="Create agent").click()
    wrong = page.locator("#f-agents-create [data-field=challenge] .field-error")
    wrong.wait_for()
    assert "ETH-2H-BINARY" in wrong.inner_text() or "challenge" in wrong.inner_text().lower()
    assert "No agents yet" in page.locator("#panel-agents").inner_text()


def test_start_an_agent_and_follow_it_to_its_holdout(page: Any, ui_server: Any, shot: Any) -> None:
    page.goto(f"{ui_server.url}/ui/agents")
    form = page.locator("#f-agents-create")
    assert form.get_by_label("researcher").input_value() == "builtin"
    form.get_by_label("goal").fill("Explore momentum signals")
    form.get_by_label("min iterations").fill("1")
    form.get_by_label("max iterations").fill("2")
    form.get_by_role("button", name="Create agent").click()
    page.locator("#f-agents-create .result").wait_for()
    row = page.locator("#panel-agents tr[data-agent]").first
    row.wait_for()  # the list re-rendered after the form succeeded
    agent_id = row.get_attribute("data-agent")
    assert agent_id and "ETH-1H-BINARY" in row.inner_text()
    shot(page, "agents")

    row.get_by_role("link", name=agent_id).click()
    page.wait_for_url(re.compile(rf"agent={agent_id}"))
    assert "No holdout score yet" in page.locator("#panel-holdout").inner_text()
    # No reload: the agent topic of the event bus re-renders the iterations panel when one finishes.
    first = page.locator("#panel-iterations tr[data-iteration='1']")
    first.wait_for(timeout=SLOW)
    assert re.search(r"0\.\d{4} AUC", first.inner_text())
    chart = page.locator("#panel-iterations figure.chart")
    chart.locator(".uplot").wait_for()
    assert '"x":[1' in (chart.get_attribute("data-chart") or "").replace(" ", "")

    # pause first, so the message waits in the inbox instead of being read by the next iteration
    page.locator(f"#f-agents-pause-{agent_id}").get_by_role("button", name="Pause").click()
    page.locator(f"#f-agents-pause-{agent_id} .result").wait_for()
    message = page.locator(f"#f-agents-message-{agent_id}")
    message.get_by_label("message").fill("try rsi")
    message.get_by_role("button", name="Send to inbox").click()
    page.locator("#panel-inbox pre.inbox", has_text="Operator: try rsi").wait_for()
    page.locator("#panel-chat li", has_text="try rsi").wait_for()
    ask = page.locator(f"#f-agents-ask-{agent_id}")
    ask.get_by_label("question").fill("How is the AUC trending?")
    ask.get_by_role("button", name="Ask").click()
    page.locator("#panel-chat li.chat-assistant", has_text="iterations so far").wait_for(timeout=60_000)

    page.locator("#panel-iterations tr[data-iteration='1'] a").click()
    page.wait_for_url(re.compile(r"iteration=1"))
    panel = page.locator("#panel-iteration")
    assert "Iteration 1" in panel.locator("h3").first.inner_text()
    assert "class" in panel.locator("pre.code").inner_text()
    features = panel.locator(".features-table tbody tr")
    assert features.count() >= 1 and "spearman" in panel.inner_text().lower()

    page.locator(f"#f-agents-resume-{agent_id}").get_by_role("button", name="Resume").click()
    page.locator("#panel-holdout [data-holdout=done]").wait_for(timeout=SLOW)
    holdout = page.locator("#panel-holdout").inner_text()
    assert "Noise floor" in holdout and re.search(r"0\.\d{4} AUC", holdout)
    page.locator("#panel-holdout figure.chart .uplot").wait_for()
    api = httpx.post(f"{ui_server.url}/tools/get_agent_holdout", json={"agent_id": agent_id},
                     headers=ui_server.headers()).json()
    floor = api["holdout"]["metrics"]["noise_floor"]["floor"]
    assert f"{floor:.4f} AUC" in holdout
    assert "Operator: try rsi" in page.locator("#panel-inbox").inner_text()  # finished: never read
    shot(page, "agents-detail")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.locator("#panel-holdout figure.chart .uplot").wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width} px)"
    shot(page, "agents-phone")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#f-agents-delete-{agent_id}").get_by_role("button", name="Delete").click()
    page.locator("#panel-status", has_text="no agent").wait_for()
    gone = httpx.post(f"{ui_server.url}/tools/get_agent", json={"agent_id": agent_id}, headers=ui_server.headers())
    assert gone.status_code == 404
