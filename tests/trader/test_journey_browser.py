"""A trader's day in real headless Chromium on PostgreSQL: deposit, open a position, watch the
margin ratio move after a revaluation without a reload, switch the position to isolated through
the preview and back, open an explanation, be refused an outsized withdrawal, find another
trader's account a 404. Its screenshots go to a temporary folder, or to static/screenshots/ for
the README under `make screenshots` (tests.browser.screenshots_dir)."""

import random
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import TRADER
from margin.models import AssetPrice, MarkPrice, Notification
from margin.services.ledger import margin_account_open
from margin.services.revaluation import revaluation_tick_run
from tests.browser import screenshots_dir
from tests.revaluation.factories import funded_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def reprice(*, btc: Decimal) -> None:
    """A new BTC price (mark and index), then a revaluation of the book on it."""
    now = timezone.now()
    MarkPrice.objects.filter(instrument__symbol="BTCUSDT").update(
        mark_price=btc, index_price=btc, updated_at=now
    )
    AssetPrice.objects.filter(asset__symbol="BTC").update(price=btc, updated_at=now)
    revaluation_tick_run(now=now)


def walk_prices(steps: int, *, start: Decimal) -> Decimal:
    """A short random walk of BTC with a revaluation at each step: history for the charts."""
    rng = random.Random(7)
    price = start
    for _ in range(steps):
        price = (price * Decimal(str(1 + rng.gauss(0, 0.004)))).quantize(Decimal("0.01"))
        reprice(btc=price)
    return price


@pytest.fixture
def csp_violations():
    return []


@pytest.fixture
def trader_page(page, login, make_user, csp_violations):
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.log("
        "'CSP violation: ' + e.violatedDirective + ' ' + e.sourceFile + ':' + e.lineNumber"
        " + ' on ' + location.pathname + ' ' + (e.target.outerHTML || '').slice(0, 160)));"
    )
    page.on(
        "console",
        lambda m: csp_violations.append(m.text) if m.text.startswith("CSP violation") else None,
    )
    page.on("pageerror", lambda error: csp_violations.append(str(error)))
    return page


def margin_ratio(page) -> str:
    return page.locator("[data-testid=margin-ratio]").inner_text()


