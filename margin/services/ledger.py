"""Posting to the double-entry ledger: the one place that writes entries and balances.

Lock order (ARCHITECTURE.md, "Lock order"; every service follows it, so two transactions never
wait on each other in a cycle): the idempotency record (an insert), the MarginAccount row, its
positions (by pk), its own ledger accounts (by pk), and last the house accounts (outside world,
fees, insurance, market, funding), in pk order. House rows are shared by every account, so a
write takes them last and holds them for the shortest time: inside `house_rows_last` (every
trader write, every liquidation) `journal_post` books the entries and moves the account's own
balances at once, and the house balances are moved when the block ends, in one pass in pk order,
whatever the order the journals came in and however many accounts the write went through.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from margin.db import execute, insert, table
from margin.engine.precision import LEDGER_QUANTUM
from margin.errors import ApplicationError
from margin.models import (
    Asset,
    CreditTier,
    Entry,
    Journal,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
)

# Every amount posted must already be a multiple of this (NUMERIC(38, 18)).
QUANTUM = LEDGER_QUANTUM
HOUSE_KINDS = (
    LedgerAccountKind.EXTERNAL,
    LedgerAccountKind.FEES,
    LedgerAccountKind.INSURANCE,
    LedgerAccountKind.MARKET,
    LedgerAccountKind.FUNDING,
)


@dataclass(frozen=True)
class Line:
    """One side of a journal: `amount` (+ raises the balance) on a ledger account."""

    ledger_account_id: int
    asset_id: int
    amount: Decimal


def house_accounts_ensure(*, assets: Iterable[Asset]) -> None:
    """Create the house accounts (outside world, fees, insurance, market, funding) per asset."""
    LedgerAccount.objects.bulk_create(
        [LedgerAccount(kind=kind, asset=asset) for asset in assets for kind in HOUSE_KINDS],
        ignore_conflicts=True,
    )


def wallet_accounts_ensure(*, margin_account_id: int, asset_ids: Iterable[int]) -> dict[int, int]:
    """The cross wallet ledger accounts of a margin account, created where missing: asset id →
    ledger account id. ON CONFLICT DO NOTHING keeps a concurrent creation harmless."""
    asset_ids = set(asset_ids)
    LedgerAccount.objects.bulk_create(
        [
            LedgerAccount(
                kind=LedgerAccountKind.WALLET,
                asset_id=asset_id,
                margin_account_id=margin_account_id,
            )
            for asset_id in asset_ids
        ],
        ignore_conflicts=True,
    )
    return dict(
        LedgerAccount.objects.filter(
            kind=LedgerAccountKind.WALLET,
            margin_account_id=margin_account_id,
            asset_id__in=asset_ids,
        ).values_list("asset_id", "pk")
    )


def wallets_ensure(*, margin_account_ids: Iterable[int], asset_id: int) -> dict[int, int]:
    """The `asset_id` cross wallets of many margin accounts, created where missing: margin
    account id → ledger account id (a settlement's embedded path)."""
    margin_account_ids = sorted(set(margin_account_ids))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table(LedgerAccount)} (kind, asset_id, margin_account_id, balance) "
            "VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING",
            [(LedgerAccountKind.WALLET, asset_id, account) for account in margin_account_ids],
        )
    return dict(
        LedgerAccount.objects.filter(
            kind=LedgerAccountKind.WALLET,
            asset_id=asset_id,
            margin_account_id__in=margin_account_ids,
            position__isnull=True,
        ).values_list("margin_account_id", "pk")
    )


def wallets_ensure_in_sql(*, holders: str, asset_id: int, accounts: tuple[int, int]) -> None:
    """The `asset_id` cross wallets of the margin accounts the SQL `holders` selects (one
    `account_id` column; ids in `accounts`, a range), created where missing, set-based."""
    execute(
        f"INSERT INTO {table(LedgerAccount)} (kind, asset_id, margin_account_id, balance) "
        f"SELECT DISTINCT %s, %s, h.account_id, 0 FROM ({holders}) h "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table(LedgerAccount)} w WHERE w.kind = %s "
        "AND w.asset_id = %s AND w.margin_account_id = h.account_id AND w.position_id IS NULL "
        "AND w.margin_account_id BETWEEN %s AND %s) ON CONFLICT DO NOTHING",
        [LedgerAccountKind.WALLET, asset_id, LedgerAccountKind.WALLET, asset_id, *accounts],
    )


def isolated_account_ensure(*, margin_account_id: int, position_id: int, asset_id: int) -> int:
    """The isolated margin ledger account of a position (one per position, reused on reopen)."""
    LedgerAccount.objects.bulk_create(
        [
            LedgerAccount(
                kind=LedgerAccountKind.ISOLATED,
                asset_id=asset_id,
                margin_account_id=margin_account_id,
                position_id=position_id,
            )
        ],
        ignore_conflicts=True,
    )
    return LedgerAccount.objects.values_list("pk", flat=True).get(
        position_id=position_id, asset_id=asset_id
    )


def unbalanced_assets(lines: Iterable[Line]) -> dict[int, Decimal]:
    """Asset id → non-zero sum of the lines: what would make a journal not balance."""
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for line in lines:
        totals[line.asset_id] += line.amount
    return {asset_id: total for asset_id, total in totals.items() if total != 0}


