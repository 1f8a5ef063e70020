import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from margin.api.problems import PROBLEM_CONTENT_TYPE, problem_type
from margin.models import Fill, Journal, JournalKind, Position
from margin.numbers import money_text, percent_text, price_text
from margin.services.revaluation import revaluation_tick_run
from tests.api.conftest import funded_account, order, post

pytestmark = pytest.mark.django_db


def test_the_account_list_holds_only_the_callers_accounts(trader_api, account, other_account):
    # when
    response = trader_api.get(reverse("api:accounts"))
    # then
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [account.pk]
    assert rows[0]["latest_snapshot"] is None
    assert rows[0]["credit_tier"] == "standard"


def test_the_account_list_pages_with_a_cursor(trader_api, trader, reference):
    # given
    opened = [funded_account(trader, name=f"Book {n}").pk for n in range(3)]
    # when
    first = trader_api.get(reverse("api:accounts"), {"page_size": 2}).json()
    second = trader_api.get(first["next"]).json()
    # then
    assert [row["id"] for row in first["results"] + second["results"]] == opened
    assert second["next"] is None


def test_an_account_shows_its_wallets_and_the_engines_figures(trader_api, account):
    response = trader_api.get(reverse("api:account", args=[account.pk]))
    assert response.status_code == 200
    body = response.json()
    assert body["wallets"] == [{"asset": "USDT", "balance": "10000.000000000000000000"}]
    assert Decimal(body["figures"]["account"]["collateral_value"]) == Decimal("10000")


def test_another_users_account_is_a_404_exactly_like_a_missing_one(trader_api, other_account):
    # when
    theirs = trader_api.get(reverse("api:account", args=[other_account.pk]))
    missing = trader_api.get(reverse("api:account", args=[other_account.pk + 1000]))
    # then
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    assert theirs["Content-Type"] == PROBLEM_CONTENT_TYPE


def test_a_deposit_books_once_and_its_key_replays_byte_identical(trader_api, account):
    # given
    url = reverse("api:deposits", args=[account.pk])
    body = {"asset": "USDT", "amount": "250.5"}
    # when
    first = post(trader_api, url, body, "dep-1")
    again = post(trader_api, url, body, "dep-1")
    # then
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert first.json()["details"]["amount"] == "250.5"
    deposits = Journal.objects.filter(margin_account=account, kind=JournalKind.DEPOSIT)
    assert deposits.count() == 2  # the seed deposit and this one, not three


def test_the_same_key_with_another_body_is_a_422_and_books_nothing(trader_api, account):
    # given
    url = reverse("api:deposits", args=[account.pk])
    post(trader_api, url, {"asset": "USDT", "amount": "1"}, "dep-2")
    # when
    response = post(trader_api, url, {"asset": "USDT", "amount": "2"}, "dep-2")
    # then
    assert response.status_code == 422
    assert response.json()["type"] == problem_type("idempotency-key-reused")
    assert Journal.objects.filter(margin_account=account, kind=JournalKind.DEPOSIT).count() == 2


