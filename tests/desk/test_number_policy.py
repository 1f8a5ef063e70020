"""No raw number reaches a person: every page of a book with desk work on it (trader, desk,
disclosure), as a trader, an officer, a manager and a visitor, is searched for more decimals
than the policy prints, exponent notation, Decimal reprs and Python dict reprs."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User
from accounts.roles import TRADER
from margin.models import (
    CascadeRun,
    MarginAccount,
    Position,
    Proposal,
    StressRun,
)
from margin.services.desk import account_reduce_only_set, case_open
from margin.services.liquidation import insurance_fund_deposit
from margin.services.margin_mode import position_margin_mode_switch
from margin.services.proposals import credit_tier_change_propose, forced_reduction_propose
from margin.services.revaluation import revaluation_tick_run
from tests.desk.conftest import DESK_PAGES
from tests.desk.demo import demo_reviewed, demo_seeded
from tests.revaluation.factories import funded_account
from tests.trader.factories import new_key

pytestmark = pytest.mark.django_db

# The policy prints at most 8 decimals (a quantity); prices at most 6, money 2, ratios 2.
RAW_NUMBER = re.compile(
    r"\d\.\d{9,}"  # more decimals than any figure is printed to
    r"|\d[eE][+-]?\d"  # exponent notation (2E+2, 1e-05)
    r"|Decimal\("  # a Decimal's repr
    r"|\{'|': '"  # a Python dict's repr
)
# Attributes that carry no figure a person reads (a CSP nonce, the CSRF token, ids).
NOT_FIGURES = re.compile(r'(nonce|value|content|X-CSRFToken)="[^"]*"|"X-CSRFToken": "[^"]*"')


def raw_numbers(html: str) -> list[str]:
    text = NOT_FIGURES.sub("", html)
    return [text[max(0, m.start() - 60) : m.end() + 20] for m in RAW_NUMBER.finditer(text)]


@pytest.fixture
def worked_book(book, market, officer, manager, make_user):
    """The desk book plus a trader of its own with cross and isolated positions in three
    coins; a case with reduce-only, an executed forced reduction and tier change, a stress run
    and a funded insurance fund; then a tick."""
    trader = make_user(TRADER)
    mine = funded_account(
        user=trader,
        usdt="25000.123456789",
        BTC="0.333333333",
        ETH="1.5",
        fills=[("BTCUSDT", "buy", "0.123"), ("ETHUSDT", "sell", "2.5"), ("SOLUSDT", "buy", "7")],
    )
    position_margin_mode_switch(
        account=mine,
        instrument="SOLUSDT",
        mode="isolated",
        isolated_margin=Decimal("400.5"),
        idempotency_key=new_key(),
    )
    insurance_fund_deposit(amount=Decimal("250000.555"), memo="seed the fund")
    account = book["margin_call"]
    case = case_open(account=account, actor=officer, summary="at risk")
    account_reduce_only_set(
        account=account, actor=officer, reduce_only=True, reason="ratio", case=case
    )
    position = Position.objects.get(margin_account=account)
    forced_reduction_propose(
        position=position, quantity=Decimal("0.125"), reason="cut", proposer=officer, case=case
    )
    from margin.models import CreditTier
    from margin.services.proposals import proposal_approve

    credit_tier_change_propose(
        account=mine, tier=CreditTier.objects.get(code="vip"), reason="fund", proposer=officer
    )
    for proposal in Proposal.objects.all():
        proposal_approve(proposal=proposal, approver=manager, note="ok")
    revaluation_tick_run(now=market())
    return {"trader": trader, "mine": mine, "case": case, "account": account}


def desk_urls(worked) -> list[str]:
    urls = [reverse(name) for name in DESK_PAGES]
    urls += [
        reverse("desk:account", args=[worked["account"].pk]),
        reverse("desk:account", args=[worked["mine"].pk]),
        reverse("desk:case", args=[worked["case"].pk]),
        reverse("desk:audit_csv"),
        reverse("disclosure"),
    ]
    urls += [reverse("desk:proposal", args=[p.pk]) for p in Proposal.objects.all()]
    urls += [reverse("desk:stress_detail", args=[r.pk]) for r in StressRun.objects.all()]
    return urls


def trader_urls(mine) -> list[str]:
    pk = mine.pk
    return [
        reverse("trader:accounts"),
        reverse("trader:account", args=[pk]),
        reverse("trader:history", args=[pk]),
        reverse("trader:history", args=[pk]) + "?kind=fills",
        reverse("trader:history", args=[pk]) + "?kind=states",
        reverse("trader:notifications"),
        reverse("trader:whatif", args=[pk]) + "?shock=-37",
        reverse("trader:whatif", args=[pk]) + "?shock=13&asset=BTC",
        reverse("trader:explain", args=[pk]) + "?figure=account.margin_ratio",
        reverse("trader:operation", args=[pk, "trade"])
        + "?instrument=BTCUSDT&side=sell&quantity=0.123",
        reverse("trader:position_operation", args=[pk, "SOLUSDT", "isolated-margin"]),
        reverse("trader:position_operation", args=[pk, "BTCUSDT", "margin-mode"]),
        reverse("trader:position_operation", args=[pk, "BTCUSDT", "leverage"]),
        reverse("disclosure"),
    ]


def test_no_raw_number_on_any_page(client, worked_book, officer, manager):
    # given
    client.force_login(officer)
    client.post(reverse("desk:stress_run"), {"scenario": "uniform", "move": "-0.137"})
    found = {}
    # when: every page, as each role
    for user, urls in (
        (officer, desk_urls(worked_book)),
        (manager, desk_urls(worked_book)),
        (worked_book["trader"], trader_urls(worked_book["mine"])),
    ):
        client.force_login(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            body = (
                b"".join(response.streaming_content) if response.streaming else response.content
            ).decode()
            if hits := raw_numbers(body):
                found[f"{user.username} {url}"] = hits[:3]
    # then
    assert found == {}, "\n".join(f"{page}: {hits}" for page, hits in found.items())


FIGURE_KEY = re.compile(r"figure=([\w.]+)")


@pytest.fixture
def seeded_demo(transactional_db, settings):
    """`make run`'s demo with a small book: the demo users and traders, 200 book accounts, a
    funded insurance fund; two market ticks and revaluations; a stress run, a cascade run and
    a case with a proposal on the account most at risk."""
    demo_seeded(settings, book_accounts=200)
    return demo_reviewed()


def test_no_raw_number_on_any_page_of_the_seeded_demo(client, seeded_demo):
    found: dict[str, list[str]] = {}

    def visit(url: str) -> str:
        response = client.get(url)
        assert response.status_code == 200, url
        body = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode()
        if hits := raw_numbers(body):
            found[url] = hits[:3]
        return body

    # the desk, as an officer and a manager: every page, the queue's pages, each detail
    desk = [reverse(name) for name in DESK_PAGES]
    desk += [reverse("desk:landing") + f"?page={n}" for n in (2, 3)]
    desk += [reverse("desk:landing") + "?min_ratio=50", reverse("desk:audit_csv")]
    desk += [reverse("desk:account", args=[seeded_demo["at_risk"].pk])]
    desk += [reverse("desk:case", args=[seeded_demo["case"].pk])]
    desk += [reverse("desk:proposal", args=[p.pk]) for p in Proposal.objects.all()]
    desk += [reverse("desk:stress_detail", args=[r.pk]) for r in StressRun.objects.all()]
    desk += [reverse("desk:cascade_detail", args=[r.pk]) for r in CascadeRun.objects.all()]
    for username in ("officer", "manager"):
        client.force_login(User.objects.get(username=username))
        for url in desk:
            visit(url)
    # the demo trader: each account, every figure's explain, the what-if, history
    client.force_login(User.objects.get(username="trader"))
    visit(reverse("trader:accounts"))
    visit(reverse("trader:notifications"))
    explained = 0
    for account in MarginAccount.objects.filter(owner__username="trader"):
        page = visit(reverse("trader:account", args=[account.pk]))
        for key in sorted(set(FIGURE_KEY.findall(page))):
            visit(reverse("trader:explain", args=[account.pk]) + f"?figure={key}")
            explained += 1
        visit(reverse("trader:history", args=[account.pk]))
        visit(reverse("trader:whatif", args=[account.pk]) + "?shock=-23")
    client.logout()
    visit(reverse("disclosure"))
    # then
    assert explained > 20
    assert found == {}, "\n".join(f"{page}: {hits}" for page, hits in found.items())
