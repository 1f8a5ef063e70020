import os

import pytest

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.second_factor import SecondFactorClient, submit_login

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


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
