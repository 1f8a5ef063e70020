"""The figures of an account now: the engine's quote of its state at the latest prices and its
requirement under its margin scheme, beside the parameters in force they were taken under.

Every page and endpoint that shows an account's figures now reads them here: the account page
and its fragments, the account list, the API's account detail and the desk's review."""

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from margin.engine.reference import AccountQuote
from margin.engine.scheme import Requirement
from margin.engine.types import AccountInput
from margin.models import MarginAccount, ParameterVersion
from margin.selectors.accounts import (
    AccountState,
    account_state_read,
    account_states_read,
    no_lock,
    wallet_balances,
)
from margin.selectors.funding import FundingOutlook
from margin.selectors.market import with_latest_snapshot_ids, with_latest_snapshots
from margin.selectors.market_now import market_now


@dataclass(frozen=True)
class FiguresNow:
    """One account's state and the parameters in force; its engine input, quote and
    requirement are worked out on first use (the requirement of an account under the portfolio
    scheme reads the stress model)."""

    state: AccountState
    parameters: ParameterVersion
    # Symbol → funding outlook of every active perpetual, of the same market read.
    funding: dict[str, FundingOutlook]

    @cached_property
    def input(self) -> AccountInput:
        return self.state.engine_input()

    @property
    def quote(self) -> AccountQuote:
        return self.state.quote()

    @property
    def requirement(self) -> Requirement:
        return self.state.requirement()


def figures_now(account: MarginAccount | int) -> FiguresNow:
    """The account's figures at the latest prices, under the parameters in force: the account
    read afresh, the market as `market_now` keeps it for the market tick."""
    market = market_now()
    return FiguresNow(
        state=account_state_read(account, lock=no_lock, market=market.market),
        parameters=market.parameters,
        funding=market.funding,
    )


def figures_now_of(account_ids: Iterable[int]) -> dict[int, FiguresNow]:
    """Several accounts' figures now, read in a constant number of queries: id → figures."""
    account_ids = list(account_ids)
    if not account_ids:
        return {}
    market = market_now()
    states = account_states_read(account_ids, lock=no_lock, market=market.market)
    return {
        pk: FiguresNow(state=state, parameters=market.parameters, funding=market.funding)
        for pk, state in states.items()
    }


def account_overview(accounts: QuerySet[MarginAccount], account_id: int) -> MarginAccount:
    """Account `account_id` among `accounts` (else a 404) with what its detail shows:
    `wallets` (its cross balances), `figures` (the engine's quote now) and `latest_snapshot`
    (its latest revaluation)."""
    account = get_object_or_404(with_latest_snapshot_ids(accounts), pk=account_id)
    (account,) = with_latest_snapshots([account])
    account.wallets = wallet_balances(account)
    account.figures = figures_now(account).quote
    return account
