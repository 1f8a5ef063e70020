from django.shortcuts import render

from accounts.access import desk_required


@desk_required
def landing(request):
    return render(request, "desk/landing.html", {})
