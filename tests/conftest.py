import os
import tempfile

import pytest
import redis

from margin.selectors.book_rows import book_copies_clear
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.second_factor import SecondFactorClient, submit_login

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_configure(config):
    """Each test process (each xdist worker) keeps its Celery keys under a prefix of its own in
    the shared Redis db: workers never take each other's tasks, and the run removes its keys."""
    from django.conf import settings

    from exchange_site.celery import app as celery_app

    # Django's default hasher costs ~0.7 s a user here, and most tests make several: the suite
    # hashes with MD5 (Django's advice for tests); the hashing itself is Django's, not ours.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    # The shards' book copies (`margin.selectors.book_rows`) of this run only, in a directory
    # the Celery processes a test starts share (they read it from the environment).
    os.environ["BOOK_CACHE_DIR"] = tempfile.mkdtemp(prefix="book-copies-")
    settings.BOOK_CACHE_DIR = os.environ["BOOK_CACHE_DIR"]

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    prefix = f"test-{os.getpid()}-{worker}:"
    # Celery processes a test starts read it from the environment (tests.celery_procs).
    os.environ["CELERY_KEY_PREFIX"] = prefix
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return
    broker_options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}
    result_options = {"global_keyprefix": prefix}
    settings.CELERY_KEY_PREFIX = prefix
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = broker_options
    settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = result_options
    celery_app.conf.update(
        broker_transport_options=broker_options, result_backend_transport_options=result_options
    )


@pytest.fixture(scope="session", autouse=True)
def _redis_keys_removed_after_the_run():
    yield
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=f"{settings.CELERY_KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def password() -> str:
    return DEFAULT_PASSWORD


@pytest.fixture
def client():
    """Django's test client; its force_login includes a desk role's second factor."""
    return SecondFactorClient()


@pytest.fixture
def make_user(db):
    def make(role: str | None = None, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def login(page, live_server, password):
    """Log a user in through the real form (a desk role also gives its code) and return the
    page."""

    def log_in(user, *, secret: str | None = None):
        page.goto(f"{live_server.url}/login/")
        submit_login(page, user, secret or password)
        return page

    return log_in


@pytest.fixture(autouse=True)
def no_funding_in_ticks(settings):
    """Ticks settle no funding unless a test asks for it (`settings.FUNDING_SETTLEMENT_ENABLED =
    True`): the funding grid runs on the clock, so figures of other tests would otherwise
    depend on when they ran. Processes a test starts (workers) keep the default, on. Nor do
    they list the demo's short-dated future or its options (a test of them turns
    DEMO_FUTURE_ENABLED or OPTIONS_LISTING_ENABLED on)."""
    settings.FUNDING_SETTLEMENT_ENABLED = False
    settings.DEMO_FUTURE_ENABLED = False
    settings.OPTIONS_LISTING_ENABLED = False


@pytest.fixture(autouse=True)
def market_read_afresh(settings):
    """Pages read the market on every request unless a test asks for the per-tick read
    (`margin.selectors.market_now`): tests change settings and the clock the market read
    depends on (market speed, funding grid) under the same rows, within the same second. The
    per-tick read has tests of its own (tests/trader/test_market_now.py)."""
    settings.MARKET_READ_CACHE_S = 0


@pytest.fixture(autouse=True)
def demo_market_jumps_as_a_real_market(settings):
    """The demo market gaps every ~15 minutes for a visitor; tests that step it keep the
    market model's own rate (one a week), so a seeded walk does not hinge on the demo's."""
    settings.DEMO_MARKET_JUMPS_PER_HOUR = None


@pytest.fixture(autouse=True)
def book_copies_forgotten():
    """Workers keep the shards' book rows they read (`margin.selectors.book_rows`), brought up
    to date from the database's change log; a test database emptied between tests (TRUNCATE
    notes no change) must not be read through a copy of the last test's rows."""
    book_copies_clear()
    yield
    book_copies_clear()
