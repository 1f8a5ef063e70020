"""In Chromium: a market order submitted before its preview appeared books nothing; the form
shows the preview, and the next click books that order."""

import pytest

from accounts.roles import TRADER
from margin.models import Fill
from tests.revaluation.factories import funded_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_order_sent_before_its_preview_is_shown_first_then_booked(
    page, login, live_server, make_user, reference
):
    # given
    trader = make_user(TRADER)
    account = funded_account(user=trader, usdt="20000")
    login(trader)
    page.wait_for_url("**/accounts/")
    page.goto(f"{live_server.url}/accounts/{account.pk}/")
    # when: the quantity typed and Enter pressed at once (the preview waits 300 ms for typing)
    page.fill("#trade-quantity", "0.01")
    page.press("#trade-quantity", "Enter")
    # then: nothing booked, the preview is in the form
    page.locator("#trade-preview [data-testid=preview-first]").wait_for()
    page.locator("#trade-preview [data-testid=ratio-after]").wait_for()
    assert Fill.objects.filter(position__margin_account=account).count() == 0
    # when: placed again, now that its preview is on screen
    page.click("#trade-form button[type=submit]")
    page.locator("#trade-form [data-testid=receipt]").wait_for()
    # then
    assert Fill.objects.filter(position__margin_account=account).count() == 1
