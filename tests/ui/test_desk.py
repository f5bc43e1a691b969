"""The Desk page in a real browser: place a market order through the page's form and see the position appear
and change live (from the event bus, without reloading), rest a limit order far from the market, see it in the
open orders and cancel it with its own button, and see the tool's error beside a bad quantity.

The server is the desk's default (a real clock over quantdesk's synthetic market, paper trading) but for an equity
sample every 5 s instead of 60 s, so the equity curve grows while the tests run.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser
FORM = "#f-desk-place_order"
SAMPLE_SECONDS = 5


@pytest.fixture(scope="module")
def ui_server(module_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return module_server_factory(tmp_path_factory.mktemp("ui-desk"),
                                 extra_env={"QUANTDESK_DESK_EQUITY_SAMPLE_SECONDS": str(SAMPLE_SECONDS)})


def open_desk(page: Any, server: Any) -> None:
    page.goto(f"{server.url}/ui/desk")
    page.wait_for_selector("#live-status[data-state=on]")
    page.evaluate("window.qdNotReloaded = true")  # gone if anything reloads the page


def fill_order(page: Any, symbol: str, side: str, order_type: str, quantity: str, price: str = "") -> None:
    page.locator(f"{FORM}-symbol").fill(symbol)
    page.locator(f"{FORM}-side").select_option(side)
    page.locator(f"{FORM}-order_type").select_option(order_type)
    page.locator(f"{FORM}-quantity").fill(quantity)
    page.locator(f"{FORM}-price").fill(price)
    page.locator(FORM).get_by_role("button", name="Place order").click()


def test_a_market_order_from_the_form_shows_its_position_live(page: Any, ui_server: Any, shot: Any) -> None:
    open_desk(page, ui_server)
    row = page.locator('#panel-positions tr[data-symbol="ETH-USDT-PERP"]')
    assert row.count() == 0
    fill_order(page, "ETH-USDT-PERP", "buy", "market", "0.05")
    page.locator(f"{FORM} .result").wait_for()
    page.wait_for_function("document.querySelector('#panel-positions tr[data-symbol=\"ETH-USDT-PERP\"]')"
                           "?.innerText.includes('0.05 ETH')")
    assert "long" in row.inner_text()
    page.wait_for_function("document.querySelector('#panel-fills')?.innerText.includes('ETH-USDT-PERP')")

    # An order from another door (the REST API): only the event bus can tell this page about it.
    placed = httpx.post(f"{ui_server.url}/tools/place_order", headers=ui_server.headers(), timeout=30,
                        json={"symbol": "ETH-USDT-PERP", "side": "buy", "order_type": "market", "quantity": 0.05})
    assert placed.status_code == 200 and placed.json()["accepted"], placed.text
    page.wait_for_function("document.querySelector('#panel-positions tr[data-symbol=\"ETH-USDT-PERP\"]')"
                           "?.innerText.includes('0.1 ETH')")
    assert "1 position" in page.locator("#panel-account").inner_text()
    assert page.evaluate("window.qdNotReloaded === true")
    shot(page, "desk-position")


def test_the_equity_curve_grows_live(page: Any, ui_server: Any) -> None:
    open_desk(page, ui_server)
    # each equity sample is a bus event that re-renders the panel: the curve appears once two exist
    page.wait_for_selector("#panel-equity figure.chart .uplot", timeout=4 * SAMPLE_SECONDS * 1000)
    first = page.locator("#panel-equity .small").inner_text()
    page.wait_for_function("(before) => document.querySelector('#panel-equity .small')?.innerText !== before",
                           arg=first, timeout=4 * SAMPLE_SECONDS * 1000)
    page.wait_for_selector("#panel-equity figure.chart[aria-label='Drawdown below peak'] .uplot")
    assert page.evaluate("window.qdNotReloaded === true")


def test_a_limit_order_far_from_the_market_rests_and_is_cancelled_with_its_button(page: Any, ui_server: Any,
                                                                                  shot: Any) -> None:
    open_desk(page, ui_server)
    fill_order(page, "BTC-USDT-PERP", "buy", "limit", "0.003", "50000")
    page.locator(f"{FORM} .result").wait_for()
    orders = page.locator("#panel-orders tr[data-order-id]")
    orders.first.wait_for()
    assert orders.count() == 1
    order_id = orders.first.get_attribute("data-order-id")
    row = page.locator(f'#panel-orders tr[data-order-id="{order_id}"]')
    assert "BTC-USDT-PERP" in row.inner_text() and "50,000" in row.inner_text()
    assert "open" in page.locator("#panel-orders .latest-order").inner_text()
    shot(page, "desk")

    row.get_by_role("button", name="Cancel").click()
    row.wait_for(state="detached")
    assert "No open order" in page.locator("#panel-orders").inner_text()
    page.wait_for_selector("#panel-orders .latest-order[data-status=cancelled]")
    listed = httpx.post(f"{ui_server.url}/tools/list_orders", headers=ui_server.headers(), json={}).json()
    assert listed["count"] == 0
    assert page.evaluate("window.qdNotReloaded === true")


@pytest.mark.parametrize(("typed", "says"), [("0", "minimum"), ("abc", "not a number")])
def test_a_bad_quantity_shows_the_error_beside_the_quantity_field(page: Any, ui_server: Any, shot: Any,
                                                                   typed: str, says: str) -> None:
    open_desk(page, ui_server)
    fill_order(page, "BTC-USDT-PERP", "buy", "market", typed)
    error = page.locator(f"{FORM} [data-field=quantity] .field-error")
    error.wait_for()
    assert says in error.inner_text()
    assert page.locator(f"{FORM}-quantity").get_attribute("aria-invalid") == "true"
    assert page.locator(f"{FORM} .field-error").count() == 1
    assert page.locator(f"{FORM}-quantity").input_value() == typed
    if typed == "0":
        shot(page, "desk-quantity-error")


def test_an_order_the_risk_checks_refuse_says_why(page: Any, ui_server: Any) -> None:
    open_desk(page, ui_server)
    fill_order(page, "BTC-USDT-PERP", "buy", "market", "5")  # about 475,000 USD: over the 250,000 per order
    page.wait_for_selector("#panel-orders .latest-order[data-status=rejected]")
    assert "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in page.locator("#panel-orders .latest-order").inner_text()
    assert page.locator('#panel-positions tr[data-symbol="BTC-USDT-PERP"]').count() == 0


def test_the_desk_reads_on_a_phone(browser: Any, ui_server: Any, login: Any, shot: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    login(phone, ui_server, path="/ui/desk")
    phone.wait_for_selector("#panel-positions")
    phone.wait_for_selector("#panel-equity figure.chart .uplot")
    widest = phone.evaluate("document.documentElement.scrollWidth")
    assert widest <= 390, f"the page scrolls sideways on a phone ({widest} px)"
    shot(phone, "desk-phone")
    context.close()
