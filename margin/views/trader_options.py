"""The trader's options page: the chain (strikes × expiries, bid / mark / ask from the
surface, Greeks) with buy and sell buttons that open the market-order form, the account's
option positions with their Greeks, its net Greeks per underlying and its risk matrix — the
portfolio grid's P&L per scenario. The chain and the book are htmx fragments polled like the
dashboard's."""

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from margin.engine.options import OptionQuote, account_greeks
from margin.selectors.accounts import PositionState
from margin.selectors.options import option_chain
from margin.views.rendering import render_page_or_fragment
from margin.views.risk_matrix import risk_matrices
from margin.views.trader_common import with_account
from margin.views.trader_figures import account_figures

OPTIONS_PAGE = "margin/account_options.html"
# What the chain's buttons put in the order form.
DEFAULT_ORDER_QUANTITY = "0.1"


@dataclass(frozen=True)
class OptionRow:
    position: PositionState
    quote: OptionQuote

    @property
    def symbol(self) -> str:
        return self.position.instrument

    @property
    def explain_prefix(self) -> str:
        """Its figures' keys in the explain (`margin.engine.explain`): by engine id."""
        return f"positions.{self.quote.id}"

    @property
    def signed_quantity(self) -> Decimal:
        return self.position.quantity

    @property
    def pnl(self) -> Decimal:
        """side × q × (mark − premium paid or received)."""
        return self.signed_quantity * (self.quote.mark_price - self.position.entry_price)

    @property
    def value(self) -> Decimal:
        return self.signed_quantity * self.quote.mark_price

    def position_greek(self, name: str) -> Decimal:
        return self.signed_quantity * getattr(self.quote, name)

    @property
    def gamma(self) -> Decimal:
        return self.position_greek("gamma")

    @property
    def vega(self) -> Decimal:
        return self.position_greek("vega")

    @property
    def theta(self) -> Decimal:
        return self.position_greek("theta")


def _book_context(account) -> dict:
    figures = account_figures(account)
    quote = figures.quote
    by_engine_id = {p.engine_id: p for p in figures.state.positions.values()}
    return {
        "account": account,
        "figures": figures,
        "option_rows": [OptionRow(position=by_engine_id[o.id], quote=o) for o in quote.options],
        "net_greeks": account_greeks(quote.options, quote.portfolio),
        "matrices": risk_matrices(quote.portfolio if quote.options else None),
    }


def _chain_context(account) -> dict:
    return {
        "account": account,
        "chain": option_chain(now=timezone.now()),
        "order_quantity": DEFAULT_ORDER_QUANTITY,
    }


@with_account
def options_page(request, account):
    context = _book_context(account) | _chain_context(account)
    return render_page_or_fragment(request, OPTIONS_PAGE, "book", context)


@with_account
def options_book_fragment(request, account):
    return render_page_or_fragment(request, OPTIONS_PAGE, "book", _book_context(account))


@with_account
def options_chain_fragment(request, account):
    return render_page_or_fragment(request, OPTIONS_PAGE, "chain", _chain_context(account))
