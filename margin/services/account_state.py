"""One margin account in memory: what every service plans on and every preview quotes.

A service loads the state (locked, inside its transaction), plans the change on a copy, checks
the plan with the engine, then books it; a preview does the same without the lock and without
booking. The fingerprint of the state lets a confirm prove nothing moved since its preview.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db import connection, transaction

from margin.engine.reference import AccountQuote, PositionQuote, quote_account
from margin.engine.types import (
    ISOLATED,
    LONG,
    SHORT,
    ZERO,
    AccountInput,
    CollateralLine,
    PositionInput,
)
from margin.errors import ApplicationError
from margin.models import (
    Asset,
    AssetPrice,
    CreditTier,
    Instrument,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
    MarkPrice,
    Position,
)
from margin.services.idempotency import (
    idempotency_claim,
    idempotency_complete,
    idempotency_key_check,
)
from margin.services.ledger import QUANTUM, isolated_account_ensure, wallet_accounts_ensure
from margin.services.reference import EngineTerms, terms_in_force
from margin.services.sql import decimal, rows, table

# The engine wants a positive isolated margin; a position past bankruptcy may hold none. It is
# shown as the smallest amount the ledger can hold until the liquidation engine closes it.
LEAST_ISOLATED_MARGIN = QUANTUM
STALE_PREVIEW = "Prices or balances moved since the preview; review it again."


@dataclass(frozen=True)
class Receipt:
    """The result of a write, replayed as is for the same idempotency key."""

    operation: str
    margin_account_id: int
    journal_id: int | None = None
    fill_id: int | None = None
    position_id: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    def as_json(self) -> dict:
        return {
            "operation": self.operation,
            "margin_account_id": self.margin_account_id,
            "journal_id": self.journal_id,
            "fill_id": self.fill_id,
            "position_id": self.position_id,
            "details": self.details,
        }


@dataclass(frozen=True)
class Preview:
    """A dry run: the engine's figures before and after, the fingerprint of the state they were
    computed on (pass it back as `expected_fingerprint`), and the refusal if the write would be
    refused (`after` is None when there is no after to show)."""

    operation: str
    before: AccountQuote
    after: AccountQuote | None
    fingerprint: str
    refusal: str | None = None
    details: dict[str, str] = field(default_factory=dict)


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

    def wallet_id(self, asset: str) -> int:
        """The cross wallet ledger account of `asset`, created on first use."""
        if asset in self.wallet_ids:
            return self.wallet_ids[asset]
        asset_id = self.asset_ids[asset]
        return wallet_accounts_ensure(margin_account_id=self.account_id, asset_ids=[asset_id])[
            asset_id
        ]

    def isolated_id(self, instrument: str, position_id: int) -> int:
        """The isolated margin ledger account of the position, created on first use."""
        known = self.positions.get(instrument)
        if known is not None and known.isolated_account_id is not None:
            return known.isolated_account_id
        return isolated_account_ensure(
            margin_account_id=self.account_id,
            position_id=position_id,
            asset_id=self.asset_ids[self.settlement],
        )

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

    def engine_input(self) -> AccountInput:
        """The engine's view; a position's id is its primary key (see `engine_id`)."""
        return AccountInput(
            collateral=tuple(
                CollateralLine(
                    asset=asset,
                    quantity=quantity,
                    price=self.prices[asset],
                    haircut_tiers=self.terms.haircuts.get(asset, ()),
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
                )
                for p in sorted(self.positions.values(), key=lambda p: p.instrument)
                if p.quantity
            ),
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


def free_collateral(quote: AccountQuote) -> Decimal:
    """The cross pool's withdrawable before its floor at 0: collateral value + unrealized losses
    − initial margin. Negative means the pool does not cover its initial margin."""
    return quote.collateral_value + min(ZERO, quote.unrealized_pnl) - quote.initial_margin


def account_state_load(account: MarginAccount | int, *, lock: bool) -> AccountState:
    """The account as it stands. With `lock`, inside a transaction, its row, positions and own
    ledger accounts are locked in that order (see `margin.services.ledger`)."""
    account_id = account if isinstance(account, int) else account.pk
    states = account_states_load([account_id], lock=lock)
    if account_id not in states:
        raise ApplicationError("No such margin account.")
    return states[account_id]


def _lock(alias: str, lock: bool) -> str:
    # Plain SQL rather than the ORM: every write runs these reads, and compiling the querysets
    # cost more CPU than the rest of the write. SQLite locks the whole database instead.
    if lock and connection.features.has_select_for_no_key_update:
        return f" FOR NO KEY UPDATE OF {alias}"
    return ""


def account_states_load(
    account_ids: Iterable[int], *, lock: bool = False
) -> dict[int, AccountState]:
    """Several accounts in seven queries, whatever their number: id → state. With `lock`, the
    accounts, then their positions, then their ledger accounts are locked, each by primary key."""
    account_ids = sorted(set(account_ids))
    if not account_ids:
        return {}
    ids = ", ".join(["%s"] * len(account_ids))
    account_rows = rows(
        f"SELECT a.id, a.owner_id, t.code, a.reduce_only FROM {table(MarginAccount)} a "
        f"JOIN {table(CreditTier)} t ON t.id = a.credit_tier_id "
        f"WHERE a.id IN ({ids}) ORDER BY a.id" + _lock("a", lock),
        account_ids,
    )
    position_rows = rows(
        "SELECT p.id, p.margin_account_id, i.symbol, u.symbol, p.quantity, p.entry_price, "
        f"p.leverage, p.margin_mode FROM {table(Position)} p "
        f"JOIN {table(Instrument)} i ON i.id = p.instrument_id "
        f"JOIN {table(Asset)} u ON u.id = i.underlying_id "
        f"WHERE p.margin_account_id IN ({ids}) ORDER BY p.id" + _lock("p", lock),
        account_ids,
    )
    ledger_rows = rows(
        "SELECT la.id, la.margin_account_id, la.kind, a.symbol, la.position_id, la.balance "
        f"FROM {table(LedgerAccount)} la JOIN {table(Asset)} a ON a.id = la.asset_id "
        f"WHERE la.margin_account_id IN ({ids}) ORDER BY la.id" + _lock("la", lock),
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
    market = market_load()
    return {
        account_id: AccountState(
            account_id=account_id,
            owner_id=owner_id,
            credit_tier=credit_tier,
            reduce_only=bool(reduce_only),
            wallets=wallets[account_id],
            wallet_ids=wallet_ids[account_id],
            positions=positions_of[account_id],
            **market,
        )
        for account_id, owner_id, credit_tier, reduce_only in account_rows
    }


def market_load() -> dict:
    """What every account is valued on: marks, prices, ids, house accounts and the parameters
    in force."""
    instruments = rows(
        f"SELECT i.id, i.symbol, u.symbol, m.mark_price FROM {table(Instrument)} i "
        f"JOIN {table(Asset)} u ON u.id = i.underlying_id "
        f"LEFT JOIN {table(MarkPrice)} m ON m.instrument_id = i.id"
    )
    assets = rows(
        f"SELECT a.id, a.symbol, a.is_settlement, p.price FROM {table(Asset)} a "
        f"JOIN {table(AssetPrice)} p ON p.asset_id = a.id"
    )
    house = rows(
        f"SELECT la.id, la.kind, a.symbol FROM {table(LedgerAccount)} la "
        f"JOIN {table(Asset)} a ON a.id = la.asset_id WHERE la.margin_account_id IS NULL"
    )
    settlement = next((symbol for _, symbol, is_settlement, _ in assets if is_settlement), None)
    if settlement is None:
        raise ApplicationError("No settlement asset is priced: run `manage.py seed_reference`.")
    return {
        "marks": {symbol: decimal(mark) for _, symbol, _, mark in instruments if mark is not None},
        "prices": {symbol: decimal(price) for _, symbol, _, price in assets},
        "asset_ids": {symbol: pk for pk, symbol, _, _ in assets},
        "instrument_ids": {symbol: pk for pk, symbol, _, _ in instruments},
        "underlyings": {symbol: underlying for _, symbol, underlying, _ in instruments},
        "settlement": settlement,
        "house_ids": {(kind, symbol): pk for pk, kind, symbol in house},
        "terms": terms_in_force(),
    }


# Amounts are NUMERIC(38, 18): at most 20 digits before the point.
LARGEST_AMOUNT = Decimal("1e20")


def amount_parse(value, *, field: str, allow_zero: bool = False) -> Decimal:
    """A positive (or, with `allow_zero`, non-negative) decimal with at most 18 decimal places,
    or an ApplicationError naming `field`."""
    label = field.replace("_", " ").capitalize()
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (ArithmeticError, ValueError):
        raise ApplicationError(
            f"{label} must be a number, got {value!r}.", {field: "not a number"}
        ) from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        qualifier = "zero or positive" if allow_zero else "positive"
        raise ApplicationError(
            f"{label} must be {qualifier}, got {value}.", {field: f"must be {qualifier}"}
        )
    if amount >= LARGEST_AMOUNT or amount != amount.quantize(QUANTUM):
        raise ApplicationError(
            f"{label} must be below 10^20 with at most 18 decimal places, got {value}.",
            {field: "out of range"},
        )
    return amount


def asset_check(state: AccountState, asset: str) -> str:
    if asset not in state.asset_ids:
        raise ApplicationError(f"Unknown asset {asset!r}.", {"asset": "unknown asset"})
    return asset


def instrument_check(state: AccountState, instrument: str) -> str:
    if instrument not in state.instrument_ids or instrument not in state.terms.brackets:
        raise ApplicationError(
            f"Unknown instrument {instrument!r}.", {"instrument": "unknown instrument"}
        )
    if instrument not in state.marks:
        raise ApplicationError(
            f"{instrument} has no mark price yet.", {"instrument": "no mark price"}
        )
    return instrument


@dataclass(frozen=True)
class Plan:
    """A change worked out on the in-memory state: the state after it, or why it is refused."""

    after: AccountState | None
    refusal: str | None = None
    refusal_field: str | None = None
    details: dict[str, str] = field(default_factory=dict)


def preview_run[P: Plan](
    *, operation: str, account: MarginAccount, plan: Callable[[AccountState], P]
) -> Preview:
    """The engine's before and after of `plan` on the account as it stands; writes nothing."""
    state = account_state_load(account, lock=False)
    planned = plan(state)
    return Preview(
        operation=operation,
        before=state.quote(),
        after=planned.after.quote() if planned.after is not None else None,
        fingerprint=state.fingerprint(),
        refusal=planned.refusal,
        details=planned.details,
    )


