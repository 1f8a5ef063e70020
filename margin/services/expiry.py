"""Dated futures and options at expiry (Binance delivery contracts, Deribit's cash-settled
options): holders are told a day of market time before; at expiry the contract stops trading
and every open position is closed at the settlement price, the time-weighted average of the
index over the last 30 minutes (market time) before delivery — an option at its intrinsic value
there, max(0, TWAP − K) for a call, max(0, K − TWAP) for a put, paid through the ledger; the
next quarterly is listed with the same brackets so a future is always live, and the option
terms are listed again (`margin.services.options_listing`).

In the revaluation tick it runs in two steps, as funding does (`services/funding.py`). The
dispatcher (`expiry_claim_due`) fixes each expired series' settlement price once (the
instrument row locked; trading stops) and lists what follows it; each shard then closes its own
accounts' positions of every settled series (`expiry_settle_accounts`) in its own transaction,
before it reads its book, so the tick values every account after its settlement. The close is
the trader's forced fill at the settlement value with no fee (`margin.engine.fills`: the
realized PnL of a future, an option's intrinsic value paid against its premium; an isolated
future's margin back to the wallet, the insurance fund covering it if negative), booked for the
whole shard at once: one settlement journal (a line per ledger account, the market's and the
insurance fund's), a settlement fill per position. A position closes once: it is left flat in
the same transaction, and a second settlement fill of a position is refused (a unique index),
so a shard run again, or the next tick after an abandoned one, closes only what is still open.
`expiry_run` does both steps for every account at once. Exact NUMERIC in set-based SQL on
PostgreSQL, the engine's Decimals in Python on SQLite.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from margin.db import decimal, execute, rows, table
from margin.engine.fills import fill_math, ledger_amount
from margin.engine.funding import SETTLEMENT_WINDOW, settlement_price
from margin.market.clock import real_duration
from margin.models import (
    Asset,
    AssetPriceHistory,
    Bracket,
    Entry,
    Fill,
    Instrument,
    Journal,
    JournalKind,
    LedgerAccount,
    LedgerAccountKind,
    MarginAccount,
    MarginMode,
    MarkPrice,
    Notification,
    Position,
)
from margin.services.bulk import balances_add, bulk_write, new_ids
from margin.services.funding import ALL_ACCOUNTS
from margin.services.ledger import wallets_ensure, wallets_ensure_in_sql
from margin.services.options_listing import options_listing_ensure
from margin.services.writes import as_text

logger = logging.getLogger(__name__)

EXPIRY_NOTICE = timedelta(days=1)
SETTLEMENT_PRICE_QUANTUM = Decimal("1e-8")
# Binance quarterly contracts deliver on the last Friday of March, June, September and
# December at 08:00 UTC.
QUARTER_MONTHS = (3, 6, 9, 12)
DELIVERY_HOUR = 8
DATED_KINDS = (Instrument.Kind.FUTURE, Instrument.Kind.OPTION)


@dataclass
class ExpiryRun:
    notified: int = 0
    settled: list[str] = field(default_factory=list)
    closed: int = 0
    listed: list[str] = field(default_factory=list)


def last_friday(year: int, month: int) -> datetime:
    first_of_next = datetime(year + month // 12, month % 12 + 1, 1, DELIVERY_HOUR, tzinfo=UTC)
    day = first_of_next - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 4) % 7)


def next_quarterly_expiry(after: datetime) -> datetime:
    """The first quarterly delivery time strictly after `after`."""
    year = after.year
    while True:
        for month in QUARTER_MONTHS:
            candidate = last_friday(year, month)
            if candidate > after:
                return candidate
        year += 1


def settlement_price_of(instrument: Instrument) -> Decimal:
    """The index TWAP over the last 30 minutes of market time before the expiry."""
    window = real_duration(SETTLEMENT_WINDOW)
    start = instrument.expiry - window
    history = AssetPriceHistory.objects.filter(asset_id=instrument.underlying_id)
    samples = list(
        history.filter(at__gt=start, at__lte=instrument.expiry).values_list("at", "price")
    )
    before = history.filter(at__lte=start).order_by("-at").values_list("at", "price").first()
    if before:
        samples.append(before)
    if not samples:
        mark = MarkPrice.objects.get(instrument=instrument)
        return mark.index_price
    # Published, like a fill's price, to 8 decimals: a TWAP's division has no end, and a
    # realized PnL on all of it would not survive the embedded demo's floating-point columns.
    return settlement_price(samples, until=instrument.expiry, window=window).quantize(
        SETTLEMENT_PRICE_QUANTUM, rounding=ROUND_HALF_EVEN
    )


def _notify_holders(*, now: datetime) -> int:
    """One notification per account holding a future or an option that expires within a day
    of market time."""
    notice = real_duration(EXPIRY_NOTICE)
    sent = 0
    due = Instrument.objects.filter(
        kind__in=DATED_KINDS,
        is_active=True,
        expiry_notified_at__isnull=True,
        expiry__lte=now + notice,
    )
    for instrument in due.order_by("pk"):
        with transaction.atomic():
            claimed = Instrument.objects.filter(
                pk=instrument.pk, expiry_notified_at__isnull=True
            ).update(expiry_notified_at=now)
            if not claimed:
                continue
            text = (
                f"{instrument.symbol} expires at {instrument.expiry:%Y-%m-%d %H:%M} UTC: "
                + (
                    "open positions will be cash-settled at their intrinsic value on the "
                    "average index price of its last 30 minutes."
                    if instrument.is_option
                    else "open positions will be settled at the average index price of "
                    "its last 30 minutes."
                )
                + " Close or roll your position before then to choose your price."
            )
            # One statement for every holder (a series may have thousands).
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table(Notification)} (user_id, account_id, kind, text, "
                    "created_at) SELECT a.owner_id, p.margin_account_id, %s, %s, %s "
                    f"FROM {table(Position)} p JOIN {table(MarginAccount)} a "
                    "ON a.id = p.margin_account_id WHERE p.instrument_id = %s "
                    "AND NOT p.quantity = 0 ORDER BY p.id",
                    [Notification.Kind.EXPIRY, text, timezone.now(), instrument.pk],
                )
                sent += cursor.rowcount
    return sent


def _fix_settlement_price(instrument: Instrument, *, now: datetime) -> bool:
    with transaction.atomic():
        locked = Instrument.objects.select_for_update().get(pk=instrument.pk)
        if locked.settled_at is not None:
            return False
        locked.settlement_price = settlement_price_of(locked)
        locked.settled_at = now
        locked.is_active = False
        locked.save(update_fields=["settlement_price", "settled_at", "is_active"])
    logger.info("%s settled at %s", locked.symbol, locked.settlement_price)
    return True


def settlement_value(instrument: Instrument) -> Decimal:
    """What one contract settles at: a future's settlement price, an option's intrinsic value
    on it."""
    price = instrument.settlement_price
    if not instrument.is_option:
        return price
    if instrument.option_type == Instrument.OptionType.CALL:
        return max(Decimal(0), price - instrument.strike)
    return max(Decimal(0), instrument.strike - price)


@dataclass(frozen=True)
class ExpirySettled:
    """What one settlement closed: positions, over how many series, in how many journals."""

    positions: int = 0
    series: int = 0
    journals: int = 0


@dataclass(frozen=True)
class _Due:
    """An open position of a settled series, and what its close at the settlement books (the
    trader's forced fill at the settlement value, fee 0: `position_fill`'s figures)."""

    position_id: int
    account_id: int
    instrument_id: int
    quantity: Decimal
    price: Decimal
    realized_pnl: Decimal
    cash: Decimal  # what the market pays: the realized PnL, an option's intrinsic value
    isolated: bool
    isolated_account_id: int | None  # its isolated margin's ledger account
    isolated_margin: Decimal
    insurance_cover: Decimal  # what the fund pays in for an isolated margin left negative

    @property
    def booked(self) -> bool:
        return bool(self.cash or self.isolated_margin)


def _due_close(
    position_id, account_id, instrument_id, quantity, entry_price, value, isolated_account
) -> _Due:
    """The close of a position at its series' settlement value, on the engine's Decimals: a
    future realizes its PnL at the price; an option is paid −delta × value, its realized PnL
    the intrinsic value less its entry premium. An isolated position's margin goes back to the
    wallet with the cash, the insurance fund making it whole if it went negative."""
    math = fill_math(quantity=quantity, entry_price=entry_price, delta=-quantity, price=value.price)
    cash = ledger_amount(quantity * value.price) if value.is_option else math.realized_pnl
    isolated = isolated_account is not None
    isolated_account_id, margin = isolated_account or (None, Decimal(0))
    cover = max(Decimal(0), -(margin + cash)) if isolated else Decimal(0)
    return _Due(
        position_id=position_id,
        account_id=account_id,
        instrument_id=instrument_id,
        quantity=quantity,
        price=value.price,
        realized_pnl=math.realized_pnl,
        cash=cash,
        isolated=isolated,
        isolated_account_id=isolated_account_id,
        isolated_margin=margin,
        insurance_cover=cover,
    )


@dataclass(frozen=True)
class _Value:
    symbol: str
    price: Decimal  # what one contract settles at (`settlement_value`)
    is_option: bool


def _values(instrument_ids) -> dict[int, _Value]:
    return {
        instrument.pk: _Value(instrument.symbol, settlement_value(instrument), instrument.is_option)
        for instrument in Instrument.objects.filter(pk__in=instrument_ids).order_by("pk")
    }


def _memo(values: dict[int, _Value]) -> str:
    settled = ", ".join(f"{v.symbol} at {as_text(v.price)}" for v in values.values())
    return f"settlement at expiry: {settled}"[:200]


@transaction.atomic
def expiry_settle_accounts(*, first_account_id: int, last_account_id: int, now) -> ExpirySettled:
    """Close every open position of a settled series held by the accounts with ids in [first,
    last] (a revaluation shard's) at the series' settlement value: one journal for them all
    (a line per ledger account paid or paying, and the market's and insurance fund's lines),
    a settlement fill per position. A position closes once: it is left flat, its row locked
    meanwhile, and a second settlement fill of it is refused (a unique index)."""
    started = time.perf_counter()
    accounts = (first_account_id, last_account_id)
    held = _held_positions(accounts)
    if not held:
        return ExpirySettled()
    values = _values({instrument_id for _, instrument_id in held})
    settlement = Asset.objects.get(is_settlement=True)
    post = _post_in_sql if connection.vendor == "postgresql" else _post_in_python
    journals = post(
        values,
        accounts=accounts,
        settlement_id=settlement.pk,
        market=_house(LedgerAccountKind.MARKET, settlement),
        insurance=_house(LedgerAccountKind.INSURANCE, settlement),
        now=now,
    )
    logger.info(
        "expiry settled for accounts %s-%s: %s positions of %s series in %.2f s",
        *accounts,
        len(held),
        len(values),
        time.perf_counter() - started,
    )
    return ExpirySettled(positions=len(held), series=len(values), journals=journals)


def _held_positions(accounts: tuple[int, int]) -> list[tuple[int, int]]:
    """(position, instrument) of every open position of a settled dated series among the
    accounts, their rows locked in id order (the trader's writes lock positions in that order
    too, after their account's row, which this does not take)."""
    held = (
        Position.objects.filter(
            margin_account_id__gte=accounts[0],
            margin_account_id__lte=accounts[1],
            instrument__kind__in=DATED_KINDS,
            instrument__settled_at__isnull=False,
        )
        .exclude(quantity=0)
        .order_by("pk")
    )
    if connection.features.has_select_for_no_key_update:
        held = held.select_for_update(no_key=True, of=("self",))
    return list(held.values_list("pk", "instrument_id"))


def _house(kind: str, settlement: Asset) -> int:
    return LedgerAccount.objects.get(kind=kind, asset=settlement, margin_account=None).pk


def _post_in_python(
    values: dict[int, _Value],
    *,
    accounts: tuple[int, int],
    settlement_id: int,
    market: int,
    insurance: int,
    now,
) -> int:
    """SQLite (the embedded demo's small book): each close worked out with the trader's fill
    rules (`margin.engine.fills`) and the rows written in bulk."""
    positions = list(
        Position.objects.filter(
            margin_account_id__gte=accounts[0],
            margin_account_id__lte=accounts[1],
            instrument_id__in=list(values),
        )
        .exclude(quantity=0)
        .order_by("instrument_id", "pk")
        .values_list(
            "pk", "margin_account_id", "instrument_id", "quantity", "entry_price", "margin_mode"
        )
    )
    isolated = {
        position_id: (pk, decimal(balance))
        for pk, position_id, balance in LedgerAccount.objects.filter(
            kind=LedgerAccountKind.ISOLATED,
            asset_id=settlement_id,
            position_id__in=[p[0] for p in positions if p[5] == MarginMode.ISOLATED],
        ).values_list("pk", "position_id", "balance")
    }
    due = [
        _due_close(
            position_id,
            account_id,
            instrument_id,
            decimal(quantity),
            decimal(entry),
            values[instrument_id],
            isolated.get(position_id, (None, Decimal(0))) if mode == MarginMode.ISOLATED else None,
        )
        for position_id, account_id, instrument_id, quantity, entry, mode in positions
    ]
    wallet_of = wallets_ensure(
        margin_account_ids=[d.account_id for d in due], asset_id=settlement_id
    )
    lines: dict[int, Decimal] = defaultdict(Decimal)
    for d in due:
        lines[wallet_of[d.account_id]] += d.cash + d.isolated_margin + d.insurance_cover
        if d.isolated_account_id is not None:
            lines[d.isolated_account_id] -= d.isolated_margin
        lines[market] -= d.cash
        lines[insurance] -= d.insurance_cover
    lines = {ledger: amount for ledger, amount in lines.items() if amount}
    journal = None
    if lines:
        (journal,) = new_ids(Journal, 1)
        bulk_write(
            Journal,
            ["id", "kind", "margin_account_id", "created_at", "memo"],
            [(journal, JournalKind.SETTLEMENT, None, now, _memo(values))],
        )
        bulk_write(
            Entry,
            ["journal_id", "ledger_account_id", "asset_id", "amount"],
            [(journal, ledger, settlement_id, amount) for ledger, amount in sorted(lines.items())],
        )
    bulk_write(
        Fill,
        [
            "position_id",
            "quantity",
            "price",
            "fee",
            "realized_pnl",
            "reason",
            "journal_id",
            "created_at",
        ],
        [
            (
                d.position_id,
                -d.quantity,
                d.price,
                0,
                d.realized_pnl,
                Fill.Reason.SETTLEMENT,
                journal if d.booked else None,
                now,
            )
            for d in due
        ],
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table(Position)} SET quantity = 0, entry_price = 0, "
            "realized_pnl = realized_pnl + %s, updated_at = %s WHERE id = %s",
            [(d.realized_pnl, now, d.position_id) for d in due],
        )
    balances_add(lines)
    return 1 if lines else 0


def _half_even(column: str) -> str:
    """SQL for `column` rounded to the ledger's 18 decimals half to even, as `ledger_amount`
    rounds (PostgreSQL's round() takes a tie away from zero)."""
    cut = f"trunc({column}, 18)"
    return (
        f"CASE WHEN abs({column} - {cut}) = 5e-19 AND mod({cut} * 1e18, 2) = 0 "
        f"THEN {cut} ELSE round({column}, 18) END"
    )


def _post_in_sql(
    values: dict[int, _Value],
    *,
    accounts: tuple[int, int],
    settlement_id: int,
    market: int,
    insurance: int,
    now,
) -> int:
    """PostgreSQL: set-based in exact NUMERIC, the trader's fill rules (`_due_close`) in SQL,
    no row through Python; constraints checked per statement and the house rows (the market's,
    the insurance fund's) moved last, as funding's settlement does (`services/funding.py`)."""
    first, last = accounts
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    execute("SET LOCAL work_mem = '64MB'")
    series = ", ".join(["(%s::bigint, %s::numeric, %s::boolean)"] * len(values))
    execute(
        "CREATE TEMP TABLE expiry_due ON COMMIT DROP AS "
        "SELECT c.*, CASE WHEN c.isolated "
        "THEN greatest(0, -(c.isolated_margin + c.cash)) ELSE 0 END AS insurance_cover "
        "FROM (SELECT s.position_id, s.account_id, s.instrument_id, s.quantity, s.price, "
        "s.isolated, s.isolated_account_id, s.isolated_margin, "
        f"{_half_even('s.realized')} AS realized_pnl, "
        f"CASE WHEN s.is_option THEN {_half_even('s.premium')} "
        f"ELSE {_half_even('s.realized')} END AS cash "
        "FROM (SELECT p.id AS position_id, p.margin_account_id AS account_id, p.instrument_id, "
        "p.quantity, v.price, v.is_option, p.margin_mode = %s AS isolated, "
        "la.id AS isolated_account_id, "
        "COALESCE(la.balance, 0) AS isolated_margin, "
        "p.quantity * (v.price - p.entry_price) AS realized, p.quantity * v.price AS premium "
        f"FROM {table(Position)} p JOIN (VALUES {series}) v (instrument_id, price, is_option) "
        "ON v.instrument_id = p.instrument_id "
        f"LEFT JOIN {table(LedgerAccount)} la ON p.margin_mode = %s AND la.position_id = p.id "
        "AND la.kind = %s AND la.asset_id = %s AND la.margin_account_id BETWEEN %s AND %s "
        "WHERE p.margin_account_id BETWEEN %s AND %s AND p.quantity <> 0) s) c",
        [
            MarginMode.ISOLATED,
            *(x for pk, v in values.items() for x in (pk, v.price, v.is_option)),
            MarginMode.ISOLATED,
            LedgerAccountKind.ISOLATED,
            settlement_id,
            first,
            last,
            first,
            last,
        ],
    )
    wallets_ensure_in_sql(
        holders="SELECT account_id FROM expiry_due", asset_id=settlement_id, accounts=accounts
    )
    # The lines on the accounts' own ledger accounts: the wallet takes the cash (and an
    # isolated position's margin, made whole by the fund), the isolated account gives its
    # margin back; then the market's and the insurance fund's.
    execute(
        "CREATE TEMP TABLE expiry_line ON COMMIT DROP AS "
        "SELECT ledger_id, sum(amount) AS amount FROM ("
        "SELECT w.id AS ledger_id, d.cash + d.isolated_margin + d.insurance_cover AS amount "
        f"FROM expiry_due d JOIN {table(LedgerAccount)} w "
        "ON w.margin_account_id BETWEEN %s AND %s AND w.margin_account_id = d.account_id "
        "AND w.kind = %s AND w.asset_id = %s AND w.position_id IS NULL "
        "UNION ALL SELECT isolated_account_id, -isolated_margin FROM expiry_due "
        "WHERE isolated_account_id IS NOT NULL "
        "UNION ALL SELECT %s, -cash FROM expiry_due "
        "UNION ALL SELECT %s, -insurance_cover FROM expiry_due) l "
        "GROUP BY ledger_id HAVING sum(amount) <> 0",
        [first, last, LedgerAccountKind.WALLET, settlement_id, market, insurance],
    )
    journal = None
    if rows("SELECT EXISTS (SELECT 1 FROM expiry_line)")[0][0]:
        journal = rows(
            f"INSERT INTO {table(Journal)} (kind, created_at, memo) VALUES (%s, %s, %s) "
            "RETURNING id",
            [JournalKind.SETTLEMENT, now, _memo(values)],
        )[0][0]
        execute(
            f"SELECT la.id FROM {table(LedgerAccount)} la JOIN expiry_line l "
            "ON l.ledger_id = la.id WHERE la.margin_account_id BETWEEN %s AND %s "
            "ORDER BY la.id FOR NO KEY UPDATE OF la",
            [first, last],
        )
        # One statement for every line: the ledger's balance check runs after it.
        execute(
            f"INSERT INTO {table(Entry)} (journal_id, ledger_account_id, asset_id, amount) "
            "SELECT %s, ledger_id, %s, amount FROM expiry_line ORDER BY ledger_id",
            [journal, settlement_id],
        )
    # The fills in the order the positions closed one by one (series, then position).
    execute(
        f"INSERT INTO {table(Fill)} (position_id, quantity, price, fee, realized_pnl, reason, "
        "journal_id, created_at) SELECT position_id, -quantity, price, 0, realized_pnl, %s, "
        "CASE WHEN cash <> 0 OR isolated_margin <> 0 THEN %s::bigint END, %s "
        "FROM expiry_due ORDER BY instrument_id, position_id",
        [Fill.Reason.SETTLEMENT, journal, now],
    )
    execute(
        f"UPDATE {table(Position)} p SET quantity = 0, entry_price = 0, "
        "realized_pnl = p.realized_pnl + d.realized_pnl, updated_at = %s FROM expiry_due d "
        "WHERE p.id = d.position_id AND p.margin_account_id BETWEEN %s AND %s",
        [now, first, last],
    )
    if journal is not None:
        execute(
            f"UPDATE {table(LedgerAccount)} la SET balance = la.balance + l.amount "
            "FROM expiry_line l WHERE la.id = l.ledger_id "
            "AND la.margin_account_id BETWEEN %s AND %s",
            [first, last],
        )
        # FOR NO KEY UPDATE, the lock the balance update takes: FOR UPDATE would wait on the
        # key-share locks another shard's entries hold on these rows (their foreign-key
        # checks) while that shard waits on ours.
        execute(
            f"SELECT id FROM {table(LedgerAccount)} WHERE id IN (%s, %s) ORDER BY id "
            "FOR NO KEY UPDATE",
            [market, insurance],
        )
        execute(
            f"UPDATE {table(LedgerAccount)} la SET balance = la.balance + l.amount "
            "FROM expiry_line l WHERE la.id = l.ledger_id AND la.id IN (%s, %s)",
            [market, insurance],
        )
    execute("DROP TABLE expiry_due, expiry_line")
    execute("SET CONSTRAINTS ALL DEFERRED")  # every deferrable constraint is initially deferred
    return 0 if journal is None else 1


def _list_next_quarterly(expired: Instrument) -> str | None:
    """The next quarterly on the same underlying, with the expired one's brackets in every
    parameter version that has them; None when a later future is already live."""
    if Instrument.objects.filter(
        kind=Instrument.Kind.FUTURE,
        underlying_id=expired.underlying_id,
        is_active=True,
        expiry__gt=expired.expiry,
    ).exists():
        return None
    expiry = next_quarterly_expiry(expired.expiry)
    symbol = f"{expired.underlying.symbol}USDT_{expiry:%y%m%d}"
    while Instrument.objects.filter(symbol=symbol, is_active=False).exists():
        # a contract delivered early (a desk's or a test's expiry) already took the name
        expiry = next_quarterly_expiry(expiry)
        symbol = f"{expired.underlying.symbol}USDT_{expiry:%y%m%d}"
    listed, created = Instrument.objects.get_or_create(
        symbol=symbol,
        defaults={
            "kind": Instrument.Kind.FUTURE,
            "underlying_id": expired.underlying_id,
            "expiry": expiry,
        },
    )
    if created:
        _brackets_copy(expired, listed)
    return symbol


def _brackets_copy(source: Instrument, listed: Instrument) -> None:
    """A newly listed future takes the brackets of the contract it follows, in every version."""
    Bracket.objects.bulk_create(
        Bracket(
            version_id=b.version_id,
            instrument=listed,
            floor=b.floor,
            mmr=b.mmr,
            max_leverage=b.max_leverage,
        )
        for b in Bracket.objects.filter(instrument=source)
    )


def demo_future_ensure(*, now: datetime) -> str | None:
    """The demo market keeps a short-dated BTC future live, so that an expiry, its notice and
    its settlement happen within minutes of real time: when no live BTC future expires within
    twice DEMO_FUTURE_TERM_HOURS of market time, one is listed expiring that term from now,
    with the quarterly's brackets and its index as its first mark. None when one is live (or
    the demo future is off, or there is no quarterly to copy)."""
    if not (settings.DEMO_MARKET_ENABLED and settings.DEMO_FUTURE_ENABLED):
        return None
    term = real_duration(timedelta(hours=settings.DEMO_FUTURE_TERM_HOURS))
    live = Instrument.objects.filter(
        kind=Instrument.Kind.FUTURE, underlying__symbol="BTC", is_active=True, expiry__gt=now
    )
    if live.filter(expiry__lte=now + 2 * term).exists():
        return None
    template = live.select_related("underlying").order_by("-expiry").first()
    if template is None:
        return None
    expiry = (now + term).replace(second=0, microsecond=0) + timedelta(minutes=1)
    symbol = f"{template.underlying.symbol}USDT_{expiry:%y%m%d_%H%M}"
    with transaction.atomic():
        listed, created = Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={
                "kind": Instrument.Kind.FUTURE,
                "underlying_id": template.underlying_id,
                "expiry": expiry,
            },
        )
        if not created:
            return None
        _brackets_copy(template, listed)
        mark = MarkPrice.objects.filter(instrument=template).first()
        if mark is not None:
            MarkPrice.objects.create(
                instrument=listed,
                mark_price=mark.index_price,
                index_price=mark.index_price,
                updated_at=now,
            )
    logger.info("demo future %s listed, expiring at %s", symbol, expiry)
    return symbol


