"""The trader's account pages: the list, the dashboard and its live fragments, the explanation
of a figure, the price- and vol-shock what-if and the chart data."""

from dataclasses import dataclass
from decimal import Decimal

from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import trader_required
from margin.engine.explain import (
    Step,
    explain_account,
    explain_funding,
    explain_option,
    explain_stress,
    fill_formula,
    format_number,
)
from margin.engine.options import OptionQuote
from margin.engine.reference import AccountQuote
from margin.engine.scheme import explain_portfolio_liquidation, explain_requirement
from margin.engine.states import Thresholds
from margin.engine.types import AccountInput, OptionInput
from margin.engine.whatif import (
    MAX_SHOCK_PERCENT,
    MAX_VOL_SHOCK_PERCENT,
    MIN_VOL_SHOCK_PERCENT,
    Shock,
    shocked_quote,
)
from margin.errors import ApplicationError
from margin.forms.trader import AccountOpenForm
from margin.selectors.accounts import account_notices, accounts_of
from margin.selectors.figures import figures_now_of
from margin.selectors.market import assets, chart_series
from margin.selectors.options import series_as_marked
from margin.selectors.parameters import parameters_in_force
from margin.services.ledger import margin_account_open
from margin.views.rendering import render_page_or_fragment, render_partial
from margin.views.trader_common import DASHBOARD, with_account
from margin.views.trader_figures import account_figures, position_rows
from margin.views.trader_gauge import account_verdict, quote_gauge
from margin.views.trader_operations import blank_forms

# Points per chart at most; the prune keeps fewer snapshots (SNAPSHOT_KEEP_TICKS, 120 by
# default: 10 minutes at one revaluation every 5 s).
CHART_POINTS = 300


@dataclass(frozen=True)
class AccountCard:
    account: object
    quote: object
    gauge: object


@trader_required
def account_list(request, open_form: AccountOpenForm | None = None):
    accounts = list(accounts_of(request.user))
    figures = figures_now_of(a.pk for a in accounts)
    cards = []
    for account in accounts:
        now = figures[account.pk]
        quote = now.quote
        cards.append(AccountCard(account, quote, quote_gauge(quote, Thresholds.of(now.parameters))))
    context = {"cards": cards, "open_form": open_form or AccountOpenForm()}
    return render(request, "margin/account_list.html", context, status=422 if open_form else 200)


@require_POST
@trader_required
def account_open(request):
    form = AccountOpenForm(request.POST)
    if form.is_valid():
        try:
            account = margin_account_open(owner=request.user, name=form.cleaned_data["name"])
        except ApplicationError as error:
            form.add_error("name", error.message)
        else:
            return redirect("trader:account", pk=account.pk)
    return account_list(request, open_form=form)


def _dashboard_context(account) -> dict:
    return {
        "account": account,
        "figures": account_figures(account),
        "assets": assets(),
        "shock_range": MAX_SHOCK_PERCENT,
        "vol_shock_range": (MIN_VOL_SHOCK_PERCENT, MAX_VOL_SHOCK_PERCENT),
    }


@with_account
def account_detail(request, account):
    context = (
        _dashboard_context(account)
        | blank_forms()
        | {"notices": account_notices(request.user, account)}
    )
    return render(request, DASHBOARD, context)


@with_account
def live_fragment(request, account):
    """The dashboard's poll: the overview, with the positions and the collateral as htmx
    out-of-band swaps, all from one read of the account (three polls each read it before)."""
    return render_page_or_fragment(request, DASHBOARD, "live", _dashboard_context(account))


@dataclass(frozen=True)
class ShownStep:
    """A step as the page prints it: the formula in names, then with the numbers put in."""

    figure: str
    formula: str
    with_numbers: str
    result: str


def _shown(step: Step) -> ShownStep:
    return ShownStep(
        figure=step.figure,
        formula=fill_formula(step.formula, {n: n.replace("_", " ") for n in step.inputs}),
        with_numbers=fill_formula(
            step.formula, {n: format_number(v) for n, v in step.inputs.items()}
        ),
        result="none" if step.result is None else format_number(step.result),
    )


@with_account
def explain_fragment(request, account):
    """The formula of one figure (`?figure=account.margin_ratio`) with the numbers put in."""
    figures = account_figures(account)
    key = request.GET.get("figure", "")
    title = None
    if key.endswith(".funding"):
        steps, title = _funding_steps(key, figures)
    elif key.startswith("series."):
        steps, title = _series_steps(key)
    else:
        symbols = {p.engine_id: p.instrument for p in figures.state.positions.values()}
        steps = {
            **explain_account(figures.input, figures.quote, position_names=symbols),
            **explain_requirement(figures.requirement, figures.margin_call_ratio),
            **explain_stress(
                figures.input,
                figures.stress_model,
                figures.quote,
                position_names={row.input.id: row.symbol for row in figures.positions},
            ),
        }.get(key)
    if steps is None:
        raise Http404("No such figure")
    for row in figures.positions:
        if row.portfolio is not None and key == f"{row.explain_prefix}.liquidation_price":
            steps = steps + explain_portfolio_liquidation(
                row.portfolio, row.quote.liquidation_price, row.input.risk_asset
            )
    context = {
        "account": account,
        "figure": key,
        "title": title or _figure_title(key, figures),
        "steps": [_shown(step) for step in steps],
    }
    return render_partial(request, DASHBOARD, "explain", context)


