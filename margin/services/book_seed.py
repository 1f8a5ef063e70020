"""A realistic book at scale for benchmarks and load tests (`manage.py seed_book`) and for the
demo (`seed_demo` seeds a few thousand accounts under `make run`).

Rows are generated with NumPy and bulk-loaded in one transaction, through the ledger's rules:
every journal balances per asset and every balance is the sum of its entries. On PostgreSQL
rows go in with COPY and the deferred trigger checks each journal at commit; on SQLite (the
embedded demo) the same rows go in with executemany and the journals are summed before commit.
Per account, one journal of opening balances: its collateral deposited from the outside
world, its isolated positions' margin, and the opening fills' taker fees paid to fee income.
Positions were opened at an entry price away from today's mark, so accounts carry unrealized
PnL; a few are leveraged close to liquidation. A share of the positions may be options on the
listed BTC and ETH series (cross only, as venues have them): their premium is booked as a fill
books it (`margin.services.positions`): a long pays it to the market account, a short receives
it on its wallet; the fee is Deribit's option fee.

Book users are named `book-NNNNNN` and have no password: `book_reset` finds them by that name.
"""

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal, localcontext

import numpy as np
from django.apps import apps
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.models import User
from margin.db import execute, rows, table
from margin.errors import ApplicationError
from margin.models import (
    CreditTier,
    Entry,
    Fill,
    FundingPayment,
    Journal,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
    MarginMode,
    Position,
)
from margin.selectors.accounts import market_load
from margin.services.bulk import bulk_write, new_ids
from margin.services.ledger import QUANTUM
from margin.services.options_listing import options_listing_ensure
from margin.services.positions import OPTION_FEE_PREMIUM_CAP
from margin.services.reference import book_reference_ensure

BOOK_USER_PREFIX = "book-"
CENT = Decimal("0.01")
# Credit tiers, collateral assets (besides USDT) and how likely each is; instrument popularity.
TIER_SHARES = {"standard": 0.70, "vip": 0.20, "institutional": 0.05, "restricted": 0.05}
COLLATERAL_SHARES = {"BTC": 0.45, "ETH": 0.35, "USDC": 0.25, "SOL": 0.15, "BNB": 0.05}
POPULARITY = {"BTCUSDT": 8, "ETHUSDT": 6, "SOLUSDT": 4, "BTCUSDT_261225": 2, "ETHUSDT_261225": 1}
ISOLATED_SHARE = 0.2
NEAR_LIQUIDATION_SHARE = 0.03
# The highest own ratio (MM ÷ equity) a seeded isolated position starts at: below the warning
# level, so the accounts at risk are the NEAR_LIQUIDATION_SHARE leveraged cross accounts.
SURVIVOR_RATIO = 0.45
FEE_ALLOWANCE = 0.001  # share of notional: the opening fee an isolated margin pays (taker rate)
MIN_NOTIONAL = 10.0  # USD, as venues' minimum order: keeps every fee and margin above zero


@dataclass(frozen=True)
class BookSeeded:
    accounts: int
    positions: int
    journals: int
    entries: int
    seconds: float


def _copy(model: type[Model], columns: list[str], lines: list[str]) -> None:
    """COPY tab-separated `lines` (PostgreSQL's text format) into `model`'s table."""
    if connection.vendor != "postgresql":
        _insert_text(model, columns, lines)
        return
    statement = f"COPY {table(model)} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for start in range(0, len(lines), 50_000):
            copy.write("\n".join(lines[start : start + 50_000]) + "\n")


def _insert_text(model: type[Model], columns: list[str], lines: list[str]) -> None:
    """The same rows as `_copy` for SQLite: each text value read by its field (`t`/`f`,
    ISO dates, decimal strings, `\\N` for NULL) and inserted with executemany."""
    by_column = {field.column: field for field in model._meta.concrete_fields}
    fields = [by_column[column] for column in columns]

    def value(field, text: str):
        if text == "\\N":
            return None
        return field.get_db_prep_value(field.to_python(text), connection)

    bulk_write(
        model,
        columns,
        [
            tuple(value(field, text) for field, text in zip(fields, line.split("\t"), strict=True))
            for line in lines
        ],
    )