def write_run[P: Plan](
    *,
    operation: str,
    account: MarginAccount,
    request: dict,
    idempotency_key: str,
    expected_fingerprint: str | None,
    plan: Callable[[AccountState], P],
    book: Callable[[AccountState, P], Receipt],
) -> Receipt:
    """One write in one transaction: claim the idempotency key, lock the account (see the lock
    order in `margin.services.ledger`), refuse a stale preview, plan, refuse or book."""
    idempotency_key_check(idempotency_key)
    with transaction.atomic():
        record_id, first = idempotency_claim(
            user_id=account.owner_id,
            key=idempotency_key,
            operation=operation,
            request={"margin_account": account.pk, **request},
        )
        if first is not None:
            return Receipt(**first, replayed=True)
        state = account_state_load(account, lock=True)
        if expected_fingerprint is not None and expected_fingerprint != state.fingerprint():
            raise ApplicationError(STALE_PREVIEW, {"fingerprint": "stale"})
        planned = plan(state)
        if planned.refusal is not None:
            raise ApplicationError(planned.refusal, {planned.refusal_field or "__all__": "refused"})
        receipt = book(state, planned)
        idempotency_complete(record_id=record_id, response=receipt.as_json())
    return receipt


def as_text(value: Decimal) -> str:
    """A decimal for people and JSON: no exponent, no trailing zeros."""
    return format(value.normalize(), "f") if value else "0"