def _funding_steps(key: str, figures) -> tuple[list | None, str | None]:
    """The next funding of the position `positions.<id>.funding` (a perpetual), and its title
    with the funding time."""
    row = next((r for r in figures.positions if f"{r.explain_prefix}.funding" == key), None)
    outlook = row and figures.funding[row.symbol].outlook
    if not outlook:
        return None, None
    title = f"{row.symbol}: next funding at {outlook.next_funding_time:%Y-%m-%d %H:%M:%S} UTC"
    return explain_funding(row.input, outlook.predicted), title


def _series_steps(key: str) -> tuple[list | None, str | None]:
    """A chain row's mark or Greek (`series.<symbol>.<figure>`) as its published mark was
    computed, and its title."""
    symbol, _, figure = key.removeprefix("series.").rpartition(".")
    option = series_as_marked(symbol)
    if option is None:
        return None, None
    title = f"{symbol}: {figure.replace('_', ' ')} (the chain's, as marked)"
    return explain_option(option, f"series.{symbol}").get(key), title


def _figure_title(key: str, figures) -> str:
    """`positions.17.liquidation_price` → `BTCUSDT: liquidation price`; an option's
    `positions.18.vega` → `BTC-…-C: vega`; the grid's `grid.BTC.scan_risk` → `BTC: scan
    risk`."""
    parts = key.split(".")
    name = parts[-1].replace("_", " ")
    if parts[0] == "positions":
        symbols = {p.engine_id: p.instrument for p in figures.state.positions.values()}
        return f"{symbols.get(parts[1], parts[1])}: {name}"
    if parts[0] == "grid":
        return f"{parts[1]} (portfolio grid): {name}"
    return f"Account: {name}"


def _percent_from(query, name: str, low: int, high: int) -> int:
    """A whole percent from the query, 0 when unreadable, clamped to [low, high]."""
    try:
        percent = int(query.get(name, "0"))
    except ValueError:
        percent = 0
    return max(low, min(high, percent))


def _shock_from(query) -> Shock:
    return Shock(
        percent=_percent_from(query, "shock", -MAX_SHOCK_PERCENT, MAX_SHOCK_PERCENT),
        asset=query.get("asset") or None,
        vol_percent=_percent_from(query, "vol", MIN_VOL_SHOCK_PERCENT, MAX_VOL_SHOCK_PERCENT),
    )


@dataclass(frozen=True)
class ShockedOption:
    """An option of the account before and after the what-if's shock: its vol, its mark and
    what the shock makes or loses on it (the change of the engine's uPnL)."""

    symbol: str
    now: OptionInput
    after: OptionInput
    quote_now: OptionQuote
    quote_after: OptionQuote

    @property
    def pnl(self) -> Decimal:
        return self.quote_after.unrealized_pnl - self.quote_now.unrealized_pnl


def _shocked_options(figures, moved: AccountInput, shocked: AccountQuote) -> list[ShockedOption]:
    symbols = {p.engine_id: p.instrument for p in figures.state.positions.values()}
    return [
        ShockedOption(symbols[now.id], now, after, quote_now, quote_after)
        for now, after, quote_now, quote_after in zip(
            figures.input.options,
            moved.options,
            figures.quote.options,
            shocked.options,
            strict=True,
        )
    ]


@with_account
def whatif_fragment(request, account):
    """Margin ratio and liquidation prices with the marks shocked (engine reference, no write)."""
    figures = account_figures(account)
    shock = _shock_from(request.GET)
    shocked_input, shocked = shocked_quote(figures.input, shock)
    context = {
        "account": account,
        "figures": figures,
        "shock": shock,
        "shocked": shocked,
        "shocked_options": _shocked_options(figures, shocked_input, shocked),
        "shocked_verdict": account_verdict(
            shocked, figures.thresholds, {r.input.id: r.symbol for r in figures.positions}
        ),
        "shocked_rows": zip(
            figures.positions,
            position_rows(figures.state, shocked_input, shocked),
            strict=True,
        ),
    }
    return render_partial(request, DASHBOARD, "whatif", context)


@with_account
def chart_data(request, account):
    """Margin ratio per revaluation, and each open position's mark (the tick's) with its
    liquidation price."""
    series = chart_series(account, limit=CHART_POINTS)
    thresholds = Thresholds.of(parameters_in_force())
    return JsonResponse(
        {
            "ratio": series["ratio"],
            "thresholds": {
                "warning": float(thresholds.warning),
                "margin_call": float(thresholds.margin_call),
                "liquidation": float(thresholds.liquidation),
            },
            "positions": series["positions"],
        }
    )