def _reserve_ids(model: type[Model], count: int) -> int:
    """The first of `count` consecutive ids taken from the table's sequence (the table is
    locked by the caller, so no one else draws from it meanwhile; SQLite lets one writer at a
    time in, so there the ids above the largest are free)."""
    if connection.vendor != "postgresql":
        return new_ids(model, max(count, 1))[0]
    sequence = f"pg_get_serial_sequence('{table(model)}', 'id')"
    first = rows(f"SELECT nextval({sequence})")[0][0]
    if count > 1:
        rows(f"SELECT setval({sequence}, %s)", [first + count - 1])
    return first


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_DOWN)


def book_seed(
    *,
    accounts: int,
    positions: int,
    seed: int = 7,
    option_share: float = 0.0,
    say: Callable[[str], None] = print,
) -> BookSeeded:
    """Seed `accounts` margin accounts (one book user each) holding `positions` positions,
    `option_share` of them options (the series are listed first if none is)."""
    started = time.monotonic()
    if not 0 <= option_share < 1:
        raise ApplicationError(f"The option share must be in [0, 1), got {option_share}.")
    version = book_reference_ensure()
    market = market_load()
    if option_share and not market["options"]:
        options_listing_ensure(now=timezone.now())
        market = market_load()
        if not market["options"]:
            raise ApplicationError(
                "No option series is listed and marked: set OPTIONS_LISTING_ENABLED."
            )
    terms = market["terms"]
    instruments = sorted(terms.brackets)
    option_symbols = sorted(market["options"]) if option_share else []
    n_options = round(positions * option_share)
    for kind, wanted, listed in (
        ("linear", positions - n_options, instruments),
        ("option", n_options, option_symbols),
    ):
        if wanted > accounts * len(listed):
            raise ApplicationError(
                f"At most {accounts * len(listed)} {kind} positions fit {accounts} accounts "
                f"(one per account and instrument)."
            )
    if User.objects.filter(username__startswith=BOOK_USER_PREFIX).exists():
        raise ApplicationError("A book is already seeded: pass --reset to replace it.")
    rng = np.random.default_rng(seed)
    postgresql = connection.vendor == "postgresql"
    with transaction.atomic():
        locked = (User, MarginAccount, Position, LedgerAccount, Journal, Entry, Fill)
        if postgresql:
            tables = ", ".join(table(m) for m in locked)
            execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
            foreign_keys = _foreign_keys_drop(locked)
        plan = _generate(rng, accounts, positions - n_options, instruments, market)
        if n_options:
            plan = _with_options(rng, plan, n_options, option_symbols, market)
        say(f"generated in {time.monotonic() - started:.1f} s; loading")
        with localcontext(prec=60):  # sums of 18-decimal amounts stay exact
            counts = _load(plan, market, version.taker_fee_rate)
        if postgresql:
            # Fresh statistics for the foreign keys' validation and the balance check.
            for model in locked:
                execute(f"ANALYZE {table(model)}")
            say(f"loaded in {time.monotonic() - started:.1f} s; validating foreign keys")
            _foreign_keys_restore(foreign_keys)
        say(f"ready in {time.monotonic() - started:.1f} s; checking journals at commit")
    return BookSeeded(accounts, positions, counts[0], counts[1], time.monotonic() - started)


def _foreign_keys_drop(models) -> list[tuple[str, str, str]]:
    """Drop the foreign keys of the tables the seed loads, for `_foreign_keys_restore` to put
    back once the rows are in: PostgreSQL checks a deferred foreign key once per row at commit
    (≈ 5 million queries for 100,000 accounts, half the seed's time), and a foreign key added
    to a filled table checks every row in one join. Transactional: a failed seed leaves them
    as they were. The tables are locked ACCESS EXCLUSIVE by then (a foreign key's DDL takes
    that lock; taking it first leaves no lock to upgrade and no deadlock with a reader)."""
    # PostgreSQL refuses to alter a table with deferred checks pending (rows the caller's
    # transaction wrote before the seed, the demo's own accounts): check them now.
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    execute("SET CONSTRAINTS ALL DEFERRED")  # every deferrable constraint is initially deferred
    dropped = []
    for model in models:
        for name, definition in rows(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
            [table(model)],
        ):
            execute(f'ALTER TABLE {table(model)} DROP CONSTRAINT "{name}"')
            dropped.append((table(model), name, definition))
    return dropped


