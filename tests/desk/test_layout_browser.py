"""In Chromium at a phone's 390 px and a desktop's 1,400 px: no page is wider than the window
(tables scroll inside their card, the header wraps), for a trader, an officer, a manager and a
visitor."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.roles import TRADER
from margin.models import Proposal
from margin.services.desk import case_open
from margin.services.proposals import forced_reduction_propose
from margin.services.revaluation import revaluation_tick_run
from tests.browser import screenshots_dir
from tests.desk.conftest import DESK_PAGES
from tests.revaluation.factories import funded_account
from tests.second_factor import submit_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1400)
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


def overflowing(browser, live_server, password, user, paths) -> dict[str, int]:
    """Each path wider than the window at each width, by how many pixels."""
    found = {}
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        if user is not None:
            page.goto(f"{live_server.url}/login/")
            submit_login(page, user, password)
            page.wait_for_load_state()
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            if (extra := page.evaluate(OVERFLOW)) > 0:
                found[f"{width}px {path}"] = extra
        context.close()
    return found


def test_no_page_is_wider_than_the_window(
    browser, live_server, password, book, market, officer, manager, make_user, tmp_path
):
    # given: a trader with positions, a case and a proposal on the book, a tick
    trader = make_user(TRADER)
    mine = funded_account(
        user=trader,
        usdt="25000",
        BTC="0.3",
        fills=[("BTCUSDT", "buy", "0.1"), ("ETHUSDT", "sell", "2")],
    )
    case = case_open(account=book["margin_call"], actor=officer, summary="at risk")
    position = book["margin_call"].positions.get()
    forced_reduction_propose(
        position=position, quantity=Decimal("0.1"), reason="cut", proposer=officer, case=case
    )
    revaluation_tick_run(now=market())
    desk = [reverse(name) for name in DESK_PAGES] + [
        reverse("desk:account", args=[book["margin_call"].pk]),
        reverse("desk:case", args=[case.pk]),
        reverse("desk:proposal", args=[Proposal.objects.get().pk]),
    ]
    trader_pages = [
        reverse("trader:accounts"),
        reverse("trader:account", args=[mine.pk]),
        reverse("trader:history", args=[mine.pk]),
        reverse("trader:notifications"),
        reverse("api_tokens"),
        reverse("disclosure"),
    ]
    # when
    found = {}
    for user, paths in (
        (trader, trader_pages),
        (officer, desk),
        (manager, desk),
        (None, ["/login/", reverse("disclosure")]),
    ):
        found |= {
            f"{user.username if user else 'visitor'} {k}": v
            for k, v in overflowing(browser, live_server, password, user, paths).items()
        }
    # then
    assert found == {}
    # the README's desk screenshots (saved only under `make screenshots`)
    shots = screenshots_dir(default=tmp_path)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    submit_login(page, officer, password)
    page.wait_for_url("**/desk/")
    page.screenshot(path=shots / "desk-queue.png", full_page=True)
    page.goto(f"{live_server.url}{reverse('desk:heatmap')}")
    page.screenshot(path=shots / "desk-heatmap.png", full_page=True)
    context.close()
