"""A risk scenario the desk ran, saved with who ran it, its input, its output and its exit
status (`ScenarioRun`); the run itself happens in the scenario's sandbox before this."""

from django.db import transaction

from margin.input_limits import FORBIDDEN_CHARACTERS
from margin.models import ScenarioRun
from margin.services.audit import audit_record


@transaction.atomic
def scenario_run_record(
    *,
    actor,
    name: str,
    input_text: str,
    output: dict | None,
    exit_status: int,
    error: str,
    duration_ms: int,
) -> ScenarioRun:
    """Save one run and its audit line together."""
    limit = ScenarioRun._meta.get_field("name").max_length
    name = FORBIDDEN_CHARACTERS.sub("", name).strip()[:limit] or "unnamed"
    run = ScenarioRun.objects.create(
        created_by=actor,
        name=name,
        input_text=input_text,
        output=output,
        exit_status=exit_status,
        error=error,
        duration_ms=duration_ms,
    )
    audit_record(
        action="scenario.run",
        actor=actor,
        subject=f"scenario_run:{run.pk}",
        after={"name": name, "exit_status": exit_status},
    )
    return run