def _foreign_keys_restore(dropped: list[tuple[str, str, str]]) -> None:
    """Add back each dropped foreign key as it was: PostgreSQL validates every row on adding
    it, so a seeded row pointing nowhere fails the seed."""
    for table_name, name, definition in dropped:
        execute(f'ALTER TABLE {table_name} ADD CONSTRAINT "{name}" {definition}')


def _journals_check(entry_rows: list[tuple[int, int, int, Decimal]]) -> None:
    """SQLite has no deferred trigger (and stores decimals as floats): the planned entries are
    summed per journal and asset here, in Decimal, before any is written."""
    sums: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for journal, _, asset, amount in entry_rows:
        sums[journal, asset] += amount
    unbalanced = sorted(key for key, total in sums.items() if total)
    if unbalanced:
        journal, asset = unbalanced[0]
        raise ApplicationError(f"Seeded journal {journal} does not balance in asset {asset}.")


@dataclass(frozen=True)
class _Plan:
    tiers: np.ndarray  # per account: credit tier code index
    equity: np.ndarray  # per account: USD equity to fund
    usdt_share: np.ndarray  # per account: share of equity held in USDT
    extra_assets: list[list[tuple[str, float]]]  # per account: (asset, share of equity)
    pos_account: np.ndarray
    pos_instrument: np.ndarray  # index into the sorted instruments
    pos_side: np.ndarray
    pos_notional: np.ndarray
    pos_entry_move: np.ndarray  # entry = mark × (1 + move)
    pos_leverage: np.ndarray
    pos_isolated: np.ndarray
    pos_isolated_factor: np.ndarray  # isolated margin = initial margin × factor
    instruments: list[str]


def _generate(rng, accounts: int, positions: int, instruments: list[str], market) -> _Plan:
    weights = np.array([POPULARITY.get(symbol, 1.5) for symbol in instruments], dtype=float)
    pos_account, pos_instrument = _distinct_pairs(rng, accounts, positions, weights)
    tier_codes = list(TIER_SHARES)
    tiers = rng.choice(len(tier_codes), size=accounts, p=list(TIER_SHARES.values()))
    equity = np.clip(rng.lognormal(np.log(20_000), 1.3, size=accounts), 500, 5_000_000)
    risky = rng.random(accounts) < NEAR_LIQUIDATION_SHARE
    leverage_target = np.where(risky, rng.uniform(12, 30, accounts), rng.uniform(0.5, 6, accounts))
    # Each account's gross notional split over its positions at random.
    shares = rng.gamma(1.0, size=positions)
    per_account = np.bincount(pos_account, weights=shares, minlength=accounts)
    pos_notional = shares / per_account[pos_account] * (equity * leverage_target)[pos_account]
    pos_notional = np.maximum(pos_notional, MIN_NOTIONAL)
    pos_side = rng.choice([-1, 1], size=positions)
    move = rng.normal(0, 0.03, size=positions)
    # Near-liquidation accounts opened at prices the market has since moved against.
    move = np.where(
        risky[pos_account], pos_side * np.abs(rng.normal(0.012, 0.004, positions)), move
    )
    leverage = rng.choice([3, 5, 10, 20, 25, 50], size=positions).astype(float)
    max_leverage, mmr = _bracket_terms(pos_instrument, pos_notional, instruments, market)
    pos_leverage = np.minimum(leverage, max_leverage)
    pos_isolated = (rng.random(positions) < ISOLATED_SHARE) & ~risky[pos_account]
    # Isolated margin = initial margin × factor, at least enough for the survivor ratio below
    # (a 50× position in a bracket of 1 % MMR cannot start healthy on its bare initial margin).
    pos_isolated_factor = np.maximum(
        rng.uniform(1.1, 2.0, size=positions),
        1.2 * pos_leverage * (mmr / SURVIVOR_RATIO + FEE_ALLOWANCE),
    )
    move = _survivor_moves(move, pos_side, pos_isolated, pos_isolated_factor / pos_leverage, mmr)
    extra = []
    names = list(COLLATERAL_SHARES)
    held = rng.random((accounts, len(names))) < np.array(list(COLLATERAL_SHARES.values()))
    splits = rng.dirichlet(np.ones(len(names) + 1), size=accounts)
    usdt_share = np.where(held.any(axis=1), np.maximum(splits[:, 0], 0.2), 1.0)
    for a in range(accounts):
        rest = 1.0 - usdt_share[a]
        chosen = [n for n, h in zip(names, held[a], strict=True) if h]
        parts = splits[a, 1 : 1 + len(chosen)]
        extra.append(
            [(asset, rest * part / parts.sum()) for asset, part in zip(chosen, parts, strict=True)]
            if chosen
            else []
        )
    return _Plan(
        tiers=tiers,
        equity=equity,
        usdt_share=usdt_share,
        extra_assets=extra,
        pos_account=pos_account,
        pos_instrument=pos_instrument,
        pos_side=pos_side,
        pos_notional=pos_notional,
        pos_entry_move=move,
        pos_leverage=pos_leverage,
        pos_isolated=pos_isolated,
        pos_isolated_factor=pos_isolated_factor,
        instruments=instruments,
    )


