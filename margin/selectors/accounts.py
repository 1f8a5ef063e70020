"""A margin account and its owner's reads: the trader's accounts, and one account in memory
(balances, positions, the market it is valued on) as every page, preview and write plans on it.

The state is read here without locks; a write reads it through the same code under its locks
(`margin.services.account_state.account_state_lock`). The fingerprint of a state lets a confirm
prove nothing moved since its preview."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.roles import USE_DESK
from margin.db import decimal, rows, table
from margin.engine.reference import AccountQuote, PositionQuote, quote_account
from margin.engine.scheme import PORTFOLIO, STANDARD, Requirement, account_requirement
from margin.engine.stress import account_stress
from margin.engine.types import (
    ISOLATED,
    LONG,
    SHORT,
    ZERO,
    AccountInput,
    CollateralLine,
    OptionInput,
    PositionInput,
)
from margin.errors import ApplicationError
from margin.market.clock import market_speed
from margin.models import (
    AccountEvent,
    Asset,
    AssetPrice,
    CreditTier,
    Fill,
    FundingPayment,
    Instrument,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
    MarkPrice,
    Notification,
    Position,
)
from margin.selectors.ledger import ledger_history
from margin.selectors.liquidity import (
    LiquidityTerms,
    daily_volatility,
    latest_estimate,
    markets_of,
)
from margin.selectors.parameters import EngineTerms, terms_in_force
from margin.selectors.volatility import stress_model_now


def accounts_of(user) -> QuerySet[MarginAccount]:
    """The user's own margin accounts, oldest first; none for no user (an API schema being
    described has none)."""
    if user is None:
        return MarginAccount.objects.none()
    return MarginAccount.objects.filter(owner=user).select_related("credit_tier").order_by("pk")


def all_accounts() -> QuerySet[MarginAccount]:
    """Every margin account, oldest first: what the desk may look up."""
    return MarginAccount.objects.select_related("credit_tier").order_by("pk")


def user_named(username: str):
    """The user with this username, or None."""
    return get_user_model().objects.filter(username=username).first()


def credit_tier_coded(code: str) -> CreditTier | None:
    """The credit tier with this code, or None."""
    return CreditTier.objects.filter(code=code).first()


def position_in(account: MarginAccount, instrument: str) -> Position | None:
    """The account's position in the instrument (by symbol), or None."""
    return Position.objects.filter(margin_account=account, instrument__symbol=instrument).first()


def positions_of(account: MarginAccount | None) -> QuerySet[Position]:
    """The account's positions with their instrument, isolated margin (None in cross) and the
    funding they have paid (−) or received (+) so far; none for no account."""
    if account is None:
        return Position.objects.none()
    fenced = LedgerAccount.objects.filter(
        position=OuterRef("pk"), kind=LedgerAccountKind.ISOLATED
    ).values("balance")[:1]
    funding = (
        FundingPayment.objects.filter(position=OuterRef("pk"))
        .values("position")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        Position.objects.filter(margin_account=account)
        .select_related("instrument__underlying")
        .annotate(
            isolated_margin=Subquery(fenced),
            cumulative_funding=Coalesce(Subquery(funding), Value(Decimal(0))),
        )
    )


def wallet_balances(account: MarginAccount) -> list[dict]:
    """The account's cross wallets by asset symbol: [{"asset", "balance"}]."""
    return [
        {"asset": asset, "balance": balance}
        for asset, balance in LedgerAccount.objects.filter(
            margin_account=account, kind=LedgerAccountKind.WALLET
        )
        .order_by("asset__symbol")
        .values_list("asset__symbol", "balance")
    ]


def _dated(rows: QuerySet, field: str, bounds: dict) -> QuerySet:
    if "since" in bounds:
        rows = rows.filter(**{f"{field}__gte": bounds["since"]})
    if "until" in bounds:
        rows = rows.filter(**{f"{field}__lt": bounds["until"]})
    return rows