def journal_post(
    *,
    kind: str,
    lines: Sequence[Line],
    margin_account_id: int | None = None,
    created_by_id: int | None = None,
    memo: str = "",
) -> Journal | None:
    """Book one balanced journal and move the balances of its accounts; None when every line is
    zero. Call it inside the service's transaction, with the account's own rows already locked.
    The house balances move after the account's, in pk order: at once, or inside
    `house_rows_last` when the block ends.

    The balance check here is the only one SQLite gets; PostgreSQL checks it again at commit
    with the deferred constraint trigger of migration `ledger_triggers`.
    """
    merged: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.amount != line.amount.quantize(QUANTUM):
            raise ValueError(f"amount {line.amount} has more than 18 decimal places")
        merged[line.ledger_account_id, line.asset_id] += line.amount
    posted = [Line(account, asset, amount) for (account, asset), amount in merged.items() if amount]
    if not posted:
        return None
    if imbalance := unbalanced_assets(posted):
        raise ValueError(f"journal {kind} does not balance: {imbalance}")
    values = {
        "kind": kind,
        "margin_account_id": margin_account_id,
        "created_by_id": created_by_id,
        "memo": memo,
        "created_at": timezone.now(),
    }
    journal = Journal(pk=insert(Journal, **values), **values)
    execute(
        f"INSERT INTO {table(Entry)} (journal_id, ledger_account_id, asset_id, amount) "
        f"VALUES {', '.join(['(%s, %s, %s, %s)'] * len(posted))}",
        [
            value
            for line in posted
            for value in (journal.pk, line.ledger_account_id, line.asset_id, line.amount)
        ],
    )
    # The account's own rows now, in pk order (the write has them locked already); a house row
    # is not matched, so not locked, here.
    house = []
    with connection.cursor() as cursor:
        for line in sorted(posted, key=lambda line: line.ledger_account_id):
            cursor.execute(
                f"UPDATE {table(LedgerAccount)} SET balance = balance + %s "
                "WHERE id = %s AND margin_account_id IS NOT NULL",
                [line.amount, line.ledger_account_id],
            )
            if not cursor.rowcount:
                house.append((line.ledger_account_id, line.amount))
    if (pending := _house_journals.get()) is not None:
        pending[journal.pk] = house
    else:
        _house_balances_move(house)
    return journal


_house_journals: ContextVar[dict[int, list[tuple[int, Decimal]]] | None] = ContextVar(
    "house_journals", default=None
)
"""The house moves of each journal booked inside the outermost `house_rows_last` block, still to
be made: journal id → [(house account id, amount)]."""


@contextmanager
def house_rows_last():
    """Inside a transaction: the house balances of every journal booked in the block move when
    it ends, as the transaction's last writes, in pk order (a nested block is part of the
    outermost one). A write may then lock further accounts' rows after its first journal (a
    liquidation's auto-deleveraging counterparties) without holding a house row meanwhile."""
    if _house_journals.get() is not None:
        yield
        return
    token = _house_journals.set({})
    try:
        yield
        moves = _house_pending()
    finally:
        _house_journals.reset(token)
    _house_balances_move(moves.items())


def _house_pending() -> dict[int, Decimal]:
    """House account id → what the block's journals still to move add to it; a journal whose
    savepoint was rolled back is gone, and its moves with it."""
    pending = _house_journals.get()
    if not pending:
        return {}
    booked = set(Journal.objects.filter(pk__in=list(pending)).values_list("pk", flat=True))
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for journal_id, moves in pending.items():
        if journal_id in booked:
            for ledger_account_id, amount in moves:
                totals[ledger_account_id] += amount
    return totals


def _house_balances_move(moves: Iterable[tuple[int, Decimal]]) -> None:
    """Add each amount to its house account's balance, one row after the other in pk order."""
    with connection.cursor() as cursor:
        for ledger_account_id, amount in sorted(moves):
            if amount:
                cursor.execute(
                    f"UPDATE {table(LedgerAccount)} SET balance = balance + %s WHERE id = %s",
                    [amount, ledger_account_id],
                )


def house_rows_lock(ids: Iterable[int]) -> None:
    """Lock now, in pk order, the house rows `ids` and those the block's journals moved so far:
    for a write that must read a house balance under lock mid-transaction (the insurance fund
    paying a deficit). `ids` are every house row the write may still move: after this it locks
    no other house row and no other account's row. FOR NO KEY UPDATE, the lock a balance update
    takes: FOR UPDATE would also wait for the foreign-key checks other transactions run on these
    rows at their commit."""
    if not connection.features.has_select_for_no_key_update:
        return  # SQLite locks the whole database instead
    locked = sorted({*ids, *_house_pending()})
    execute(
        f"SELECT id FROM {table(LedgerAccount)} WHERE id IN ({', '.join(['%s'] * len(locked))}) "
        "ORDER BY id FOR NO KEY UPDATE",
        locked,
    )


def house_balance(ledger_account_id: int) -> Decimal:
    """A house account's balance as this transaction leaves it: its row's, and what the
    journals of the `house_rows_last` block still have to move on it."""
    balance = LedgerAccount.objects.values_list("balance", flat=True).get(pk=ledger_account_id)
    return balance + _house_pending().get(ledger_account_id, Decimal(0))


def margin_account_open(
    *, owner, name: str = "Main", credit_tier: str = "standard"
) -> MarginAccount:
    """A new margin account for `owner` (a user may hold several, one per name). From the
    second on, every account of the owner is marked `shares_owner`; the owner's row is locked
    first, so two accounts opened at once both see the other."""
    tier = CreditTier.objects.filter(code=credit_tier).first()
    if tier is None:
        raise ApplicationError(
            f"Unknown credit tier {credit_tier!r}.", {"credit_tier": "unknown tier"}
        )
    with transaction.atomic():
        get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk).first()
        owned = MarginAccount.objects.filter(owner=owner)
        if owned.filter(name=name).exists():
            raise ApplicationError(
                f"You already have an account named {name!r}.", {"name": "taken"}
            )
        shares = owned.exists()
        if shares:
            owned.filter(shares_owner=False).update(shares_owner=True)
        return MarginAccount.objects.create(
            owner=owner, name=name, credit_tier=tier, shares_owner=shares
        )
