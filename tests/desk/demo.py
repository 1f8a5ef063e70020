"""`make run`'s demo for page-wide tests: seeded with a book of the test's size and ticked, then
reviewed by the desk (a stress run, a cascade run, a case with a proposal on the account most at
risk), so every desk page has something to show."""

from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from margin.models import MarginSnapshot, Position
from margin.services.cascade import cascade_run_execute, cascade_run_start
from margin.services.desk import case_open
from margin.services.prices import market_tick_run
from margin.services.proposals import forced_reduction_propose
from margin.services.revaluation import revaluation_tick_run
from margin.services.stress_runs import stress_run_create


def demo_seeded(settings, *, book_accounts: int) -> None:
    """The demo users, traders and a book of `book_accounts`, after two market ticks and two
    revaluations."""
    settings.DEMO_MARKET_ENABLED = True
    call_command("seed_demo", book_accounts=book_accounts)
    for _ in range(2):
        market_tick_run(now=timezone.now())
        revaluation_tick_run(now=timezone.now())


def demo_reviewed() -> dict:
    """The desk's work on the seeded demo: the case and the account most at risk."""
    officer = User.objects.get(username="officer")
    stress_run_create(actor=officer, kind="uniform", options={"move": -0.2})
    run = cascade_run_start(actor=officer, options={"scenario": "uniform", "move": -0.15})
    cascade_run_execute(run_id=run.pk)
    at_risk = (
        MarginSnapshot.objects.filter(maintenance_margin__gt=0, margin_ratio__isnull=False)
        .order_by("-margin_ratio")
        .select_related("account")
        .first()
        .account
    )
    case = case_open(account=at_risk, actor=officer, summary="demo review")
    position = Position.objects.filter(margin_account=at_risk).exclude(quantity=0).first()
    forced_reduction_propose(
        position=position,
        quantity=abs(position.quantity) / 3,
        reason="cut",
        proposer=officer,
        case=case,
    )
    return {"case": case, "at_risk": at_risk}