def account_history(account: MarginAccount, kind: str, bounds: dict) -> QuerySet:
    """One kind of the account's history, newest first, with what its rows print joined in:
    `fills`, `states` (state changes), `calls` (notifications) or else the ledger's entries;
    `bounds` may hold `since` / `until` (datetimes, until excluded)."""
    if kind == "fills":
        rows = Fill.objects.filter(position__margin_account=account).select_related(
            "position__instrument"
        )
        return _dated(rows.order_by("-pk"), "created_at", bounds)
    if kind == "states":
        rows = AccountEvent.objects.filter(account=account)
        return _dated(rows.order_by("-at", "-pk"), "at", bounds)
    if kind == "calls":
        rows = Notification.objects.filter(account=account)
        return _dated(rows.order_by("-created_at", "-pk"), "created_at", bounds)
    return ledger_history(account=account, filters=bounds)


def notifications_of(user) -> QuerySet[Notification]:
    """The user's notifications with their account, newest first."""
    return Notification.objects.filter(user=user).select_related("account")


def unread_notifications(user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user, read_at__isnull=True).order_by("-created_at")


def account_notices(user, account: MarginAccount) -> list[Notification]:
    """What the account's page shows until the trader acknowledges it: every unread notice on
    the account (the desk's actions, margin calls, liquidations), newest first."""
    return list(unread_notifications(user).filter(account=account)[:20])


def account_of_user_or_404(user, pk: int) -> MarginAccount:
    """The user's own margin account `pk`; anyone else's is a 404, as if it did not exist."""
    return get_object_or_404(accounts_of(user), pk=pk)


def engine_accounts(account_ids: Iterable[int]) -> dict[int, AccountInput]:
    """The engine inputs of these accounts (reference engine); positions' ids are their
    primary keys (see `PositionState.engine_id`)."""
    return {pk: state.engine_input() for pk, state in account_states_load(account_ids).items()}


# The engine wants a positive isolated margin; a position past bankruptcy may hold none. It is
# shown as the smallest amount the ledger can hold until the liquidation engine closes it.
LEAST_ISOLATED_MARGIN = Decimal("1e-18")  # the ledger's quantum


@dataclass(frozen=True)
class OptionTerms:
    """What the engine prices an option series on: its contract, the forward and implied vol
    of its latest mark, and the market days to its expiry (`margin.services.option_marks`)."""

    underlying: str
    option_type: str
    strike: Decimal
    expiry_days: Decimal
    implied_vol: Decimal
    forward: Decimal


@dataclass(frozen=True)
class PositionState:
    instrument: str
    underlying: str
    position_id: int | None
    quantity: Decimal  # signed: + long, − short, 0 flat
    entry_price: Decimal
    leverage: Decimal
    margin_mode: str
    isolated_margin: Decimal  # balance of its isolated ledger account (settlement asset)
    isolated_account_id: int | None

    @property
    def is_isolated(self) -> bool:
        return self.margin_mode == ISOLATED

    @property
    def engine_id(self) -> str:
        """The engine's id of the position: its primary key, or its instrument before it has a
        row (a preview of a first fill)."""
        return self.instrument if self.position_id is None else str(self.position_id)