def test_trader_journey(
    trader_page, login, live_server, make_user, reference, csp_violations, tmp_path
):
    page = trader_page
    shots = screenshots_dir(default=tmp_path)
    trader = make_user(TRADER)
    account = margin_account_open(owner=trader)
    someone_else = funded_account(user=make_user(TRADER), usdt="1000")
    login(trader)
    page.wait_for_url("**/accounts/")
    page.goto(f"{live_server.url}/accounts/{account.pk}/")

    # deposit 20,000 USDT: the preview, then the receipt
    page.fill("#deposit-amount", "20000")
    page.locator("#deposit-preview table").wait_for()
    page.click("#deposit-form button[type=submit]")
    page.locator("#deposit-form [data-testid=receipt]").wait_for()
    assert "Deposited 20,000.00 USDT." in page.locator("#deposit-form").inner_text()

    # open a long of 1 BTCUSDT at the mark
    page.fill("#trade-quantity", "1")
    page.locator("#trade-preview [data-testid=ratio-after]").wait_for()
    page.click("#trade-form button[type=submit]")
    row = page.locator("#positions tr[data-symbol=BTCUSDT]")
    row.wait_for()
    assert "Long" in row.inner_text()

    # a price tick and a revaluation: the polled overview moves, the page is not reloaded
    page.evaluate("window.stillTheSamePage = true")
    before = margin_ratio(page)
    reprice(btc=Decimal("88000"))
    page.wait_for_function(
        "before => document.querySelector('[data-testid=margin-ratio]').innerText !== before",
        arg=before,
        timeout=10_000,
    )
    assert page.evaluate("window.stillTheSamePage") is True
    assert "stale" not in page.locator("[data-testid=revalued-at]").inner_text()

    # to isolated through the side-by-side preview, then back to cross
    row.locator("[data-testid=to-isolated]").click()
    page.locator("#mode-preview caption", has_text="Cross pool").wait_for()
    assert "cross wallet → BTCUSDT isolated" in page.locator("#mode-preview").inner_text()
    page.screenshot(path=shots / "margin-mode-preview.png")
    page.click("[data-testid=confirm-switch]")
    page.locator("[data-testid=done]").wait_for()
    page.keyboard.press("Escape")
    row.locator("[data-testid=to-cross]").wait_for()
    row.locator("[data-testid=to-cross]").click()
    page.locator("#mode-preview caption", has_text="BTCUSDT").wait_for()
    page.click("[data-testid=confirm-switch]")
    page.locator("[data-testid=done]").wait_for()
    page.keyboard.press("Escape")
    row.locator("[data-testid=to-isolated]").wait_for()

    # the explanation of the liquidation price: its formula with the numbers put in
    row.locator("[data-testid=liquidation-price]").click()
    steps = page.locator("[data-testid=explain-steps]")
    steps.wait_for()
    assert "liquidation price =" in steps.inner_text()
    assert "entry price" in steps.inner_text()
    page.screenshot(path=shots / "explain-liquidation-price.png")
    page.keyboard.press("Escape")

    # a withdrawal beyond the bound is refused with the reason
    page.fill("#withdraw-amount", "50000")
    page.click("#withdraw-form button[type=submit]")
    refusal = page.locator("#withdraw-form [data-testid=withdraw-error]")
    refusal.wait_for()
    assert "The wallet holds" in refusal.inner_text()

    # the what-if slider: a 20% fall of BTC, recomputed at once
    page.locator("#whatif-shock").fill("-20")
    page.locator("[data-testid=shock]", has_text="-20%").wait_for()

    # history for the charts, a margin call in the top bar, then the screenshots
    walk_prices(40, start=Decimal("88000"))
    Notification.objects.create(
        user=trader, account=account, kind=Notification.Kind.MARGIN_CALL, text="Margin call: 81%"
    )
    page.reload()
    page.locator(".charts[data-loaded=true]").wait_for()
    page.locator("#whatif-shock").fill("-15")
    page.locator("[data-testid=shock]", has_text="-15%").wait_for()
    page.locator("[data-testid=unread-count]").wait_for(timeout=12_000)
    page.screenshot(path=shots / "account-dashboard.png", full_page=True)
    page.goto(f"{live_server.url}/accounts/{account.pk}/history/")
    page.screenshot(path=shots / "account-history.png", full_page=True)
    page.goto(f"{live_server.url}/accounts/")
    page.screenshot(path=shots / "account-list.png", full_page=True)

    # another trader's account is not there at all
    response = page.goto(f"{live_server.url}/accounts/{someone_else.pk}/")
    assert response.status == 404
    assert "Not found" in page.content()

    assert csp_violations == []


def test_one_poll_refreshes_the_overview_the_positions_and_the_collateral(
    trader_page, login, live_server, make_user, reference, csp_violations
):
    # given: BTC held both as collateral and as a position, the dashboard open
    page = trader_page
    trader = make_user(TRADER)
    account = funded_account(user=trader, usdt="20000", BTC="1", fills=[("BTCUSDT", "buy", "1")])
    login(trader)
    page.wait_for_url("**/accounts/")
    page.goto(f"{live_server.url}/accounts/{account.pk}/")
    mark = page.locator("#positions tr[data-symbol=BTCUSDT] td").nth(3)
    btc_price = page.locator("#collateral tr[data-asset=BTC] td").nth(2)
    before = [margin_ratio(page), mark.inner_text(), btc_price.inner_text()]
    polled = []
    page.on("request", lambda request: polled.append(request.url.split("?")[0]))
    # when: BTC moves and the book is revalued
    reprice(btc=Decimal("80000"))
    # then: all three sections show it, and the only request the page made was its one poll
    page.wait_for_function(
        """before => [
            document.querySelector('[data-testid=margin-ratio]').innerText,
            document.querySelector('#positions tr[data-symbol=BTCUSDT]').cells[3].innerText,
            document.querySelector('#collateral tr[data-asset=BTC]').cells[2].innerText,
        ].every((now, n) => now !== before[n])""",
        arg=before,
        timeout=10_000,
    )
    assert "80,000" in mark.inner_text() and "80,000" in btc_price.inner_text()
    assert polled and set(polled) == {f"{live_server.url}/accounts/{account.pk}/live/"}
    assert csp_violations == []