def test_a_write_without_an_idempotency_key_is_refused(trader_api, account):
    response = trader_api.post(
        reverse("api:deposits", args=[account.pk]), {"asset": "USDT", "amount": "1"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["type"] == problem_type("idempotency-key-missing")
    assert list(response.json()["errors"]) == ["Idempotency-Key"]


def test_a_dry_run_previews_and_books_nothing(trader_api, account):
    # when
    response = post(
        trader_api,
        reverse("api:withdrawals", args=[account.pk]),
        {"asset": "USDT", "amount": "100", "dry_run": True},
        "wd-preview",
    )
    # then
    assert response.status_code == 200
    preview = response.json()
    assert preview["refusal"] is None
    before = Decimal(preview["before"]["account"]["collateral_value"])
    after = Decimal(preview["after"]["account"]["collateral_value"])
    assert before - after == Decimal("100")
    assert not Journal.objects.filter(margin_account=account, kind=JournalKind.WITHDRAWAL).exists()


def test_a_refused_withdrawal_is_a_400_naming_the_field(trader_api, account):
    response = post(
        trader_api,
        reverse("api:withdrawals", args=[account.pk]),
        {"asset": "USDT", "amount": "20000"},
        "wd-too-much",
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == problem_type("refused")
    assert "amount" in problem["errors"]


def test_bad_input_is_a_400_with_per_field_messages(trader_api, account):
    response = post(
        trader_api,
        reverse("api:orders", args=[account.pk]),
        {"instrument": "BTCUSDT", "side": "up", "quantity": "lots"},
        "order-bad",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"side", "quantity"}


def test_an_order_opens_a_position_that_lists_and_shows(trader_api, account):
    # when
    response = post(
        trader_api,
        reverse("api:orders", args=[account.pk]),
        {"instrument": "BTCUSDT", "side": "buy", "quantity": "0.01"},
        "order-1",
    )
    # then
    assert response.status_code == 201, response.content
    position = Position.objects.get(margin_account=account, instrument__symbol="BTCUSDT")
    assert position.quantity == Decimal("0.01")
    assert Fill.objects.filter(position=position).count() == 1
    listed = trader_api.get(reverse("api:positions", args=[account.pk]), {"open": "true"})
    assert [row["instrument"] for row in listed.json()["results"]] == ["BTCUSDT"]
    shown = trader_api.get(reverse("api:position", args=[account.pk, "BTCUSDT"])).json()
    assert shown["side"] == "long" and shown["isolated_margin"] is None


def test_leverage_and_a_switch_to_isolated_then_added_margin(trader_api, account):
    # given
    order(trader_api, account, "BTCUSDT", key="order-2")
    # when
    leverage = post(
        trader_api,
        reverse("api:leverage", args=[account.pk, "BTCUSDT"]),
        {"leverage": "5"},
        "lev-1",
    )
    preview = post(
        trader_api,
        reverse("api:margin-mode", args=[account.pk, "BTCUSDT"]),
        {"mode": "isolated", "isolated_margin": "300", "dry_run": True},
        "mode-preview",
    )
    switched = post(
        trader_api,
        reverse("api:margin-mode", args=[account.pk, "BTCUSDT"]),
        {
            "mode": "isolated",
            "isolated_margin": "300",
            "expected_fingerprint": preview.json()["fingerprint"],
        },
        "mode-1",
    )
    added = post(
        trader_api,
        reverse("api:isolated-margin", args=[account.pk, "BTCUSDT"]),
        {"action": "add", "amount": "50"},
        "iso-1",
    )
    # then
    assert leverage.status_code == 201, leverage.content
    assert preview.status_code == 200 and preview.json()["refusal"] is None
    assert switched.status_code == 201, switched.content
    assert added.status_code == 201, added.content
    shown = trader_api.get(reverse("api:position", args=[account.pk, "BTCUSDT"])).json()
    assert shown["margin_mode"] == "isolated"
    assert Decimal(shown["leverage"]) == 5
    assert Decimal(shown["isolated_margin"]) == Decimal("350")


def test_a_stale_fingerprint_is_refused(trader_api, account):
    response = post(
        trader_api,
        reverse("api:deposits", args=[account.pk]),
        {"asset": "USDT", "amount": "1", "expected_fingerprint": "0" * 64},
        "dep-stale",
    )
    assert response.status_code == 400
    assert "fingerprint" in response.json()["errors"]


def test_history_lists_entries_newest_first_and_filters_by_kind(trader_api, account):
    # given
    order(trader_api, account, "BTCUSDT", key="order-3")
    url = reverse("api:history", args=[account.pk])
    # when
    everything = trader_api.get(url).json()["results"]
    deposits = trader_api.get(url, {"kind": "deposit"}).json()["results"]
    bad = trader_api.get(url, {"kind": "gift"})
    # then
    assert [row["id"] for row in everything] == sorted(
        (row["id"] for row in everything), reverse=True
    )
    assert {row["kind"] for row in deposits} == {"deposit"}
    assert len(deposits) < len(everything)
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["kind"]


def test_an_unknown_instrument_position_is_a_404(trader_api, account):
    response = trader_api.get(reverse("api:position", args=[account.pk, "NOPEUSDT"]))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("2024-06-09T05:57:16+19:58", 200),  # an offset PostgreSQL refuses, read in UTC
        ("0164-06-09T05:57:16+19:58", 400),  # before the dates a filter takes (2000-2099)
        ("0001-01-01T00:00:00+10:00", 400),  # before year 1 in UTC
        ("yesterday", 400),
    ],
)
def test_history_times_answer_a_4xx_never_a_500(trader_api, account, since, status):
    response = trader_api.get(reverse("api:history", args=[account.pk]), {"since": since})
    assert response.status_code == status
    if status == 400:
        assert list(response.json()["errors"]) == ["since"]


def test_history_since_an_offset_time_counts_in_utc(trader_api, account):
    response = trader_api.get(
        reverse("api:history", args=[account.pk]), {"since": "2001-01-01T00:00:00+19:58"}
    )
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1  # the seed deposit


def test_explain_gives_the_accounts_figures_now_with_their_steps(trader_api, account):
    # given
    order(trader_api, account, "ETHUSDT", side="sell", quantity="1", key="order-explain")
    # when
    answer = trader_api.get(reverse("api:explain", args=[account.pk])).json()
    # then
    figures = trader_api.get(reverse("api:account", args=[account.pk])).json()["figures"]
    assert answer["account"] == figures["account"]
    steps = answer["explain"]["positions.ETHUSDT.maintenance_margin"]
    assert steps[-1]["result"] == answer["positions"][0]["maintenance_margin"]


def test_the_latest_snapshot_says_how_old_it_is_and_whether_it_is_stale(
    trader_api, account, settings
):
    # given: a revaluation older than the stale limit
    old = revaluation_tick_run(
        now=timezone.now() - timedelta(seconds=settings.SNAPSHOT_STALE_AFTER_S + 60)
    )
    # when
    aged = trader_api.get(reverse("api:account", args=[account.pk])).json()["latest_snapshot"]
    # then
    assert aged["at"].startswith(old.start.tick.started_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert aged["age_s"] > settings.SNAPSHOT_STALE_AFTER_S
    assert aged["is_stale"] is True

    # given: a fresh one
    revaluation_tick_run(now=timezone.now())
    # when
    rows = trader_api.get(reverse("api:accounts")).json()["results"]
    # then
    assert rows[0]["latest_snapshot"]["is_stale"] is False
    assert 0 <= rows[0]["latest_snapshot"]["age_s"] < settings.SNAPSHOT_STALE_AFTER_S


def test_display_fields_print_the_figures_as_the_pages_do(trader_api, account):
    # given: a position and a revaluation
    response = post(
        trader_api,
        reverse("api:orders", args=[account.pk]),
        {"instrument": "BTCUSDT", "side": "buy", "quantity": "0.01"},
        "order-display",
    )
    assert response.status_code == 201, response.content
    revaluation_tick_run(now=timezone.now())
    # when
    snapshot = trader_api.get(reverse("api:account", args=[account.pk])).json()["latest_snapshot"]
    position = trader_api.get(reverse("api:position", args=[account.pk, "BTCUSDT"])).json()
    # then: beside each exact decimal, its text under the number policy
    shown = snapshot["display"]
    assert shown["margin_ratio"] == percent_text(Decimal(snapshot["margin_ratio"]))
    assert shown["margin_ratio"].endswith("%")
    assert shown["margin_balance"] == money_text(Decimal(snapshot["margin_balance"]), "USD")
    assert re.fullmatch(r"[\d,]+\.\d\d USD", shown["maintenance_margin"])
    assert position["display"]["quantity"] == "0.01"
    assert position["display"]["entry_price"] == price_text(Decimal(position["entry_price"]))
    assert position["display"]["isolated_margin"] == "—"
    for text in [*shown.values(), *position["display"].values()]:
        assert not re.search(r"\d\.\d{3,}\b(?! ?%)|E\+|Decimal\(", text), text
