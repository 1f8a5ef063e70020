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
    account_state_load,
    account_states_load,
    wallet_balances,
)
from margin.selectors.market import with_latest_snapshot_ids, with_latest_snapshots
from margin.selectors.parameters import parameters_in_force


@dataclass(frozen=True)
class FiguresNow:
    """One account's state and the parameters in force; its engine input, quote and
    requirement are worked out on first use (the requirement of an account under the portfolio
    scheme reads the stress model)."""

    state: AccountState
    parameters: ParameterVersion

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
    """The account's figures at the latest prices, under the parameters in force."""
    return FiguresNow(state=account_state_load(account), parameters=parameters_in_force())


def figures_now_of(account_ids: Iterable[int]) -> dict[int, FiguresNow]:
    """Several accounts' figures now, read in a constant number of queries: id → figures."""
    states = account_states_load(account_ids)
    if not states:
        return {}
    parameters = parameters_in_force()
    return {pk: FiguresNow(state=state, parameters=parameters) for pk, state in states.items()}


def account_overview(accounts: QuerySet[MarginAccount], account_id: int) -> MarginAccount:
    """Account `account_id` among `accounts` (else a 404) with what its detail shows:
    `wallets` (its cross balances), `figures` (the engine's quote now) and `latest_snapshot`
    (its latest revaluation)."""
    account = get_object_or_404(with_latest_snapshot_ids(accounts), pk=account_id)
    (account,) = with_latest_snapshots([account])
    account.wallets = wallet_balances(account)
    account.figures = figures_now(account).quote
    return account