@dataclass(frozen=True)
class AccountState:
    """A margin account's balances, positions and the market it is valued on."""

    account_id: int
    owner_id: int
    credit_tier: str
    reduce_only: bool
    wallets: dict[str, Decimal]
    wallet_ids: dict[str, int]  # asset → its cross wallet ledger account, where one exists
    positions: dict[str, PositionState]
    marks: dict[str, Decimal]
    prices: dict[str, Decimal]
    asset_ids: dict[str, int]
    instrument_ids: dict[str, int]
    underlyings: dict[str, str]
    settlement: str
    house_ids: dict[tuple[str, str], int]  # (kind, asset) → house ledger account
    terms: EngineTerms
    margin_scheme: str = STANDARD
    # The markets' depths, and what the owner holds in their other accounts (instrument:
    # |quantity| summed, asset: holdings summed): the liquidity charges and the haircut tiers
    # are taken on the owner's whole holding.
    liquidity: LiquidityTerms | None = None
    owner_other_positions: dict[str, Decimal] = field(default_factory=dict)
    owner_other_wallets: dict[str, Decimal] = field(default_factory=dict)
    # The option series by symbol (every instrument not here is linear).
    options: dict[str, OptionTerms] = field(default_factory=dict)

    def is_option(self, instrument: str) -> bool:
        return instrument in self.options

    def _position_owner_quantity(self, instrument: str, quantity: Decimal) -> Decimal | None:
        others = self.owner_other_positions.get(instrument, ZERO)
        return abs(quantity) + others if others > 0 else None

    def owner_notional(self, instrument: str) -> Decimal:
        """What the owner holds of the instrument over all their accounts (this account's
        position and the others', long and short alike) at its mark: it picks the bracket
        (`margin.engine.reference.owner_notional`)."""
        held = abs(self.position(instrument).quantity)
        return (held + self.owner_other_positions.get(instrument, ZERO)) * self.marks[instrument]

    def _wallet_owner_quantity(self, asset: str, quantity: Decimal) -> Decimal | None:
        others = self.owner_other_wallets.get(asset, ZERO)
        return quantity + others if others > 0 and quantity > 0 else None

    def house_id(self, kind: str, asset: str) -> int:
        return self.house_ids[kind, asset]

    def with_wallet(self, asset: str, delta: Decimal) -> "AccountState":
        wallets = dict(self.wallets)
        wallets[asset] = wallets.get(asset, ZERO) + delta
        return replace(self, wallets=wallets)

    def with_position(self, position: PositionState) -> "AccountState":
        return replace(self, positions={**self.positions, position.instrument: position})

    def position(self, instrument: str) -> PositionState:
        """The account's position in `instrument`, flat with default settings if it has none."""
        if instrument in self.positions:
            return self.positions[instrument]
        return PositionState(
            instrument=instrument,
            underlying=self.underlyings[instrument],
            position_id=None,
            quantity=ZERO,
            entry_price=ZERO,
            leverage=Position._meta.get_field("leverage").default,
            margin_mode=Position._meta.get_field("margin_mode").default,
            isolated_margin=ZERO,
            isolated_account_id=None,
        )

    def position_quote(self, quote: AccountQuote, instrument: str) -> PositionQuote | None:
        """The row of `quote` (computed on this state) for the position in `instrument`."""
        engine_id = self.position(instrument).engine_id
        return next((row for row in quote.positions if row.id == engine_id), None)

    def isolated_shortfall(self, quote: AccountQuote, instrument: str) -> Decimal:
        """How far an isolated position's margin (with its unrealized loss) is under its
        initial margin; 0 or less when it covers it."""
        row = self.position_quote(quote, instrument)
        if row is None or row.isolated_margin is None:
            return ZERO
        return row.initial_margin - row.isolated_margin - min(ZERO, row.unrealized_pnl)

    def _option_inputs(self, held: list[PositionState]) -> tuple[OptionInput, ...]:
        """Option positions for the engine. The premium was paid (or received) in cash when
        the position opened, so the wallet already holds it: the position counts at its whole
        value, entry 0 (a long adds its mark × size to the margin balance, a short takes it
        off)."""
        inputs = []
        for p in held:
            terms = self.options[p.instrument]
            inputs.append(
                OptionInput(
                    id=p.engine_id,
                    underlying=terms.underlying,
                    option_type=terms.option_type,
                    strike=terms.strike,
                    expiry_days=terms.expiry_days,
                    implied_vol=terms.implied_vol,
                    underlying_price=terms.forward,
                    side=LONG if p.quantity > 0 else SHORT,
                    quantity=abs(p.quantity),
                    entry_price=ZERO,
                )
            )
        return tuple(inputs)

    def engine_input(self) -> AccountInput:
        """The engine's view; a position's id is its primary key (see `engine_id`)."""
        held = [
            p for p in sorted(self.positions.values(), key=lambda p: p.instrument) if p.quantity
        ]
        return AccountInput(
            collateral=tuple(
                CollateralLine(
                    asset=asset,
                    quantity=quantity,
                    price=self.prices[asset],
                    haircut_tiers=self.terms.haircuts.get(asset, ()),
                    owner_quantity=self._wallet_owner_quantity(asset, quantity),
                    liquidity=self.liquidity.assets.get(asset) if self.liquidity else None,
                )
                for asset, quantity in sorted(self.wallets.items())
                if quantity
            ),
            positions=tuple(
                PositionInput(
                    id=p.engine_id,
                    side=LONG if p.quantity > 0 else SHORT,
                    quantity=abs(p.quantity),
                    entry_price=p.entry_price,
                    mark_price=self.marks[p.instrument],
                    leverage=p.leverage,
                    brackets=self.terms.brackets[p.instrument],
                    margin_mode=p.margin_mode,
                    isolated_margin=max(p.isolated_margin, LEAST_ISOLATED_MARGIN)
                    if p.is_isolated
                    else None,
                    underlying=p.underlying,
                    liquidity=self.liquidity.instruments.get(p.instrument)
                    if self.liquidity
                    else None,
                    owner_quantity=self._position_owner_quantity(p.instrument, p.quantity),
                )
                for p in held
                if not self.is_option(p.instrument)
            ),
            options=self._option_inputs([p for p in held if self.is_option(p.instrument)]),
            credit_tier=self.terms.credit_tiers[self.credit_tier],
            # The pool is measured in the settlement coin: USDT counts 1:1 whatever its index.
            settlement_asset=self.settlement,
            settlement_price=self.prices[self.settlement],
        )

    def quote(self) -> AccountQuote:
        """The engine's figures of this state, computed once: a plan quotes its `after` to
        check it, and the preview shows that same quote."""
        quote = self.__dict__.get("_quote")
        if quote is None:
            quote = quote_account(self.engine_input())
            # A state is never changed in place (`with_*` make new ones), so the quote holds.
            object.__setattr__(self, "_quote", quote)
        return quote

    def requirement(self) -> Requirement:
        """The cross pool's requirement under the account's margin scheme (the portfolio
        scheme's stress loss on the stress model of now), computed once like the quote."""
        requirement = self.__dict__.get("_requirement")
        if requirement is None:
            quote = self.quote()
            stress_loss = None
            if self.margin_scheme == PORTFOLIO:
                stress = account_stress(self.engine_input(), stress_model_now(), quote=quote)
                stress_loss = stress.worst_loss
            # Holding options, the quote's MM and IM are the grid's; the tiered ones of the
            # linear positions stay a floor (`margin.engine.scheme`).
            grid = quote.portfolio if quote.options else None
            requirement = account_requirement(
                scheme=self.margin_scheme,
                collateral_value=quote.collateral_value,
                unrealized_pnl=quote.unrealized_pnl,
                margin_balance=quote.margin_balance,
                tiered_maintenance=quote.maintenance_margin
                if grid is None
                else quote.tiered_maintenance_margin,
                tiered_initial=quote.initial_margin
                if grid is None
                else quote.tiered_initial_margin,
                stress_loss=stress_loss,
                margin_call_ratio=self.terms.margin_call_ratio,
                grid_maintenance=None if grid is None else grid.maintenance_margin,
                grid_initial=None if grid is None else grid.initial_margin,
            )
            object.__setattr__(self, "_requirement", requirement)
        return requirement

    def fingerprint(self) -> str:
        """A hash of what the figures rest on: balances, positions and the prices and marks of
        what the account holds, and the parameter version."""
        held_assets = sorted(a for a, q in self.wallets.items() if q)
        held = [p for _, p in sorted(self.positions.items()) if p.quantity or p.isolated_margin]
        state = {
            "version": self.terms.version_number,
            "wallets": {a: str(self.wallets[a]) for a in held_assets},
            "prices": {a: str(self.prices[a]) for a in held_assets},
            "positions": [
                [
                    p.instrument,
                    str(p.quantity),
                    str(p.entry_price),
                    str(p.leverage),
                    p.margin_mode,
                    str(p.isolated_margin),
                    str(self.marks[p.instrument]),
                ]
                for p in held
            ],
        }
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def free_collateral(state: AccountState) -> Decimal:
    """The cross pool's withdrawable before its floor at 0: collateral value + unrealized losses
    − initial requirement (the tiered IM, or under the portfolio scheme the larger of it and the
    stress requirement over the margin-call ratio). Negative means the pool does not cover it."""
    quote = state.quote()
    return quote.collateral_value + min(ZERO, quote.unrealized_pnl) - state.requirement().initial


