"""The Datasets page in a real browser: generate from a preset with a progress bar, describe, chart, download,
delete, and the tool's own error beside the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

# Records every value the progress bar takes (oldValue of each change, then the last), whatever re-renders.
_WATCH_PROGRESS = """() => {
  window.__progress = [];
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target.id === "gen-progress") window.__progress.push(r.oldValue === null ? null : Number(r.oldValue));
    }
    const bar = document.getElementById("gen-progress");
    if (bar && bar.hasAttribute("value")) window.__progress.push(Number(bar.getAttribute("value")));
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["value"], attributeOldValue: true });
}"""
_IMAGE_DRAWN = """() => { const img = document.querySelector("#panel-chart img");
  return img !== null && img.complete && img.naturalWidth > 0 && img.naturalHeight > 0; }"""


def _generate_by_api(server: Any, seed: int) -> str:
    """A dataset made through the REST door, for the tests that start from one."""
    headers = server.headers()
    preset = httpx.post(f"{server.url}/tools/get_presets", json={"name": "btc_calm"}, headers=headers).json()
    config = {**preset["presets"][0]["manifest"], "seed": seed}
    made = httpx.post(f"{server.url}/tools/generate_dataset", json={"config": config, "duration_seconds": 300},
                      headers=headers, timeout=120).json()
    return str(made["cache_key"])


def test_generate_from_a_preset_then_describe_chart_and_download(page: Any, ui_server: Any, shot: Any,
                                                                 tmp_path: Path) -> None:
    page.goto(f"{ui_server.url}/ui/datasets")
    form = page.locator("#generate-form")
    form.wait_for()
    page.evaluate(_WATCH_PROGRESS)
    form.get_by_label("Preset").select_option("btc_calm")
    form.get_by_label("Duration (seconds)").fill("900")
    form.get_by_label("Seed").fill("20261203")
    form.get_by_role("button", name="Generate").click()

    result = page.locator("#gen-outcome .result")
    result.wait_for()
    assert "Generated" in result.inner_text()
    bar = page.locator("#gen-progress")
    assert bar.get_attribute("value") == "1" and bar.is_visible()
    seen = [v for v in page.evaluate("window.__progress") if v is not None]
    assert any(0 < v < 1 for v in seen), f"the bar never stood between empty and full: {seen}"
    assert "published" in page.locator("#gen-status").inner_text() or "Done" in page.locator("#gen-status").inner_text()
    key = result.locator("a code").first.inner_text()
    row = page.locator(f'#panel-cache tr[data-key="{key}"]')
    row.wait_for()  # the list re-rendered after the job, without a reload
    assert "BTC-USDT-PERP" in row.inner_text() and "MiB" in row.inner_text()
    shot(page, "datasets")

    # The same preset, duration and seed again: the same file, from the cache, and the bar still ends full.
    form.get_by_role("button", name="Generate").click()
    page.wait_for_function("""() => document.querySelector("#gen-outcome").textContent
      .includes("Served from the cache")""")
    assert key in page.locator("#gen-outcome").inner_text() and bar.get_attribute("value") == "1"
    assert page.locator(f'#panel-cache tr[data-key="{key}"]').count() == 1

    row.get_by_role("link", name="Describe").click()
    page.wait_for_url(f"**/ui/datasets?key={key}*")
    facts = page.locator("#panel-describe table.facts-table")
    facts.wait_for()
    rows = facts.locator("tbody tr")
    assert rows.count() >= 10
    verdicts = " ".join(facts.locator(".verdict").all_inner_texts())
    assert "pass" in verdicts and ("fail" in verdicts or "n/a" in verdicts)  # said in words, not only colour
    assert "passed" in page.locator("#panel-describe .facts-summary").inner_text()
    page.wait_for_function(_IMAGE_DRAWN)
    assert page.locator(f'#panel-cache tr[data-key="{key}"][aria-current="true"]').count() == 1
    shot(page, "datasets-describe")

    with page.expect_download() as download:
        page.locator("#panel-chart").get_by_role("link", name="Download Parquet").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"{key}.parquet"
    assert saved.read_bytes()[:4] == b"PAR1" and saved.read_bytes()[-4:] == b"PAR1"
    listed = httpx.post(f"{ui_server.url}/tools/get_cache_stats", json={}, headers=ui_server.headers()).json()
    assert saved.stat().st_size == next(e["bytes"] for e in listed["entries"] if e["cache_key"] == key)


def test_a_bad_duration_shows_the_error_beside_the_field(page: Any, ui_server: Any, shot: Any) -> None:
    page.goto(f"{ui_server.url}/ui/datasets")
    page.locator("#generate-form").wait_for()
    page.locator("#generate-form").get_by_label("Duration (seconds)").fill("0")
    page.locator("#generate-form").get_by_role("button", name="Generate").click()
    error = page.locator('#generate-form [data-field="duration_seconds"] .field-error')
    error.wait_for()
    assert "minimum of 1" in error.inner_text()  # generate_dataset's own schema said so
    assert page.locator("#gen-duration").get_attribute("aria-invalid") == "true"
    assert page.locator("#gen-duration").evaluate("el => el === document.activeElement")
    shot(page, "datasets-field-error")

    page.locator("#gen-duration").fill("an hour")
    page.locator("#generate-form").get_by_role("button", name="Generate").click()
    page.wait_for_function("""() => { const e = document.querySelector('[data-field="duration_seconds"] .field-error');
      return e !== null && e.textContent.includes("not a whole number"); }""")
    assert page.locator('[data-field="preset"] .field-error').count() == 0


def test_delete_a_dataset_from_the_list(page: Any, ui_server: Any) -> None:
    key = _generate_by_api(ui_server, seed=7001)
    page.goto(f"{ui_server.url}/ui/datasets")
    row = page.locator(f'#panel-cache tr[data-key="{key}"]')
    row.wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    listed = httpx.post(f"{ui_server.url}/tools/get_cache_stats", json={}, headers=ui_server.headers()).json()
    assert key not in [e["cache_key"] for e in listed["entries"]]


def test_the_page_reads_at_phone_width(browser: Any, ui_server: Any, login: Any, shot: Any) -> None:
    key = _generate_by_api(ui_server, seed=7002)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    login(page, ui_server, path=f"/ui/datasets?key={key}")
    page.locator("#generate-form").wait_for()
    page.locator("#panel-describe table.facts-table").wait_for()
    page.wait_for_function(_IMAGE_DRAWN)
    assert "size=small" in page.evaluate("document.querySelector('#panel-chart img').currentSrc")
    shot(page, "datasets-phone")
    # Each table row reads as a card; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()
    assert not errors, errors
