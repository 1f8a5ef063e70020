"""The options page on PostgreSQL: the chain (bid < mark < ask, Greeks), the account's option
positions with their Greeks and net Greeks, the risk matrix with its worst scenario marked,
an order opened from the chain, and no one else's account."""

from decimal import Decimal

import pytest
from django.utils import timezone

from margin.engine.explain import explain_option, format_number
from margin.models import MarkPrice
from margin.selectors.accounts import account_state_load
from margin.selectors.options import option_chain, series_as_marked
from margin.views.risk_matrix import risk_matrices
from tests.options_support import options_listed, series
from tests.revaluation.factories import funded_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def listed(reference, settings):
    options_listed(settings, now=timezone.now())


def btc(option_type: str, strike: int) -> str:
    """The longest-dated BTC series of that type and strike."""
    return series(option_type, strike, -1).symbol


@pytest.fixture
def holder(listed, trader):
    """A long BTC call, a short BTC put and a long perpetual."""
    fills = [(btc("call", 98000), "buy", "1"), (btc("put", 92000), "sell", "1")]
    return funded_account(user=trader, usdt="40000", fills=[*fills, ("BTCUSDT", "buy", "0.1")])


def test_the_chain_quotes_each_strike_with_a_spread_around_the_mark(listed):
    chain = option_chain(now=timezone.now())
    assert len(chain) == 6  # BTC and ETH, three expiries each
    term = chain[0]
    assert len(term.rows) == 7
    for row in term.rows:
        for quote in (row.call, row.put):
            assert quote.bid < float(quote.mark) < quote.ask
        assert 0 < row.call.delta < 1 and -1 < row.put.delta < 0
        # put-call parity on the forward (rate 0): C − P = F − K
        parity = float(row.call.mark - row.put.mark)
        assert parity == pytest.approx(float(term.forward - row.strike), abs=0.01)


def test_the_page_shows_positions_greeks_and_the_risk_matrix(holder, trader_client):
    page = trader_client.get(f"/accounts/{holder.pk}/options/").content.decode()
    call, put = btc("call", 98000), btc("put", 92000)
    assert f'<tr data-symbol="{call}">' in page and f'<tr data-symbol="{put}">' in page
    assert 'data-testid="net-delta"' in page and 'data-testid="scan-risk"' in page
    assert page.count('data-testid="worst-scenario"') == 1
    # the chain's buttons open the market-order form on the series
    assert f'data-testid="buy-{call}"' in page and f"trade/?instrument={call}" in page
    # the matrix is the grid's: the worst cell is the scenario of the scan risk
    quote = account_state_load(holder).quote()
    (matrix,) = risk_matrices(quote.portfolio)
    assert matrix.worst.pnl == matrix.risk.losses[matrix.risk.worst_scenario].copy_negate()
    assert matrix.risk.scan_risk == matrix.worst.pnl.copy_negate() > 0
    assert len(matrix.rows) == 2 and len(matrix.tail) == 8
    assert matrix.rows[1][1][0] is None  # −16 % comes with vol up only


def test_an_order_form_opens_from_the_chain_and_books_a_call(holder, htmx):
    from tests.trader.factories import new_key, previewed

    call = btc("call", 100000)
    url = f"/accounts/{holder.pk}/trade/"
    form = htmx.get(url, {"instrument": call, "side": "buy", "quantity": "0.1"})
    assert call in form.content.decode()
    data = previewed(htmx, url, {"instrument": call, "side": "buy", "quantity": "0.1"})
    booked = htmx.post(url, {**data, "idempotency_key": new_key()})
    assert booked.get("HX-Trigger") == "account-changed", booked.content.decode()[-2500:]
    held = account_state_load(holder).positions[call]
    assert held.quantity == Decimal("0.1")
    assert held.entry_price == MarkPrice.objects.get(instrument__symbol=call).mark_price


def test_another_traders_options_page_is_a_404(holder, client, make_user):
    from accounts.roles import TRADER

    client.force_login(make_user(TRADER))
    assert client.get(f"/accounts/{holder.pk}/options/").status_code == 404
    assert client.get(f"/accounts/{holder.pk}/options/book/").status_code == 404


def test_the_dashboard_of_an_option_holder_shows_the_grid_binding(holder, trader_client):
    page = trader_client.get(f"/accounts/{holder.pk}/")
    assert page.status_code == 200
    assert 'data-testid="requirement-binds">grid binds' in page.content.decode()
    assert "2 option positions, margined by the portfolio grid" in page.content.decode()
    for figure in ("account.requirement", "account.margin_ratio", "account.stress_loss"):
        explain = trader_client.get(f"/accounts/{holder.pk}/explain/", {"figure": figure})
        assert explain.status_code == 200, figure


def test_the_explain_of_a_held_option_gives_the_mark_the_page_shows(
    holder, trader_client, monkeypatch
):
    # one instant for both requests: the engine prices the option at the time to expiry left
    frozen = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    page = trader_client.get(f"/accounts/{holder.pk}/options/")
    call = next(row for row in page.context["option_rows"] if row.symbol == btc("call", 98000))
    key = f"{call.explain_prefix}.mark_price"
    assert f"figure={key}" in page.content.decode()
    explain = trader_client.get(f"/accounts/{holder.pk}/explain/", {"figure": key})
    assert explain.status_code == 200
    steps = explain.context["steps"]
    assert steps[-1].figure == "mark (Black-76 call)"
    assert steps[-1].result == format_number(call.quote.mark_price)
    assert [step.figure.split(" ")[0] for step in steps[:5]] == ["F", "K", "T", "σ", "r"]
    assert explain.context["title"] == f"{call.symbol}: mark price"
    for greek in ("delta", "gamma", "vega", "theta"):
        shown = trader_client.get(
            f"/accounts/{holder.pk}/explain/", {"figure": f"{call.explain_prefix}.{greek}"}
        )
        assert shown.context["steps"][-1].result == format_number(getattr(call.quote, greek))