def account_state_load(account: MarginAccount | int) -> AccountState:
    """The account as it stands, read without locks."""
    return account_state_read(account, lock=no_lock)


def account_states_load(account_ids: Iterable[int]) -> dict[int, AccountState]:
    """Several accounts as they stand, read without locks: id → state."""
    return account_states_read(account_ids, lock=no_lock)


# What the state's reads append to their SQL for a table alias: nothing for a read; a write
# passes the clause that locks the rows it read.
type LockClause = Callable[[str], str]


def no_lock(alias: str) -> str:
    return ""


def account_state_read(
    account: MarginAccount | int, *, lock: LockClause, market: dict | None = None
) -> AccountState:
    account_id = account if isinstance(account, int) else account.pk
    states = account_states_read([account_id], lock=lock, market=market)
    if account_id not in states:
        raise ApplicationError("No such margin account.")
    return states[account_id]


def account_states_read(
    account_ids: Iterable[int], *, lock: LockClause, market: dict | None = None
) -> dict[int, AccountState]:
    """Several accounts in at most ten queries, whatever their number: id → state. The
    accounts, then their positions, then their ledger accounts are read (and with a `lock`
    clause locked), each by primary key; the market (four or five) unless a read passes the one it
    has (`market_load()`'s, as `margin.selectors.market_now` keeps it); what owners of several
    accounts hold in the others (two).

    Plain SQL rather than the ORM: every write runs these reads, and compiling the querysets
    cost more CPU than the rest of the write."""
    account_ids = sorted(set(account_ids))
    if not account_ids:
        return {}
    ids = ", ".join(["%s"] * len(account_ids))
    account_rows = rows(
        f"SELECT a.id, a.owner_id, t.code, a.reduce_only, a.margin_scheme, "
        f"(SELECT count(*) FROM {table(MarginAccount)} o WHERE o.owner_id = a.owner_id) "
        f"FROM {table(MarginAccount)} a "
        f"JOIN {table(CreditTier)} t ON t.id = a.credit_tier_id "
        f"WHERE a.id IN ({ids}) ORDER BY a.id" + lock("a"),
        account_ids,
    )
    position_rows = rows(
        "SELECT p.id, p.margin_account_id, i.symbol, u.symbol, p.quantity, p.entry_price, "
        f"p.leverage, p.margin_mode FROM {table(Position)} p "
        f"JOIN {table(Instrument)} i ON i.id = p.instrument_id "
        f"JOIN {table(Asset)} u ON u.id = i.underlying_id "
        f"WHERE p.margin_account_id IN ({ids}) ORDER BY p.id" + lock("p"),
        account_ids,
    )
    ledger_rows = rows(
        "SELECT la.id, la.margin_account_id, la.kind, a.symbol, la.position_id, la.balance "
        f"FROM {table(LedgerAccount)} la JOIN {table(Asset)} a ON a.id = la.asset_id "
        f"WHERE la.margin_account_id IN ({ids}) ORDER BY la.id" + lock("la"),
        account_ids,
    )
    wallets: dict[int, dict[str, Decimal]] = defaultdict(dict)
    wallet_ids: dict[int, dict[str, int]] = defaultdict(dict)
    isolated: dict[int, tuple[int, Decimal]] = {}
    for pk, account_id, kind, symbol, position_id, balance in ledger_rows:
        if kind == LedgerAccountKind.WALLET:
            wallets[account_id][symbol] = decimal(balance)
            wallet_ids[account_id][symbol] = pk
        else:
            isolated[position_id] = (pk, decimal(balance))
    positions_of: dict[int, dict[str, PositionState]] = defaultdict(dict)
    for pk, account_id, symbol, underlying, quantity, entry, leverage, mode in position_rows:
        isolated_id, isolated_balance = isolated.get(pk, (None, ZERO))
        positions_of[account_id][symbol] = PositionState(
            instrument=symbol,
            underlying=underlying,
            position_id=pk,
            quantity=decimal(quantity),
            entry_price=decimal(entry),
            leverage=decimal(leverage),
            margin_mode=mode,
            isolated_margin=isolated_balance,
            isolated_account_id=isolated_id,
        )
    market = market_load() if market is None else market
    # Most owners hold one account: their holdings over all accounts are this one's, unread.
    owned = _owner_holdings([row[1] for row in account_rows if row[5] > 1])
    return {
        account_id: AccountState(
            owner_other_positions=_others(
                owned[0].get(owner_id, {}),
                {s: abs(p.quantity) for s, p in positions_of[account_id].items()},
            ),
            owner_other_wallets=_others(
                owned[1].get(owner_id, {}),
                {a: q for a, q in wallets[account_id].items() if q > 0},
            ),
            account_id=account_id,
            owner_id=owner_id,
            credit_tier=credit_tier,
            reduce_only=bool(reduce_only),
            wallets=wallets[account_id],
            wallet_ids=wallet_ids[account_id],
            positions=positions_of[account_id],
            margin_scheme=margin_scheme,
            **market,
        )
        for account_id, owner_id, credit_tier, reduce_only, margin_scheme, _ in account_rows
    }


