from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import User
from accounts.roles import ADMIN, RISK_MANAGER, RISK_OFFICER, TRADER
from accounts.second_factor import totp_device_ensure
from accounts.services import user_ensure
from margin.models import MarginAccount
from margin.selectors.options import live_options
from margin.services.collateral import collateral_deposit
from margin.services.demo_book import demo_book_ensure
from margin.services.expiry import demo_future_ensure
from margin.services.ledger import margin_account_open
from margin.services.margin_mode import position_leverage_set, position_margin_mode_switch
from margin.services.options_listing import options_listing_ensure
from margin.services.positions import position_market_fill
from margin.services.reference import reference_data_ensure

# Local demo only: the README lists these; never run seed_demo against a real deployment.
DEMO_USERS = [
    ("trader", "trader-demo-pass", TRADER),
    ("trader2", "trader-demo-pass", TRADER),
    ("officer", "officer-demo-pass", RISK_OFFICER),
    ("officer2", "officer-demo-pass", RISK_OFFICER),
    ("manager", "manager-demo-pass", RISK_MANAGER),
    ("admin", "admin-demo-pass", ADMIN),
]

# The desk users' authenticator secrets (base32), published in the README so the demo can be
# logged into: `python manage.py totp_code officer` or `oathtool --totp -b <secret>`.
DEMO_TOTP_SECRETS = {
    "officer": "OFFICERDEMOTOTPSECRETKEYAAAAAAAA",
    "officer2": "OFFICERTWODEMOTOTPSECRETKEYAAAAA",
    "manager": "MANAGERDEMOTOTPSECRETKEYAAAAAAAA",
    "admin": "ADMINDEMOTOTPSECRETKEYAAAAAAAAAA",
}

# (user, account name, credit tier): deposits, then per instrument (leverage, mode with its
# isolated margin or None for cross, side, quantity), filled at the demo marks.
DEMO_ACCOUNTS = [
    (
        ("trader", "Main", "standard"),
        [("USDT", "25000"), ("BTC", "0.5"), ("ETH", "4")],
        [
            ("BTCUSDT", "10", None, "buy", "0.3"),
            ("ETHUSDT", "10", "2500", "sell", "5"),
            ("SOLUSDT", "5", None, "buy", "100"),
        ],
    ),
    (
        ("trader", "Hedge", "vip"),
        [("USDT", "5000"), ("USDC", "50000")],
        [("BTCUSDT_261225", "5", None, "buy", "0.2")],
    ),
    (
        ("trader2", "Main", "standard"),
        [("USDT", "8000"), ("ETH", "2")],
        [("BTCUSDT", "20", None, "buy", "0.6"), ("SOLUSDT", "10", None, "sell", "200")],
    ),
]


def demo_accounts_ensure() -> list[MarginAccount]:
    """The demo traders' margin accounts, funded and with a few positions. Every step has a
    fixed idempotency key, so a rerun replays it instead of booking it again."""
    accounts = []
    for (username, name, tier), deposits, positions in DEMO_ACCOUNTS:
        owner = User.objects.get(username=username)
        account = MarginAccount.objects.filter(owner=owner, name=name).first()
        account = account or margin_account_open(owner=owner, name=name, credit_tier=tier)
        key = f"seed-demo:{account.pk}"
        for asset, amount in deposits:
            collateral_deposit(
                account=account,
                asset=asset,
                amount=Decimal(amount),
                idempotency_key=f"{key}:deposit:{asset}",
            )
        for instrument, leverage, isolated, side, quantity in positions:
            position_leverage_set(
                account=account,
                instrument=instrument,
                leverage=Decimal(leverage),
                idempotency_key=f"{key}:leverage:{instrument}",
            )
            if isolated is not None:
                position_margin_mode_switch(
                    account=account,
                    instrument=instrument,
                    mode="isolated",
                    isolated_margin=Decimal(isolated),
                    idempotency_key=f"{key}:isolated:{instrument}",
                )
            position_market_fill(
                account=account,
                instrument=instrument,
                side=side,
                quantity=Decimal(quantity),
                idempotency_key=f"{key}:fill:{instrument}",
            )
        accounts.append(account)
    return accounts


