from django.shortcuts import render

from accounts.access import trader_required


@trader_required
def account_list(request):
    return render(request, "margin/account_list.html", {"accounts": []})