def _owner_holdings(owner_ids: list[int]) -> tuple[dict, dict]:
    """What each owner holds over all their accounts, for owners with more than one: per owner
    {instrument: Σ |quantity|} and {asset: Σ holdings}; two queries, none for lone accounts."""
    owners = sorted(set(owner_ids))
    if not owners:
        return {}, {}
    marks = ", ".join(["%s"] * len(owners))
    shared = (
        f"SELECT owner_id FROM {table(MarginAccount)} WHERE owner_id IN ({marks}) "
        "GROUP BY owner_id HAVING COUNT(*) > 1"
    )
    positions: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for owner, symbol, total in rows(
        f"SELECT a.owner_id, i.symbol, SUM(ABS(p.quantity)) FROM {table(Position)} p "
        f"JOIN {table(MarginAccount)} a ON a.id = p.margin_account_id "
        f"JOIN {table(Instrument)} i ON i.id = p.instrument_id "
        f"WHERE a.owner_id IN ({shared}) AND p.quantity <> 0 GROUP BY a.owner_id, i.symbol",
        owners,
    ):
        positions[owner][symbol] = decimal(total)
    wallets: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for owner, symbol, total in rows(
        f"SELECT a.owner_id, s.symbol, SUM(la.balance) FROM {table(LedgerAccount)} la "
        f"JOIN {table(MarginAccount)} a ON a.id = la.margin_account_id "
        f"JOIN {table(Asset)} s ON s.id = la.asset_id "
        f"WHERE a.owner_id IN ({shared}) AND la.kind = %s AND la.balance > 0 "
        "GROUP BY a.owner_id, s.symbol",
        [*owners, LedgerAccountKind.WALLET],
    ):
        wallets[owner][symbol] = decimal(total)
    return positions, wallets


