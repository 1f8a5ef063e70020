import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.models import User
from margin.engine.states import worst_ratio
from margin.engine.vector import revalue
from margin.models import (
    Fill,
    LedgerAccount,
    MarginAccount,
    MarginSnapshot,
    ParameterVersion,
    Position,
)
from margin.selectors.book import engine_book
from margin.selectors.ledger import ledger_differences
from margin.services.book_seed import NEAR_LIQUIDATION_SHARE, SURVIVOR_RATIO
from margin.services.demo_book import DEMO_INSURANCE_FUND
from margin.services.funding import funding_settle_due
from margin.services.prices import market_tick_run
from margin.services.reference import reference_data_ensure
from margin.services.revaluation import revaluation_tick_run
from tests.ledger.support import fund


def test_check_ledger_passes_on_a_sound_book_and_names_a_tampered_balance(account, capsys):
    # given a sound book
    fund(account, "USDT", "250")
    call_command("check_ledger")
    assert "0 differences" in capsys.readouterr().out
    # when a balance is changed behind the ledger's back
    wallet = LedgerAccount.objects.get(margin_account=account)
    LedgerAccount.objects.filter(pk=wallet.pk).update(balance=Decimal("260"))
    # then the command prints the difference and exits 1
    with pytest.raises(SystemExit) as exit_:
        call_command("check_ledger")
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert f"ledger account {wallet.pk} USDT: balance 260" in out
    assert "difference 10" in out


def test_seed_demo_gives_both_traders_funded_accounts_and_is_safe_to_rerun(db):
    # when
    call_command("seed_demo", book_accounts=0)
    counts = (MarginAccount.objects.count(), Position.objects.count(), Fill.objects.count())
    call_command("seed_demo", book_accounts=0)
    # then
    assert (MarginAccount.objects.count(), Position.objects.count(), Fill.objects.count()) == counts
    for username in ("trader", "trader2"):
        account = MarginAccount.objects.filter(owner__username=username).first()
        assert account.positions.exclude(quantity=0).exists()
        assert LedgerAccount.objects.filter(margin_account=account, balance__gt=0).count() >= 2
    assert Position.objects.filter(margin_mode="isolated").exclude(quantity=0).exists()
    assert ledger_differences().clean


def test_seed_demo_has_the_trader_hold_a_long_call_and_a_short_put(db, settings):
    settings.OPTIONS_LISTING_ENABLED = True
    call_command("seed_demo", book_accounts=0)
    call_command("seed_demo", book_accounts=0)
    main = MarginAccount.objects.get(owner__username="trader", name="Main")
    held = {
        (p.instrument.option_type, p.quantity > 0)
        for p in main.positions.filter(instrument__kind="option").exclude(quantity=0)
    }
    assert held == {("call", True), ("put", False)}
    assert Fill.objects.filter(position__instrument__kind="option").count() == 2
    assert ledger_differences().clean