def _distinct_pairs(rng, accounts: int, count: int, weights: np.ndarray) -> tuple:
    """`count` distinct (account, instrument) pairs, heavier instruments more often: the
    largest `count` Gumbel-perturbed log weights (weighted sampling without replacement)."""
    keys = np.log(weights)[None, :] + rng.gumbel(size=(accounts, len(weights)))
    flat = np.argpartition(keys.ravel(), -count)[-count:] if count else np.array([])
    flat = np.sort(flat).astype(np.int64)
    return flat // len(weights), flat % len(weights)


def _with_options(rng, plan: _Plan, count: int, symbols: list[str], market) -> _Plan:
    """The plan with `count` option positions added, on distinct (account, series) pairs, all
    in the cross pool: each holds contracts worth (on the forward) a share of its account's
    equity, long or short, bought at a premium away from today's mark. `pos_notional` is the
    premium paid (contracts × mark), so the loader's size (notional ÷ mark) is the contracts."""
    accounts = len(plan.equity)
    account, series = _distinct_pairs(rng, accounts, count, np.ones(len(symbols)))
    options = market["options"]
    forward = np.array([float(options[s].forward) for s in symbols])[series]
    mark = np.array([float(market["marks"][s]) for s in symbols])[series]
    contracts = plan.equity[account] * rng.uniform(0.05, 1.0, count) / forward
    return replace(
        plan,
        pos_account=np.concatenate([plan.pos_account, account]),
        pos_instrument=np.concatenate([plan.pos_instrument, series + len(plan.instruments)]),
        pos_side=np.concatenate([plan.pos_side, rng.choice([-1, 1], size=count)]),
        pos_notional=np.concatenate([plan.pos_notional, contracts * mark]),
        pos_entry_move=np.concatenate([plan.pos_entry_move, rng.normal(0, 0.05, size=count)]),
        pos_leverage=np.concatenate([plan.pos_leverage, np.ones(count)]),
        pos_isolated=np.concatenate([plan.pos_isolated, np.zeros(count, dtype=bool)]),
        pos_isolated_factor=np.concatenate([plan.pos_isolated_factor, np.ones(count)]),
        instruments=plan.instruments + symbols,
    )