def test_the_explain_of_the_grid_lists_its_scenarios_and_the_binding_one(
    holder, trader_client, monkeypatch
):
    frozen = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    page = trader_client.get(f"/accounts/{holder.pk}/options/")
    (net,) = page.context["net_greeks"]
    assert 'data-testid="explain-scan-risk"' in page.content.decode()
    scan = trader_client.get(f"/accounts/{holder.pk}/explain/", {"figure": "grid.BTC.scan_risk"})
    steps = scan.context["steps"]
    assert len(steps) == 25 and sum("(binds)" in step.figure for step in steps) == 1
    assert btc("put", 92000) in steps[0].with_numbers or btc("put", 92000) in steps[0].formula
    assert scan.context["title"] == "BTC (portfolio grid): scan risk"
    assert steps[-1].result == format_number(net.risk.scan_risk)
    requirement = trader_client.get(
        f"/accounts/{holder.pk}/explain/", {"figure": "account.maintenance_margin"}
    ).context["steps"]
    assert requirement[-1].figure == "portfolio MM"
    assert any(step.figure == "BTC minimum delta risk" for step in requirement)
    assert (
        trader_client.get(f"/accounts/{holder.pk}/explain/", {"figure": "grid.XYZ.scan_risk"})
    ).status_code == 404


def test_the_what_if_shocks_the_options_vol_beside_the_price(holder, htmx):
    url = f"/accounts/{holder.pk}/what-if/"
    up = htmx.get(url, {"shock": "0", "vol": "50"})
    assert 'id="whatif-options"' in up.content.decode()
    assert 'data-testid="vol-shock">+50%' in up.content.decode()
    rows = {row.symbol: row for row in up.context["shocked_options"]}
    call, put = rows[btc("call", 98000)], rows[btc("put", 92000)]
    # vol up at an unchanged price: the long call gains, the short put loses
    assert call.after.implied_vol > call.now.implied_vol
    assert call.after.underlying_price == call.now.underlying_price
    assert call.pnl > 0 > put.pnl
    shocked, now = up.context["shocked"], up.context["figures"].quote
    # the options are the pool's only mover: the balance changes by their P&L (28 digits)
    assert abs(shocked.margin_balance - now.margin_balance - (call.pnl + put.pnl)) < Decimal(
        "1e-20"
    )
    assert shocked.maintenance_margin != now.maintenance_margin  # the grid at the shocked vol
    down = {row.symbol: row for row in htmx.get(url, {"vol": "-40"}).context["shocked_options"]}
    assert down[call.symbol].pnl < 0 < down[put.symbol].pnl
    # a price rise with vols held: the call and the short put both gain
    rise = {row.symbol: row for row in htmx.get(url, {"shock": "10"}).context["shocked_options"]}
    assert rise[call.symbol].pnl > 0 and rise[put.symbol].pnl > 0


@pytest.mark.parametrize(("asked", "taken"), [("500", 100), ("-90", -50), ("x", 0), ("25", 25)])
def test_the_what_if_clamps_the_vol_shock(holder, htmx, asked, taken):
    response = htmx.get(f"/accounts/{holder.pk}/what-if/", {"vol": asked})
    assert response.status_code == 200
    assert response.context["shock"].vol_percent == taken


def test_the_explain_of_a_chain_row_gives_the_published_mark(holder, trader_client):
    page = trader_client.get(f"/accounts/{holder.pk}/options/")
    quotes = [q for term in page.context["chain"] for row in term.rows for q in (row.call, row.put)]
    assert len(quotes) == 84
    # every series: Black-76 at the published forward, vol and the mark's time to expiry gives
    # the published mark (`services.option_marks` rounds it to 0.000001)
    for quote in quotes:
        steps = explain_option(series_as_marked(quote.symbol), "series")
        assert abs(steps["series.mark_price"][-1].result - quote.mark) <= Decimal("0.0000005")
    call = next(q for q in quotes if q.symbol == btc("call", 98000))
    key = f"series.{call.symbol}.mark_price"
    assert f"figure={key}" in page.content.decode()
    shown = trader_client.get(f"/accounts/{holder.pk}/explain/", {"figure": key})
    assert shown.context["title"] == f"{call.symbol}: mark price (the chain's, as marked)"
    result = Decimal(shown.context["steps"][-1].result.replace(",", ""))
    assert abs(result - call.mark) <= Decimal("0.000001")
    gamma = trader_client.get(
        f"/accounts/{holder.pk}/explain/", {"figure": f"series.{call.symbol}.gamma"}
    )
    assert gamma.context["steps"][-1].figure == "gamma (per contract)"
    missing = trader_client.get(
        f"/accounts/{holder.pk}/explain/", {"figure": "series.BTC-NOPE-1-C.mark_price"}
    )
    assert missing.status_code == 404