def _others(totals: dict[str, Decimal], own: dict[str, Decimal]) -> dict[str, Decimal]:
    """The owner's totals less this account's own holdings: what the other accounts hold."""
    return {
        key: total - own.get(key, ZERO)
        for key, total in totals.items()
        if total - own.get(key, ZERO) > 0
    }


def market_load() -> dict:
    """What every account is valued on: marks, prices, ids, house accounts, the parameters in
    force and the markets' depths (one query more: the latest volatility estimate)."""
    # One read of every instrument and its mark; an option's series terms come with it.
    listed = rows(
        f"SELECT i.id, i.symbol, u.symbol, m.mark_price, m.depth_usd, i.kind, i.option_type, "
        f"i.strike, i.expiry, m.implied_vol, m.index_price FROM {table(Instrument)} i "
        f"JOIN {table(Asset)} u ON u.id = i.underlying_id "
        f"LEFT JOIN {table(MarkPrice)} m ON m.instrument_id = i.id"
    )
    instruments = [row[:5] for row in listed]
    options = _option_terms(
        row[1:3] + row[6:] for row in listed if row[5] == Instrument.Kind.OPTION and row[9]
    )
    assets = rows(
        f"SELECT a.id, a.symbol, a.is_settlement, p.price, p.depth_usd FROM {table(Asset)} a "
        f"JOIN {table(AssetPrice)} p ON p.asset_id = a.id"
    )
    house = rows(
        f"SELECT la.id, la.kind, a.symbol FROM {table(LedgerAccount)} la "
        f"JOIN {table(Asset)} a ON a.id = la.asset_id WHERE la.margin_account_id IS NULL"
    )
    settlement = next((symbol for _, symbol, is_settlement, _, _ in assets if is_settlement), None)
    if settlement is None:
        raise ApplicationError("No settlement asset is priced: run `manage.py seed_reference`.")
    terms = terms_in_force()
    asset_depths = {symbol: _depth(depth) for _, symbol, _, _, depth in assets}
    instrument_depths = {
        symbol: (underlying, _depth(depth)) for _, symbol, underlying, _, depth in instruments
    }
    liquidity = None
    if any(asset_depths.values()) or any(d for _, d in instrument_depths.values()):
        names = {symbol for _, symbol, _, _, _ in assets}
        liquidity = markets_of(
            terms,
            daily_vol=daily_volatility(terms, latest_estimate(), names),
            asset_depths=asset_depths,
            instrument_depths=instrument_depths,
        )
    return {
        "marks": {
            symbol: decimal(mark) for _, symbol, _, mark, _ in instruments if mark is not None
        },
        "prices": {symbol: decimal(price) for _, symbol, _, price, _ in assets},
        "asset_ids": {symbol: pk for pk, symbol, _, _, _ in assets},
        "instrument_ids": {symbol: pk for pk, symbol, _, _, _ in instruments},
        "underlyings": {symbol: underlying for _, symbol, underlying, _, _ in instruments},
        "settlement": settlement,
        "house_ids": {(kind, symbol): pk for pk, kind, symbol in house},
        "terms": terms,
        "liquidity": liquidity,
        "options": options,
    }


