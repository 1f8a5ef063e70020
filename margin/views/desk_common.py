"""What every desk view shares: turning a refused action into a message, never a 500."""

from collections.abc import Callable

from django.contrib import messages
from django.shortcuts import redirect

from margin.errors import ApplicationError


def act(request, action: Callable[[], object], *, done: str, back: str, **back_kwargs):
    """Run one service call; a refusal becomes an error message, success a success message;
    either way back to the page the form was on (post/redirect/get)."""
    try:
        action()
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect(back, **back_kwargs)


def form_errors(request, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


def sparkline(values: list[float | None], *, width: int = 300, height: int = 60) -> str:
    """SVG polyline points of a series scaled into the box (highest value at the top); a
    missing value (None) keeps its place on the x axis and draws no point."""
    known = [v for v in values if v is not None]
    if len(values) < 2 or not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - (v - low) / span * height:.1f}"
        for i, v in enumerate(values)
        if v is not None
    )