def _bracket_terms(pos_instrument, notional, instruments: list[str], market) -> tuple:
    """Each position's bracket at its notional: the maximum leverage (its leverage may not
    exceed it) and the maintenance margin rate."""
    cap, mmr = np.empty(len(notional)), np.empty(len(notional))
    for n, symbol in enumerate(instruments):
        table = market["terms"].brackets[symbol].brackets
        floors = np.array([float(b.floor) for b in table])
        mine = pos_instrument == n
        bracket = np.searchsorted(floors, notional[mine], side="right") - 1
        cap[mine] = np.array([float(b.max_leverage) for b in table])[bracket]
        mmr[mine] = np.array([float(b.mmr) for b in table])[bracket]
    return cap, mmr


def _survivor_moves(move, side, isolated, margin_share, mmr) -> np.ndarray:
    """Entry moves of isolated positions as a live book has them: a position whose margin the
    market had eaten would have been liquidated already, so a book seeded with σ = 3 % moves
    at up to 50× would start with most of its isolated positions past their line (the tick then
    measures a mass liquidation, not a revaluation). Each isolated loss is squeezed (tanh, so
    the distribution keeps its shape) below the loss that would take the position's own ratio,
    MM ÷ (margin + uPnL), to SURVIVOR_RATIO; gains are left as drawn."""
    loss = side * move  # entry above the mark loses a long, below it a short (share of notional)
    room = np.maximum(margin_share - FEE_ALLOWANCE - mmr / SURVIVOR_RATIO, 0.0)
    squeezed = room * np.tanh(np.maximum(loss, 0.0) / np.maximum(room, 1e-12))
    return np.where(isolated & (loss > 0), side * squeezed, move)


