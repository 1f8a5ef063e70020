import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_collecting_violations(page, url: str) -> list[str]:
    """Open `url` and return every CSP violation and script error the page raised (network
    failures aside: the test machine may have no route to ReDoc's logo)."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if message.text.startswith("CSP violation") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.log('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return problems


def test_swagger_ui_renders_every_operation_under_the_csp(page, live_server):
    # when
    problems = open_collecting_violations(page, f"{live_server.url}/api/v1/docs/")
    # then
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/quote/" in [path.strip().replace("\u200b", "") for path in paths]
    assert problems == []


def test_redoc_renders_under_the_csp(page, live_server):
    # when
    problems = open_collecting_violations(page, f"{live_server.url}/api/v1/redoc/")
    # then
    page.locator("h2", has_text="Quote a hypothetical account").first.wait_for()
    assert problems == []
