"""The options journey in real headless Chromium on PostgreSQL: from the chain, buy a call
and sell a put through the order form's preview; the positions show their Greeks, the net
Greeks and the risk matrix with its worst scenario; the dashboard's what-if moves the options'
vol and price; no CSP violation."""

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import TRADER
from tests.browser import screenshots_dir
from tests.options_support import options_listed, series
from tests.revaluation.factories import funded_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def csp_violations():
    return []


@pytest.fixture
def watched_page(page, csp_violations):
    page.on(
        "console",
        lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: csp_violations.append(str(error)))
    return page


def order_from_chain(page, button: str, symbol: str) -> None:
    """Click the chain's button, wait for the form's preview, place the order."""
    page.click(f"[data-testid={button}-{symbol}]")
    page.locator("#trade-preview [data-testid=ratio-after]").wait_for()
    page.click("#trade-form button[type=submit]")
    page.locator("#trade-form [data-testid=receipt]").wait_for()
    page.locator(f"#option-positions tr[data-symbol='{symbol}']").wait_for(timeout=10_000)


def test_buy_a_call_and_sell_a_put_from_the_chain(
    watched_page, login, live_server, make_user, reference, settings, csp_violations, tmp_path
):
    options_listed(settings, now=timezone.now())
    page = watched_page
    trader = make_user(TRADER)
    account = funded_account(user=trader, usdt="50000")
    login(trader)
    page.wait_for_url("**/accounts/")
    page.goto(f"{live_server.url}/accounts/{account.pk}/options/")
    page.locator("#option-chain table.chain").first.wait_for()
    assert "No option positions" in page.locator("#option-positions").inner_text()

    call, put = series("call", 98000, -1).symbol, series("put", 92000, -1).symbol
    order_from_chain(page, "buy", call)
    order_from_chain(page, "sell", put)

    call_row = page.locator(f"#option-positions tr[data-symbol='{call}']")
    put_row = page.locator(f"#option-positions tr[data-symbol='{put}']")
    assert Decimal(call_row.locator("[data-testid=position-delta]").inner_text()) > 0
    # a short put is long delta too
    assert Decimal(put_row.locator("[data-testid=position-delta]").inner_text()) > 0
    page.locator("#net-greeks tr[data-underlying=BTC]").wait_for()
    page.locator("#risk-matrix [data-testid=worst-scenario]").wait_for()
    assert page.locator("#risk-matrix [data-testid=worst-scenario]").count() == 1
    page.screenshot(path=screenshots_dir(default=tmp_path) / "account-options.png", full_page=True)

    # a position's mark and the grid's scan risk open their explain in the drawer
    call_row.locator("[data-testid=explain-mark]").click()
    steps = page.locator("#drawer [data-testid=explain-steps]")
    steps.locator("text=mark (Black-76 call)").wait_for()
    assert "N(d1)" in steps.inner_text()
    page.keyboard.press("Escape")  # the drawer covers the page until closed
    page.click("#net-greeks [data-testid=explain-scan-risk]")
    steps.locator("text=BTC scenario 24").wait_for()
    assert steps.locator("li", has_text="(binds)").count() == 1
    page.keyboard.press("Escape")
    page.click(f"#option-chain [data-testid=explain-{put}]")
    page.locator("#drawer", has_text="the chain's, as marked").wait_for()
    assert csp_violations == []


def shock_pnl(page, symbol: str) -> Decimal:
    """The what-if's P&L of the shock on one option, as the page prints it (+1,234.50 /
    −1,234.50)."""
    text = page.locator(
        f"#whatif-options tr[data-symbol='{symbol}'] [data-testid=option-shock-pnl]"
    )
    return Decimal(text.inner_text().replace(",", "").replace("−", "-").replace("+", ""))


def test_the_what_if_moves_the_vol_and_the_price_of_the_options(
    watched_page, login, live_server, make_user, reference, settings, csp_violations
):
    options_listed(settings, now=timezone.now())
    page = watched_page
    trader = make_user(TRADER)
    call, put = series("call", 98000, -1).symbol, series("put", 92000, -1).symbol
    account = funded_account(
        user=trader, usdt="50000", fills=[(call, "buy", "1"), (put, "sell", "1")]
    )
    login(trader)
    page.wait_for_url("**/accounts/")
    page.goto(f"{live_server.url}/accounts/{account.pk}/")
    page.locator("#whatif-options").wait_for()

    # vol up at an unchanged price: the long call gains, the short put loses
    page.locator("#whatif-vol").fill("50")
    page.locator("[data-testid=vol-shock]", has_text="+50%").wait_for()
    assert shock_pnl(page, call) > 0 > shock_pnl(page, put)

    # vol down: the other way round
    page.locator("#whatif-vol").fill("-40")
    page.locator("[data-testid=vol-shock]", has_text="-40%").wait_for()
    assert shock_pnl(page, call) < 0 < shock_pnl(page, put)

    # vols held, the price 10 % up: both gain (a short put is long delta)
    page.locator("#whatif-vol").fill("0")
    page.locator("#whatif-shock").fill("10")  # the form sends both: the answer is at vol 0
    page.locator("[data-testid=shock]", has_text="+10%").wait_for()
    assert shock_pnl(page, call) > 0 and shock_pnl(page, put) > 0
    assert page.locator("[data-testid=shocked-ratio]").inner_text()
    assert csp_violations == []