def _load(plan: _Plan, market, fee_rate: Decimal) -> tuple[int, int]:
    """COPY the plan's users, accounts, positions, fills, ledger accounts, journals and entries;
    move the house balances by what their entries add up to. Returns (journals, entries)."""
    now = timezone.now().isoformat()
    n_accounts, n_positions = len(plan.equity), len(plan.pos_account)
    tier_ids = dict(CreditTier.objects.values_list("code", "pk"))
    tier_codes = list(TIER_SHARES)
    asset_ids = market["asset_ids"]
    instrument_ids = market["instrument_ids"]
    settle = asset_ids[market["settlement"]]

    user0, account0 = _reserve_ids(User, n_accounts), _reserve_ids(MarginAccount, n_accounts)
    position0 = _reserve_ids(Position, n_positions)
    fill0 = _reserve_ids(Fill, n_positions)
    journal0 = _reserve_ids(Journal, n_accounts)  # journal n holds account n's opening balances
    _copy(
        User,
        [
            "id",
            "password",
            "is_superuser",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_staff",
            "is_active",
            "date_joined",
        ],
        [
            f"{user0 + a}\t!\tf\t{BOOK_USER_PREFIX}{a:06d}\t\t\t\tf\tt\t{now}"
            for a in range(n_accounts)
        ],
    )
    _copy(
        MarginAccount,
        ["id", "owner_id", "name", "credit_tier_id", "state", "reduce_only", "created_at"],
        [
            f"{account0 + a}\t{user0 + a}\tBook\t{tier_ids[tier_codes[t]]}\thealthy\tf\t{now}"
            for a, t in enumerate(plan.tiers.tolist())
        ],
    )

    # Positions and their opening fills (fee at the entry price, the taker rate in force).
    # Sizes and prices are rounded to 6 decimals in NumPy and exact Decimals from then on.
    mark = np.array([float(market["marks"][symbol]) for symbol in plan.instruments])
    mark = mark[plan.pos_instrument]
    entries = np.char.mod("%.6f", np.maximum(mark * (1 + plan.pos_entry_move), 1e-6)).tolist()
    sizes = np.char.mod("%.6f", np.maximum(plan.pos_notional / mark, 1e-6)).tolist()
    margins = np.char.mod(
        "%.2f", plan.pos_notional / plan.pos_leverage * plan.pos_isolated_factor
    ).tolist()
    instrument_of = [instrument_ids[symbol] for symbol in plan.instruments]
    # Plain Python values: formatting NumPy scalars one by one is several times slower.
    pos_account, pos_instrument = plan.pos_account.tolist(), plan.pos_instrument.tolist()
    pos_side, pos_isolated = plan.pos_side.tolist(), plan.pos_isolated.tolist()
    pos_leverage = plan.pos_leverage.astype(int).tolist()
    forwards = [
        market["options"][symbol].forward if symbol in market["options"] else None
        for symbol in plan.instruments
    ]
    position_lines, fill_lines = [], []
    fees: list[Decimal] = []
    isolated_margin: list[Decimal] = []
    premiums: list[Decimal] = []  # what each position's opening fill paid the market (+)
    for p in range(n_positions):
        entry, size = Decimal(entries[p]), Decimal(sizes[p])
        quantity = size if pos_side[p] > 0 else -size
        forward = forwards[pos_instrument[p]]
        if forward is None:
            fee = (size * entry * fee_rate).quantize(QUANTUM)
            premiums.append(Decimal(0))
        else:  # as `margin.services.positions._taker_fee` and the fill's premium
            fee = min(size * forward * fee_rate, size * entry * OPTION_FEE_PREMIUM_CAP)
            fee = fee.quantize(QUANTUM)
            premiums.append((quantity * entry).quantize(QUANTUM))
        fees.append(fee)
        isolated = pos_isolated[p]
        isolated_margin.append(Decimal(margins[p]) if isolated else Decimal(0))
        mode = MarginMode.ISOLATED if isolated else MarginMode.CROSS
        position_lines.append(
            f"{position0 + p}\t{account0 + pos_account[p]}\t"
            f"{instrument_of[pos_instrument[p]]}\t{quantity}\t{entry}\t"
            f"{pos_leverage[p]}\t{mode}\t0\t{now}\t{now}"
        )
        fill_lines.append(
            f"{fill0 + p}\t{position0 + p}\t{quantity}\t{entry}\t{fee}\t0\ttrade\t"
            f"{journal0 + pos_account[p]}\t{now}"
        )

    # Ledger: per account one journal of opening balances: each asset deposited from the outside
    # world, the isolated positions' margin, and the opening fills' fees to fee income (from the
    # wallet for cross positions, from the isolated margin for isolated ones), and the options'
    # premiums to the market (a long's deposited with its collateral, a short's on its wallet).
    by_account: dict[int, list[int]] = defaultdict(list)
    for p, a in enumerate(pos_account):
        by_account[a].append(p)
    ledger_rows: list[tuple] = []  # (kind, asset id, account index, position index, balance)
    entry_rows: list[tuple[int, int, int, Decimal]] = []  # (journal n, ledger n, asset, amount)
    house_moves: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    prices = market["prices"]
    for a in range(n_accounts):  # journal n is account n's
        mine = by_account.get(a, [])
        iso = [p for p in mine if pos_isolated[p]]
        cross_fees = sum((fees[p] for p in mine if not pos_isolated[p]), Decimal(0))
        fenced = sum((isolated_margin[p] for p in iso), Decimal(0))
        paid = sum((premiums[p] for p in mine if premiums[p] > 0), Decimal(0))
        received = -sum((premiums[p] for p in mine if premiums[p] < 0), Decimal(0))
        equity = Decimal(float(plan.equity[a]))
        usdt_left = _money(equity * Decimal(float(plan.usdt_share[a])))
        # (kept, deposited)
        holdings = {settle: (usdt_left + received, usdt_left + fenced + cross_fees + paid)}
        for symbol, share in plan.extra_assets[a]:
            amount = (equity * Decimal(share) / prices[symbol]).quantize(Decimal("1e-8"))
            if amount > 0:
                holdings[asset_ids[symbol]] = (amount, amount)
        for asset_id, (kept, deposited) in holdings.items():
            entry_rows.append((a, len(ledger_rows), asset_id, kept))
            ledger_rows.append((LedgerAccountKind.WALLET, asset_id, a, None, kept))
            entry_rows.append((a, -1, asset_id, -deposited))  # -1: the outside world
            house_moves[LedgerAccountKind.EXTERNAL, asset_id] -= deposited
        for p in iso:
            entry_rows.append((a, len(ledger_rows), settle, isolated_margin[p] - fees[p]))
            ledger_rows.append(
                (LedgerAccountKind.ISOLATED, settle, a, p, isolated_margin[p] - fees[p])
            )
        total_fees = sum((fees[p] for p in mine), Decimal(0))
        entry_rows.append((a, -2, settle, total_fees))  # -2: fee income
        house_moves[LedgerAccountKind.FEES, settle] += total_fees
        if paid or received:
            entry_rows.append((a, -3, settle, paid - received))  # -3: the market
            house_moves[LedgerAccountKind.MARKET, settle] += paid - received

    if connection.vendor != "postgresql":
        _journals_check(entry_rows)
    ledger0 = _reserve_ids(LedgerAccount, len(ledger_rows))
    house = {
        (kind, asset_id): pk
        for pk, kind, asset_id in LedgerAccount.objects.filter(
            margin_account__isnull=True
        ).values_list("pk", "kind", "asset_id")
    }
    _copy(
        LedgerAccount,
        ["id", "kind", "asset_id", "margin_account_id", "position_id", "balance"],
        [
            f"{ledger0 + n}\t{kind}\t{asset_id}\t{account0 + a}\t"
            f"{'\\N' if p is None else position0 + p}\t{balance}"
            for n, (kind, asset_id, a, p, balance) in enumerate(ledger_rows)
        ],
    )
    _copy(
        Journal,
        ["id", "kind", "margin_account_id", "created_at", "memo"],
        [
            f"{journal0 + a}\t{JournalKind.OPENING}\t{account0 + a}\t{now}\tbook seed"
            for a in range(n_accounts)
        ],
    )
    house_for = {
        -1: LedgerAccountKind.EXTERNAL,
        -2: LedgerAccountKind.FEES,
        -3: LedgerAccountKind.MARKET,
    }
    _copy(
        Entry,
        ["journal_id", "ledger_account_id", "asset_id", "amount"],
        [
            f"{journal0 + j}\t"
            f"{ledger0 + n if n >= 0 else house[house_for[n], asset_id]}\t{asset_id}\t{amount}"
            for j, n, asset_id, amount in entry_rows
            if amount
        ],
    )
    _copy(
        Position,
        [
            "id",
            "margin_account_id",
            "instrument_id",
            "quantity",
            "entry_price",
            "leverage",
            "margin_mode",
            "realized_pnl",
            "opened_at",
            "updated_at",
        ],
        position_lines,
    )
    _copy(
        Fill,
        [
            "id",
            "position_id",
            "quantity",
            "price",
            "fee",
            "realized_pnl",
            "reason",
            "journal_id",
            "created_at",
        ],
        fill_lines,
    )
    for (kind, asset_id), amount in sorted(house_moves.items(), key=lambda i: house[i[0]]):
        if connection.vendor == "postgresql":
            execute(
                f"UPDATE {table(LedgerAccount)} SET balance = balance + %s WHERE id = %s",
                [amount, house[kind, asset_id]],
            )
        else:
            # SQLite adds decimals as floats: the balance is set to the very SUM of its entries
            # that `check_ledger` compares it with, not to a float sum taken in another order.
            execute(
                f"UPDATE {table(LedgerAccount)} SET balance = (SELECT COALESCE(SUM(amount), 0) "
                f"FROM {table(Entry)} WHERE ledger_account_id = %s) WHERE id = %s",
                [house[kind, asset_id], house[kind, asset_id]],
            )
    return n_accounts, sum(1 for *_, amount in entry_rows if amount)


