"""In Chromium at a phone's 390 px and a desktop's 1,400 px: no page is wider than the window
(tables scroll inside their card, the header wraps), for a trader, an officer, a manager and a
visitor."""

import time

import pytest
from django.urls import reverse

from accounts.models import User
from margin.management.commands.seed_demo import DEMO_USERS
from margin.models import (
    CascadeRun,
    MarginAccount,
    MarginSnapshot,
    Proposal,
    RevaluationTick,
    StressRun,
)
from margin.services.stress_runs import stress_run_create
from tests.browser import screenshots_dir
from tests.desk.conftest import DESK_PAGES
from tests.desk.demo import demo_reviewed, demo_seeded
from tests.second_factor import submit_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1400)
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"
QUIET_MS, QUIET_STEP_MS = 150, 25


def overflowing(browser, live_server, password, user, paths) -> dict[str, int]:
    """Each path wider than the window at each width, by how many pixels. Each page is loaded
    once and measured at every width by resizing the window (media queries apply on resize, as
    when a phone turns): half the page loads of a context per width."""
    found = {}
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    in_flight = set()
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    if user is not None:
        page.goto(f"{live_server.url}/login/")
        submit_login(page, user, password)
    for path in paths:
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        page.goto(f"{live_server.url}{path}")
        fragments_loaded(page, in_flight)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            if (extra := page.evaluate(OVERFLOW)) > 0:
                found[f"{width}px {path}"] = extra
    context.close()
    return found


def fragments_loaded(page, in_flight: set) -> None:
    """Returns once no request has been in flight for QUIET_MS: the fragments htmx loads
    with the page are in it. Playwright's "networkidle" waits the same way for a fixed 500 ms,
    which over the demo's ~60 pages was most of this test's time; a fragment's request is
    seen as in flight from its start, so a shorter quiet spell only has to cover the moment
    between one swap and the request it triggers."""
    quiet = 0
    deadline = time.monotonic() + 15
    while quiet < QUIET_MS:
        assert time.monotonic() < deadline, f"requests still in flight: {in_flight}"
        page.wait_for_timeout(QUIET_STEP_MS)
        quiet = quiet + QUIET_STEP_MS if not in_flight else 0


def demo_pages() -> dict[str, list[str]]:
    """Every page of the seeded demo, by the demo user who sees it."""
    reviewed = demo_reviewed()
    at_risk, case = reviewed["at_risk"], reviewed["case"]
    desk = [reverse(name) for name in DESK_PAGES] + [
        reverse("desk:landing") + "?state=warning&state=margin_call&state=liquidation",
        reverse("desk:greeks"),
        reverse("desk:account", args=[at_risk.pk]),
        reverse("desk:case", args=[case.pk]),
        *(reverse("desk:proposal", args=[p.pk]) for p in Proposal.objects.all()),
        *(reverse("desk:stress_detail", args=[r.pk]) for r in StressRun.objects.all()),
        *(reverse("desk:cascade_detail", args=[r.pk]) for r in CascadeRun.objects.all()),
    ]
    mine = MarginAccount.objects.filter(owner__username="trader").order_by("pk")
    trader = [reverse("trader:accounts")]
    for account in mine:
        trader += [
            reverse("trader:account", args=[account.pk]),
            reverse("trader:options", args=[account.pk]),
            reverse("trader:history", args=[account.pk]),
            reverse("trader:history", args=[account.pk]) + "?kind=fills",
            reverse("trader:history", args=[account.pk]) + "?kind=states",
        ]
    trader += [
        reverse("trader:notifications"),
        reverse("api_tokens"),
        reverse("disclosure"),
        "/no-such-page/",
    ]
    return {
        "trader": trader,
        "officer": desk,
        "manager": desk,
        "visitor": ["/login/", reverse("disclosure"), "/no-such-page/"],
    }


def test_no_page_of_the_seeded_demo_is_wider_than_the_window(browser, live_server, settings):
    # given: the demo as `make run` seeds it (a smaller book), ticked twice, with a stress
    # run, a cascade run, and a case with a proposal on the account most at risk
    demo_seeded(settings, book_accounts=300)
    pages = demo_pages()
    passwords = {username: password for username, password, _ in DEMO_USERS}
    # when
    found = {}
    for username, paths in pages.items():
        user = None if username == "visitor" else User.objects.get(username=username)
        password = passwords.get(username, "")
        found |= {
            f"{username} {k}": v
            for k, v in overflowing(browser, live_server, password, user, paths).items()
        }
    # then
    assert found == {}


def test_readme_screenshots_of_the_seeded_demo(browser, live_server, settings, tmp_path):
    """The README's desk and trader pictures, taken from the demo a visitor sees (saved into
    static/screenshots/ only under `make screenshots`): the queue with its accounts at risk,
    the heat map, a stress run's matrix, and the trader's stress-loss explain."""
    demo_seeded(settings, book_accounts=3000)
    officer = User.objects.get(username="officer")
    run = stress_run_create(actor=officer, kind="uniform", options={"move": -0.25})
    at_risk = MarginSnapshot.objects.filter(
        tick=RevaluationTick.objects.order_by("-pk").first(),
        state__in=["warning", "margin_call", "liquidation"],
    )
    assert at_risk.count() >= 20
    shots = screenshots_dir(default=tmp_path)
    passwords = {username: password for username, password, _ in DEMO_USERS}
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    submit_login(page, officer, passwords["officer"])
    page.wait_for_url("**/desk/")
    page.screenshot(path=shots / "desk-queue.png")
    page.goto(f"{live_server.url}{reverse('desk:heatmap')}")
    page.screenshot(path=shots / "desk-heatmap.png", full_page=True)
    page.goto(f"{live_server.url}{reverse('desk:stress_detail', args=[run.pk])}")
    page.screenshot(path=shots / "desk-stress-run.png")
    context.close()
    trader = User.objects.get(username="trader")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    submit_login(page, trader, passwords["trader"])
    main = MarginAccount.objects.get(owner=trader, name="Main")
    page.goto(f"{live_server.url}{reverse('trader:account', args=[main.pk])}")
    page.click('[data-testid="stress-loss"]')
    page.wait_for_selector('[data-testid="explain-steps"]')
    assert "covariance loss" in page.inner_text('[data-testid="explain-steps"]')
    page.screenshot(path=shots / "explain-stress-loss.png")
    context.close()
    assert all((shots / name).stat().st_size > 10_000 for name in SCREENSHOTS)


SCREENSHOTS = (
    "desk-queue.png",
    "desk-heatmap.png",
    "desk-stress-run.png",
    "explain-stress-loss.png",
)
