"""The desk's exposure by Greek per underlying across the book (officers and managers)."""

from django.shortcuts import render

from accounts.access import desk_required
from margin.selectors.greeks import book_greeks


@desk_required
def greeks(request):
    return render(request, "desk/greeks.html", {"rows": book_greeks()})