def _foreign_keys() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f'"
        )
        return set(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_seed_book_loads_a_balanced_book_and_replaces_it_on_reset(capsys, settings):
    # given the demo reference data
    reference_data_ensure()
    foreign_keys = _foreign_keys()
    # when a small book is seeded, then seeded again with --reset
    call_command("seed_book", accounts=300, positions=1200)
    # (the seed drops the loaded tables' foreign keys and adds them back, validated)
    assert _foreign_keys() == foreign_keys and len(foreign_keys) > 10
    first = set(User.objects.filter(username__startswith="book-").values_list("pk", flat=True))
    # and its perpetuals settle a funding time (one journal for every account's payment)
    settings.FUNDING_ANCHOR = timezone.now()
    funded = funding_settle_due(now=settings.FUNDING_ANCHOR + timedelta(seconds=1))
    assert funded.positions > 500 and funded.journals == 1
    call_command("seed_book", accounts=200, positions=700, reset=True, seed=3)
    # then the second book replaced the first, through the ledger's rules
    out = capsys.readouterr().out
    assert "seeded 200 accounts, 700 positions" in out
    users = User.objects.filter(username__startswith="book-")
    assert users.count() == 200 and not first & set(users.values_list("pk", flat=True))
    assert MarginAccount.objects.count() == 200
    assert Position.objects.count() == Fill.objects.count() == 700
    assert ledger_differences().clean
    book = engine_book()
    assert book.book.n_accounts == 200 and book.book.n_positions == 700
    assert book.book.pos_isolated.any() and len(set(book.book.pos_instrument)) > 4
    assert ParameterVersion.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_seed_book_with_an_option_share_books_premiums_and_a_tick_revalues_the_options(settings):
    # given the demo reference data, perpetuals marked, and option listing on (none listed yet)
    reference_data_ensure()
    settings.DEMO_MARKET_ENABLED = True
    settings.DEMO_MARKET_SPEED = 60.0
    settings.OPTIONS_LISTING_ENABLED = True
    settings.OPTION_TERMS_HOURS = [12.0, 48.0, 168.0]
    market_tick_run(now=timezone.now())
    # when a tiny book is seeded with a fifth of its positions options
    call_command("seed_book", accounts=50, positions=200, option_share=0.2, stdout=io.StringIO())
    # then the seed listed the series and holds 40 of them, long and short, in the cross pool
    options = Position.objects.filter(instrument__kind="option")
    assert options.count() == 40 and Position.objects.count() == Fill.objects.count() == 200
    assert options.filter(quantity__gt=0).exists() and options.filter(quantity__lt=0).exists()
    assert not options.filter(margin_mode="isolated").exists()
    # and every premium went through the ledger: the market account holds their sum
    option_fills = Fill.objects.filter(position__instrument__kind="option")
    premiums = sum(fill.quantity * fill.price for fill in option_fills)
    market = LedgerAccount.objects.get(margin_account=None, kind="market", asset__symbol="USDT")
    assert premiums and market.balance == premiums
    assert ledger_differences().clean
    # and a tick revalues them: every option holder's snapshot carries scan risk
    revaluation_tick_run(now=timezone.now())
    holders = set(options.values_list("margin_account_id", flat=True))
    scanned = MarginSnapshot.objects.filter(account_id__in=holders, scan_risk__gt=0)
    assert set(scanned.values_list("account_id", flat=True)) == holders


@pytest.mark.django_db(transaction=True)
def test_a_seeded_book_has_a_few_percent_at_risk_and_no_isolated_position_past_its_line():
    # given the demo reference data
    reference_data_ensure()
    # when a book is seeded and revalued at the prices it was seeded at
    call_command("seed_book", accounts=3000, positions=12000, stdout=io.StringIO())
    slice_ = engine_book()
    book = slice_.book
    revaluation = revalue(book, slice_.marks, slice_.asset_prices)
    # then the isolated positions are survivors of the market before the seed: none at the
    # margin-call level, next to none at the warning level (the seeder reckons MM by the
    # bracket's rate alone, SURVIVOR_RATIO); and the accounts at risk are a few percent
    isolated = revaluation.isolated_margin_ratio[book.pos_isolated_rows]
    assert book.pos_isolated_rows.size > 1000 and not np.isnan(isolated).any()
    assert np.max(isolated) < 0.8 and np.mean(isolated >= 0.5) < 0.01
    assert np.median(isolated) < SURVIVOR_RATIO / 2
    ratio = worst_ratio(book, revaluation, revaluation.margin_ratio)
    at_risk = np.mean(ratio >= 0.5)
    assert 0.01 <= at_risk <= NEAR_LIQUIDATION_SHARE + 0.01, at_risk


@pytest.mark.django_db(transaction=True)
def test_seed_demo_adds_a_book_with_accounts_at_risk_and_a_funded_insurance_fund(capsys):
    # when the demo is seeded twice with a small book
    call_command("seed_demo", book_accounts=400)
    call_command("seed_demo", book_accounts=400)
    # then one book of 400 accounts (two positions each), kept on the rerun
    out = capsys.readouterr().out
    assert "demo book seeded: 400 accounts, 800 positions" in out
    assert "demo book: already seeded" in out
    assert User.objects.filter(username__startswith="book-").count() == 400
    fund = LedgerAccount.objects.get(kind="insurance", asset__symbol="USDT", margin_account=None)
    assert fund.balance == DEMO_INSURANCE_FUND
    assert out.count("insurance fund funded") == 1
    assert ledger_differences().clean
    # and a tick finds a spread of states, not a book of healthy accounts only
    market_tick_run(now=timezone.now())
    revaluation_tick_run(now=timezone.now())
    states = Counter(MarginAccount.objects.values_list("state", flat=True))
    assert states["healthy"] > 300
    assert states["warning"] + states["margin_call"] + states["liquidation"] >= 4, states


def test_make_run_seeds_the_demo_book_on_sqlite(tmp_path):
    """`make run`'s path: migrate and seed_demo on a fresh SQLite file, then one market tick
    and one revaluation tick; every seeded journal balances in Decimal."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    manage("migrate", "-v0")
    assert "demo book seeded: 300 accounts, 600 positions" in manage(
        "seed_demo", "--book-accounts", "300"
    )
    probe = manage("shell", "-c", SQLITE_PROBE)
    found = json.loads(probe.strip().splitlines()[-1])
    assert found["unbalanced_journals"] == 0
    assert found["book_accounts"] == 300
    assert Decimal(found["insurance"]) == DEMO_INSURANCE_FUND
    assert sum(found["states"].values()) == 303  # the three demo traders' accounts too
    assert found["states"].get("healthy", 0) < 303


SQLITE_PROBE = """
import json
from collections import Counter, defaultdict
from decimal import Decimal
from django.utils import timezone
from margin.models import Entry, LedgerAccount, MarginAccount
from margin.services.prices import market_tick_run
from margin.services.revaluation import revaluation_tick_run
market_tick_run(now=timezone.now())
revaluation_tick_run(now=timezone.now())
sums = defaultdict(Decimal)
for journal, asset, amount in Entry.objects.values_list("journal_id", "asset_id", "amount"):
    sums[journal, asset] += Decimal(str(amount))
fund = LedgerAccount.objects.get(kind="insurance", asset__symbol="USDT", margin_account=None)
print(json.dumps({
    # SQLite keeps decimals as floats: a cent's millionth is the float noise's bound here.
    "unbalanced_journals": sum(1 for total in sums.values() if abs(total) > Decimal("1e-8")),
    "book_accounts": MarginAccount.objects.filter(owner__username__startswith="book-").count(),
    "insurance": f"{fund.balance:f}",
    "states": Counter(MarginAccount.objects.values_list("state", flat=True)),
}))
"""