# An option past its expiry and not yet settled is valued one market minute from it (as its
# mark is, `margin.services.option_marks.LEAST_EXPIRY_DAYS`).
LEAST_EXPIRY_DAYS = Decimal(1) / 1440


def _option_terms(series) -> dict[str, OptionTerms]:
    """Each marked option series, (symbol, underlying, type, strike, expiry, vol, forward), as
    the engine prices it at the time of the read."""
    now = timezone.now()
    speed = Decimal(str(market_speed()))
    terms = {}
    for symbol, underlying, option_type, strike, expiry, vol, forward in series:
        days = Decimal(str((aware(expiry) - now).total_seconds())) * speed / 86_400
        terms[symbol] = OptionTerms(
            underlying=underlying,
            option_type=option_type,
            strike=decimal(strike),
            expiry_days=max(days, LEAST_EXPIRY_DAYS),
            implied_vol=decimal(vol),
            forward=decimal(forward),
        )
    return terms


def aware(value) -> datetime:
    """A timestamp column as an aware datetime (SQLite hands naive UTC over, or text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _depth(value) -> Decimal | None:
    return None if value is None else decimal(value)


def desk_users():
    """The users who may use the desk (by their groups' permission, or as superusers)."""
    perm = Q(groups__permissions__codename=USE_DESK.split(".", 1)[1])
    return get_user_model().objects.filter(perm | Q(is_superuser=True)).distinct()


def credit_tiers() -> QuerySet[CreditTier]:
    return CreditTier.objects.all()


def open_positions_of(account: MarginAccount | None) -> QuerySet[Position]:
    """The account's open positions with their instrument; none for no account."""
    if account is None:
        return Position.objects.none()
    return (
        Position.objects.filter(margin_account=account)
        .exclude(quantity=0)
        .select_related("instrument")
    )