def demo_future_position_open(account: MarginAccount, symbol: str) -> None:
    """A small long on the demo's short-dated future, so the trader sees its expiry notice,
    then its settlement in the history, within minutes."""
    position_leverage_set(
        account=account,
        instrument=symbol,
        leverage=Decimal("5"),
        idempotency_key=f"seed-demo:{account.pk}:leverage:{symbol}",
    )
    position_market_fill(
        account=account,
        instrument=symbol,
        side="buy",
        quantity=Decimal("0.05"),
        idempotency_key=f"seed-demo:{account.pk}:fill:{symbol}",
    )


def demo_options_open(account: MarginAccount, *, now) -> list[str]:
    """List the options (unless listed) and have the account buy a BTC call and sell a BTC
    put, one strike out of the money each, in the longest term: the chain, the Greeks and the
    risk matrix then have a book to show. One idempotency key per series, so a rerun holds
    them once, and buys new ones after these expired."""
    options_listing_ensure(now=now)
    series = live_options().filter(underlying__symbol="BTC", mark__isnull=False)
    longest = series.order_by("-expiry").first()
    if longest is None:
        return []
    forward = longest.mark.index_price
    term = series.filter(expiry=longest.expiry)
    call = term.filter(option_type="call", strike__gt=forward).order_by("strike").first()
    put = term.filter(option_type="put", strike__lt=forward).order_by("-strike").first()
    traded = []
    for option, side, quantity in ((call, "buy", "0.5"), (put, "sell", "0.5")):
        if option is None:
            continue
        position_market_fill(
            account=account,
            instrument=option.symbol,
            side=side,
            quantity=Decimal(quantity),
            idempotency_key=f"seed-demo:{account.pk}:fill:{option.symbol}",
        )
        traded.append(f"{side} {quantity} {option.symbol}")
    return traded


class Command(BaseCommand):
    help = (
        "Create the demo users (one per role and a second trader and officer), the reference "
        "data, the demo traders' funded margin accounts with a few positions, a synthetic book "
        "of --book-accounts accounts (seed_book's generator) and a funded insurance fund; safe "
        "to rerun (an existing book is kept)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--book-accounts", type=int, default=settings.DEMO_BOOK_ACCOUNTS)
        parser.add_argument(
            "--book-positions", type=int, help="positions of the book (default: 2 per account)"
        )

    def handle(self, *args, **options) -> None:
        for username, password, role in DEMO_USERS:
            user = user_ensure(
                username=username, password=password, role=role, email=f"{username}@demo.invalid"
            )
            if username in DEMO_TOTP_SECRETS:
                totp_device_ensure(user=user, secret=DEMO_TOTP_SECRETS[username])
        self.stdout.write(f"demo users ready: {', '.join(u for u, _, _ in DEMO_USERS)}")
        version = reference_data_ensure()
        accounts = demo_accounts_ensure()
        demo_future = demo_future_ensure(now=timezone.now())
        if demo_future:
            demo_future_position_open(accounts[0], demo_future)
            self.stdout.write(
                f"demo future {demo_future} listed (expires within "
                f"{settings.DEMO_FUTURE_TERM_HOURS:g} market hours); "
                f"{accounts[0].owner.username}/{accounts[0].name} holds it"
            )
        if settings.OPTIONS_LISTING_ENABLED:
            traded = demo_options_open(accounts[0], now=timezone.now())
            self.stdout.write(
                f"options listed; {accounts[0].owner.username}/{accounts[0].name}: "
                + (", ".join(traded) or "no BTC options to trade")
            )
        self.stdout.write(
            f"reference data ready ({version}); demo margin accounts: "
            + ", ".join(f"{a.owner.username}/{a.name}" for a in accounts)
        )
        book_accounts = options["book_accounts"]
        positions = options["book_positions"]
        book = demo_book_ensure(
            accounts=book_accounts, positions=2 * book_accounts if positions is None else positions
        )
        self.stdout.write(
            (
                f"demo book seeded: {book.accounts_seeded} accounts, "
                f"{book.positions_seeded} positions"
                if book.accounts_seeded
                else "demo book: already seeded"
                if book_accounts
                else "no demo book (--book-accounts 0)"
            )
            + (
                f"; insurance fund funded with {book.insurance_deposit:,} USDT"
                if book.insurance_deposit
                else ""
            )
        )
