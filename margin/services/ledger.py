"""Posting to the double-entry ledger: the one place that writes entries and balances.

Lock order (every service follows it, so two transactions never wait on each other in a
cycle): the idempotency record (an insert), the MarginAccount row, its positions (by pk), its
own ledger accounts (by pk), and last the house accounts, whose balances are updated in pk
order inside `journal_post`. House rows are shared by every account, so they are touched last
and held for the shortest time.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

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
    # In primary-key order: the house rows every account shares are locked here, last.
    for line in sorted(posted, key=lambda line: line.ledger_account_id):
        execute(
            f"UPDATE {table(LedgerAccount)} SET balance = balance + %s WHERE id = %s",
            [line.amount, line.ledger_account_id],
        )
    return journal


def margin_account_open(
    *, owner, name: str = "Main", credit_tier: str = "standard"
) -> MarginAccount:
    """A new margin account for `owner` (a user may hold several, one per name)."""
    tier = CreditTier.objects.filter(code=credit_tier).first()
    if tier is None:
        raise ApplicationError(
            f"Unknown credit tier {credit_tier!r}.", {"credit_tier": "unknown tier"}
        )
    if MarginAccount.objects.filter(owner=owner, name=name).exists():
        raise ApplicationError(f"You already have an account named {name!r}.", {"name": "taken"})
    return MarginAccount.objects.create(owner=owner, name=name, credit_tier=tier)