def _referencing(model: type[Model]) -> list[tuple[type[Model], str]]:
    """Every (model, column) whose foreign key points at `model`, many-to-many tables included."""
    found = []
    for other in apps.get_models(include_auto_created=True):
        for field in other._meta.concrete_fields:
            if field.is_relation and field.related_model is model:
                found.append((other, field.column))
    return found


def _delete_with_dependents(model: type[Model], where: str, seen: tuple = ()) -> int:
    """DELETE the rows of `model` matching `where` and, first, every row pointing at them."""
    deleted = 0
    for other, column in _referencing(model):
        if other in seen or other is model:
            continue
        deleted += _delete_with_dependents(
            other,
            f"{column} IN (SELECT id FROM {table(model)} WHERE {where})",
            (*seen, model),
        )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table(model)} WHERE {where}")
        return deleted + cursor.rowcount


def book_reset() -> int:
    """Remove every book user with all that hangs off them, in one transaction. The house
    accounts give back what the book's journals had moved on them, so the book still balances.
    The book's journals are those of its accounts and those without an account (a funding
    settlement's, one per revaluation shard) with a line on a book account; a journal of the
    latter kind that also pays an account outside the book is refused (it cannot be removed
    in part and still balance).

    Entries (and the audit trail) refuse DELETE by trigger: those triggers are disabled for
    this transaction only (ALTER TABLE is transactional in PostgreSQL); the book change log's
    (`margin.dbtriggers.book_change_log`) stay on."""
    if connection.vendor != "postgresql":
        raise ApplicationError("book_reset needs PostgreSQL.")
    users = f"starts_with(username, '{BOOK_USER_PREFIX}')"
    book_accounts = (
        f"SELECT a.id FROM {table(MarginAccount)} a JOIN {table(User)} u ON u.id = a.owner_id "
        f"WHERE starts_with(u.username, '{BOOK_USER_PREFIX}')"
    )
    shared_journals = (
        f"SELECT DISTINCT e.journal_id FROM {table(Entry)} e JOIN {table(Journal)} j "
        f"ON j.id = e.journal_id AND j.margin_account_id IS NULL JOIN {table(LedgerAccount)} la "
        f"ON la.id = e.ledger_account_id WHERE la.margin_account_id IN ({book_accounts})"
    )
    book_journals = (
        f"journal_id IN (SELECT id FROM {table(Journal)} WHERE margin_account_id IN "
        f"({book_accounts}) UNION ALL {shared_journals})"
    )
    with transaction.atomic():
        mixed = rows(
            f"SELECT e.journal_id FROM {table(Entry)} e JOIN {table(LedgerAccount)} la "
            f"ON la.id = e.ledger_account_id WHERE e.journal_id IN ({shared_journals}) "
            f"AND la.margin_account_id NOT IN ({book_accounts}) LIMIT 1"
        )
        if mixed:
            raise ApplicationError(
                f"Journal {mixed[0][0]} pays book accounts and others: the book cannot be "
                "removed from it alone."
            )
        execute(
            f"UPDATE {table(LedgerAccount)} la SET balance = la.balance - moved.total "
            f"FROM (SELECT ledger_account_id, SUM(amount) AS total FROM {table(Entry)} "
            f"WHERE {book_journals} GROUP BY ledger_account_id) moved "
            "WHERE la.id = moved.ledger_account_id AND la.margin_account_id IS NULL"
        )
        # Not the book change log's: the workers' book copies must see the accounts go.
        triggered = rows(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal "
            "AND p.proname <> c.relname || '_book_change'"
        )
        for name, trigger in triggered:
            execute(f'ALTER TABLE {name} DISABLE TRIGGER "{trigger}"')
        # The account-less journals first: deleting the accounts takes their own journals.
        shared = [journal for (journal,) in rows(shared_journals)]
        deleted = 0
        with connection.cursor() as cursor:
            for model, column in (
                (Entry, "journal_id"),
                (FundingPayment, "journal_id"),
                (Journal, "id"),
            ):
                cursor.execute(f"DELETE FROM {table(model)} WHERE {column} = ANY(%s)", [shared])
                deleted += cursor.rowcount
        deleted += _delete_with_dependents(User, users)
        for name, trigger in triggered:
            execute(f'ALTER TABLE {name} ENABLE TRIGGER "{trigger}"')
    return deleted
