"""A cascade run on a real Celery worker, its progress bar polled by the browser until done."""

import pytest

from margin.models import CascadeRun
from tests.celery_procs import celery_env, celery_process

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery_live,
    pytest.mark.django_db(transaction=True),
]


def test_cascade_runs_on_the_worker_and_the_page_follows_its_progress(
    login, live_server, officer, book, tmp_path
):
    # given: a worker on the test database and broker
    log = tmp_path / "worker.log"
    with celery_process(
        "worker", "--concurrency=1", "--pool=solo", "-l", "INFO", env=celery_env(), log=log
    ):
        page = login(officer)
        page.goto(f"{live_server.url}/desk/cascade/")
        # when: the officer starts a cascade on a thin market
        page.select_option("#cascade-form select[name=scenario]", "uniform")
        page.fill("#cascade-form input[name=move]", "-0.001")
        page.fill("#cascade-form input[name=depth_usd]", "10000")
        page.fill("#cascade-form input[name=max_rounds]", "10")
        page.click("#cascade-form button")
        page.wait_for_url("**/desk/cascade/*/")
        # then: the polled fragment reaches Done without a reload
        page.locator("#cascade-status", has_text="Done").wait_for(timeout=60_000)
        assert page.locator("#cascade-bar").get_attribute("value") == "100"
        rounds = page.locator("#cascade-rounds tbody tr").count()
    run = CascadeRun.objects.get()
    assert run.status == CascadeRun.Status.DONE and rounds == len(run.rounds) >= 2
    assert run.rounds[0]["accounts"] == [book["margin_call"].pk], log.read_text()[-2000:]
