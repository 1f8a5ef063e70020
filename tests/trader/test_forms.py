"""Every form validates inline, books once per idempotency key, previews before it books, and
turns a service's refusal into a message on the form: never a 500, never a half write."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from margin.models import Fill, Journal, LedgerAccount, MarginMode, MarkPrice, Position
from margin.services.positions import position_market_fill
from tests.trader.factories import new_key, previewed


def operation_url(account, name):
    return reverse("trader:operation", args=[account.pk, name])


def position_url(account, symbol, name):
    return reverse("trader:position_operation", args=[account.pk, symbol, name])


def wallet(account, asset="USDT") -> Decimal:
    return LedgerAccount.objects.get(
        margin_account=account, kind="wallet", asset__symbol=asset
    ).balance


def position(account, symbol="BTCUSDT") -> Position:
    return Position.objects.get(margin_account=account, instrument__symbol=symbol)


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("", "This field is required."),
        ("-5", "Enter an amount above 0."),
        ("abc", "Enter a number such as 1,000 or 1000.50."),
        ("1,00", "Enter a number such as 1,000 or 1000.50."),
        ("1e3", "Type the amount in plain digits (1,000 or 1000.50), not as an exponent."),
        ("2E+2", "Type the amount in plain digits (1,000 or 1000.50), not as an exponent."),
    ],
)
def test_deposit_validates_inline_and_books_nothing(htmx, account, amount, error):
    # given
    journals = Journal.objects.count()
    # when
    response = htmx.post(
        operation_url(account, "deposit"),
        {"asset": "USDT", "amount": amount, "idempotency_key": new_key()},
    )
    # then
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Journal.objects.count() == journals


@pytest.mark.parametrize(
    ("typed", "booked"),
    [("1,000", Decimal(1000)), ("1000.50", Decimal("1000.5")), (" 12,345.6 ", Decimal("12345.6"))],
)
def test_deposit_takes_amounts_as_people_type_them(htmx, account, typed, booked):
    # given
    before = wallet(account)
    # when
    response = htmx.post(
        operation_url(account, "deposit"),
        {"asset": "USDT", "amount": typed, "idempotency_key": new_key()},
    )
    # then
    assert response.status_code == 200 and "field-error" not in response.content.decode()
    assert wallet(account) - before == booked


def test_an_invalid_form_without_htmx_is_a_422(trader_client, account):
    # when
    response = trader_client.post(
        operation_url(account, "deposit"),
        {"asset": "USDT", "amount": "", "idempotency_key": new_key()},
    )
    # then
    assert response.status_code == 422


def test_deposit_books_and_asks_the_live_fragments_to_refresh(htmx, account):
    # given
    before = wallet(account)
    key = new_key()
    # when
    response = htmx.post(
        operation_url(account, "deposit"),
        {"asset": "USDT", "amount": "250", "idempotency_key": key},
    )
    # then
    assert response.status_code == 200
    assert wallet(account) == before + 250
    assert response["HX-Trigger"] == "account-changed"
    content = response.content.decode()
    assert "Deposited 250.00 USDT." in content
    assert key not in content  # the fresh form carries a new key


def test_a_double_click_books_once(htmx, account):
    # given
    before = wallet(account)
    journals = Journal.objects.count()
    data = {"asset": "USDT", "amount": "100", "idempotency_key": new_key()}
    # when
    htmx.post(operation_url(account, "deposit"), data)
    second = htmx.post(operation_url(account, "deposit"), data)
    # then
    assert wallet(account) == before + 100
    assert Journal.objects.count() == journals + 1
    assert "nothing booked twice" in second.content.decode()


def test_the_same_key_for_another_order_is_refused(htmx, account):
    # given
    key = new_key()
    htmx.post(
        operation_url(account, "deposit"), {"asset": "USDT", "amount": "1", "idempotency_key": key}
    )
    journals = Journal.objects.count()
    # when
    response = htmx.post(
        operation_url(account, "deposit"), {"asset": "USDT", "amount": "2", "idempotency_key": key}
    )
    # then
    assert response.status_code == 200
    assert 'class="form-error"' in response.content.decode()
    assert Journal.objects.count() == journals


def test_a_success_without_htmx_redirects_to_the_account(trader_client, account):
    # when
    response = trader_client.post(
        operation_url(account, "deposit"),
        {"asset": "USDT", "amount": "5", "idempotency_key": new_key()},
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("trader:account", args=[account.pk])


def test_withdrawing_more_than_allowed_says_why_and_books_nothing(htmx, account):
    # given: a long of 4 BTC at 10x asks 38,000 USD of initial margin of the 55,000 held
    position_market_fill(
        account=account,
        instrument="BTCUSDT",
        side="buy",
        quantity=Decimal(4),
        idempotency_key=new_key(),
    )
    journals = Journal.objects.count()
    # when
    response = htmx.post(
        operation_url(account, "withdraw"),
        {"asset": "BTC", "amount": "0.5", "idempotency_key": new_key()},
    )
    # then
    content = response.content.decode()
    assert response.status_code == 200
    assert "You can withdraw at most" in content
    assert "initial margin" in content
    assert Journal.objects.count() == journals
    assert wallet(account, "BTC") == Decimal("0.5")


def test_withdraw_preview_shows_the_refusal_and_the_most_that_can_leave(htmx, account):
    # when
    response = htmx.post(
        operation_url(account, "withdraw"),
        {"preview": "1", "asset": "USDT", "amount": "20000", "idempotency_key": new_key()},
    )
    # then
    content = response.content.decode()
    assert 'data-testid="refusal"' in content
    assert "The wallet holds" in content
    assert 'data-testid="max-withdrawal"' in content


def test_a_withdrawal_within_the_bound_books(htmx, account):
    # given
    before = wallet(account)
    # when
    htmx.post(
        operation_url(account, "withdraw"),
        {"asset": "USDT", "amount": "1000", "idempotency_key": new_key()},
    )
    # then
    assert wallet(account) == before - 1000


def test_order_preview_shows_the_margin_after_and_books_nothing(htmx, account):
    # given
    fills = Fill.objects.count()
    # when
    response = htmx.post(
        operation_url(account, "trade"),
        {
            "preview": "1",
            "instrument": "BTCUSDT",
            "side": "buy",
            "quantity": "0.2",
            "idempotency_key": new_key(),
        },
    )
    # then
    content = response.content.decode()
    assert 'data-testid="ratio-after"' in content
    assert "Taker fee" in content
    assert "increase" in content
    assert Fill.objects.count() == fills


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"instrument": "BTCUSDT", "side": "buy", "quantity": ""}, "This field is required."),
        ({"instrument": "BTCUSDT", "side": "buy", "quantity": "0"}, "Enter an amount above 0."),
        ({"instrument": "NOPEUSDT", "side": "buy", "quantity": "1"}, "Select a valid choice."),
        ({"instrument": "BTCUSDT", "side": "hold", "quantity": "1"}, "Select a valid choice."),
    ],
)
def test_order_validates_inline(htmx, account, data, error):
    # given
    fills = Fill.objects.count()
    # when
    response = htmx.post(operation_url(account, "trade"), {**data, "idempotency_key": new_key()})
    # then
    assert error in response.content.decode()
    assert Fill.objects.count() == fills


def test_an_order_beyond_the_free_collateral_is_refused_with_the_engines_reason(htmx, account):
    # when
    response = htmx.post(
        operation_url(account, "trade"),
        {"instrument": "BTCUSDT", "side": "buy", "quantity": "50", "idempotency_key": new_key()},
    )
    # then
    assert "Not enough free collateral" in response.content.decode()
    assert position(account).quantity == Decimal("0.1")


@pytest.mark.parametrize(
    ("side", "quantity", "after"),
    [("buy", "0.1", "0.2"), ("sell", "0.04", "0.06"), ("sell", "0.1", "0")],
)
def test_orders_increase_reduce_and_close(htmx, account, side, quantity, after):
    # given: the order previewed, as the page does before it can be placed
    order = {"instrument": "BTCUSDT", "side": side, "quantity": quantity}
    order = previewed(htmx, operation_url(account, "trade"), order)
    # when
    response = htmx.post(operation_url(account, "trade"), {**order, "idempotency_key": new_key()})
    # then
    assert response.status_code == 200
    assert response["HX-Trigger"] == "account-changed"
    assert position(account).quantity == Decimal(after)


def test_an_order_submitted_before_its_preview_books_nothing_and_shows_the_preview(htmx, account):
    # given
    fills = Fill.objects.count()
    order = {"instrument": "BTCUSDT", "side": "buy", "quantity": "0.05"}
    # when: placed before the preview came back (no fingerprint of it in the form)
    response = htmx.post(operation_url(account, "trade"), {**order, "idempotency_key": new_key()})
    # then: nothing booked; the preview is shown in the form, ready to confirm
    content = response.content.decode()
    assert Fill.objects.count() == fills
    assert 'data-testid="preview-first"' in content
    assert 'data-testid="ratio-after"' in content and 'name="previewed"' in content
    assert "HX-Trigger" not in response


def test_an_order_changed_after_its_preview_books_nothing(htmx, account):
    # given: 0.05 previewed, then the quantity typed over before the new preview came back
    fills = Fill.objects.count()
    shown = previewed(
        htmx,
        operation_url(account, "trade"),
        {"instrument": "BTCUSDT", "side": "buy", "quantity": "0.05"},
    )
    # when
    response = htmx.post(
        operation_url(account, "trade"), {**shown, "quantity": "5", "idempotency_key": new_key()}
    )
    # then
    assert Fill.objects.count() == fills
    assert 'data-testid="preview-first"' in response.content.decode()


def test_close_fills_the_order_form_with_the_opposite_side_and_whole_size(htmx, account):
    # when
    response = htmx.get(
        operation_url(account, "trade"),
        {"instrument": "BTCUSDT", "side": "sell", "quantity": "0.1"},
    )
    # then
    content = response.content.decode()
    assert re.search(r'value="sell"[^>]*checked', content)
    assert 'value="0.1"' in content


def test_leverage_above_the_bracket_cap_is_refused_inline(htmx, account):
    # when
    response = htmx.post(
        position_url(account, "BTCUSDT", "leverage"),
        {"leverage": "150", "idempotency_key": new_key()},
    )
    # then
    assert "At most 125× in this position&#x27;s bracket." in response.content.decode()
    assert position(account).leverage == Decimal(10)


def test_leverage_panel_shows_the_bracket_cap(htmx, account):
    # when
    response = htmx.get(position_url(account, "BTCUSDT", "leverage"))
    # then
    assert "Cap of bracket 1: <b>125×</b>" in response.content.decode()


def test_leverage_within_the_cap_is_set(htmx, account):
    # when
    response = htmx.post(
        position_url(account, "BTCUSDT", "leverage"),
        {"leverage": "20", "idempotency_key": new_key()},
    )
    # then
    assert 'data-testid="done"' in response.content.decode()
    assert position(account).leverage == Decimal(20)


def test_switch_to_isolated_needs_an_amount(htmx, account):
    # when
    response = htmx.post(
        position_url(account, "BTCUSDT", "margin-mode"),
        {"margin_mode": "isolated", "isolated_margin": "", "idempotency_key": new_key()},
    )
    # then
    assert "Enter how much margin to fence." in response.content.decode()
    assert position(account).margin_mode == MarginMode.CROSS


def test_switch_to_isolated_with_too_little_margin_shows_the_engines_reason(htmx, account):
    # when
    response = htmx.post(
        position_url(account, "BTCUSDT", "margin-mode"),
        {"margin_mode": "isolated", "isolated_margin": "10", "idempotency_key": new_key()},
    )
    # then
    assert "under its initial margin" in response.content.decode()
    assert position(account).margin_mode == MarginMode.CROSS


def test_switch_preview_compares_position_and_cross_pool_now_and_after(htmx, account):
    # given
    panel = htmx.get(position_url(account, "BTCUSDT", "margin-mode")).content.decode()
    # when
    response = htmx.post(
        position_url(account, "BTCUSDT", "margin-mode"),
        {
            "preview": "1",
            "margin_mode": "isolated",
            "isolated_margin": "2000",
            "idempotency_key": new_key(),
        },
    )
    # then
    content = response.content.decode()
    assert "switch to isolated" in panel
    assert "<caption>Cross pool</caption>" in content
    assert "<caption>BTCUSDT</caption>" in content
    assert "2,000.00 USDT, cross wallet → BTCUSDT isolated" in content
    assert position(account).margin_mode == MarginMode.CROSS


@pytest.mark.parametrize("move", ["-0.005", "0.005"])
def test_the_suggested_isolated_margin_still_books_after_the_mark_moves(htmx, account, move):
    # given: the drawer opened, suggesting an amount; then the mark moves half a percent
    # (against the long, or for it) before the trader confirms
    panel = htmx.get(position_url(account, "BTCUSDT", "margin-mode")).content.decode()
    suggested = Decimal(re.search(r'name="isolated_margin" value="([0-9.]+)"', panel).group(1))
    mark = MarkPrice.objects.get(instrument__symbol="BTCUSDT")
    MarkPrice.objects.filter(pk=mark.pk).update(mark_price=mark.mark_price * (1 + Decimal(move)))
    # when: confirmed with the suggestion
    response = htmx.post(
        position_url(account, "BTCUSDT", "margin-mode"),
        {"margin_mode": "isolated", "isolated_margin": suggested, "idempotency_key": new_key()},
    )
    # then
    assert 'data-testid="done"' in response.content.decode()
    assert position(account).margin_mode == MarginMode.ISOLATED
    assert "move of the mark against the position" in panel


def test_switch_to_isolated_and_back_moves_the_margin(htmx, account):
    # given
    usdt = wallet(account)
    # when
    htmx.post(
        position_url(account, "BTCUSDT", "margin-mode"),
        {"margin_mode": "isolated", "isolated_margin": "2000", "idempotency_key": new_key()},
    )
    isolated_usdt = wallet(account)
    isolated_mode = position(account).margin_mode
    htmx.post(
        position_url(account, "BTCUSDT", "margin-mode"),
        {"margin_mode": "cross", "idempotency_key": new_key()},
    )
    # then
    assert (isolated_mode, isolated_usdt) == (MarginMode.ISOLATED, usdt - 2000)
    assert (position(account).margin_mode, wallet(account)) == (MarginMode.CROSS, usdt)


def test_isolated_margin_on_a_cross_position_is_refused(htmx, account):
    # when
    response = htmx.post(
        position_url(account, "BTCUSDT", "isolated-margin"),
        {"direction": "add", "amount": "10", "idempotency_key": new_key()},
    )
    # then
    assert "switch it to isolated first" in response.content.decode()


def test_isolated_margin_is_added_and_removed(htmx, account):
    # given
    htmx.post(
        position_url(account, "BTCUSDT", "margin-mode"),
        {"margin_mode": "isolated", "isolated_margin": "2000", "idempotency_key": new_key()},
    )
    usdt = wallet(account)
    # when
    htmx.post(
        position_url(account, "BTCUSDT", "isolated-margin"),
        {"direction": "add", "amount": "300", "idempotency_key": new_key()},
    )
    added = wallet(account)
    htmx.post(
        position_url(account, "BTCUSDT", "isolated-margin"),
        {"direction": "remove", "amount": "100", "idempotency_key": new_key()},
    )
    # then
    assert (added, wallet(account)) == (usdt - 300, usdt - 200)


def test_an_account_is_opened_from_the_list(trader_client, reference, trader):
    # when
    response = trader_client.post(reverse("trader:account_open"), {"name": "Hedge"})
    # then
    account = trader.margin_accounts.get(name="Hedge")
    assert response["Location"] == reverse("trader:account", args=[account.pk])


def test_a_second_account_of_the_same_name_is_refused_inline(trader_client, account):
    # when
    response = trader_client.post(reverse("trader:account_open"), {"name": account.name})
    # then
    assert response.status_code == 422
    assert "already have an account named" in response.content.decode()


def test_a_refused_order_sent_before_its_preview_says_why_once(htmx, account):
    # when: too big for the collateral, and sent before any preview
    response = htmx.post(
        operation_url(account, "trade"),
        {"instrument": "BTCUSDT", "side": "buy", "quantity": "50", "idempotency_key": new_key()},
    )
    # then: the engine's reason, once
    assert response.content.decode().count("Not enough free collateral") == 1
    assert position(account).quantity == Decimal("0.1")