def expiry_claim_due(*, now: datetime) -> ExpiryRun:
    """The revaluation dispatcher's part: holders told, the settlement price of every dated
    series past its expiry fixed (trading stops), the next quarterly and the option terms
    listed. The shards then close the positions (`expiry_settle_accounts`)."""
    run = ExpiryRun(notified=_notify_holders(now=now))
    due = Instrument.objects.filter(kind__in=DATED_KINDS, settled_at__isnull=True, expiry__lte=now)
    for instrument in due.order_by("pk"):
        if _fix_settlement_price(instrument, now=now):
            run.settled.append(instrument.symbol)
    settled_futures = Instrument.objects.filter(
        symbol__in=run.settled, kind=Instrument.Kind.FUTURE
    ).values_list("symbol", flat=True)
    for symbol in settled_futures:
        with transaction.atomic():
            listed = _list_next_quarterly(
                Instrument.objects.select_related("underlying").get(symbol=symbol)
            )
        if listed:
            run.listed.append(listed)
    demo = demo_future_ensure(now=now)
    if demo:
        run.listed.append(demo)
    run.listed += options_listing_ensure(now=now)
    return run


def expiry_run(*, now: datetime) -> ExpiryRun:
    """Both steps at once, every account's positions closed in one settlement (tests, a
    scenario's step outside the tick)."""
    run = expiry_claim_due(now=now)
    run.closed = expiry_settle_accounts(
        first_account_id=ALL_ACCOUNTS[0], last_account_id=ALL_ACCOUNTS[1], now=now
    ).positions
    return run
