from accounts.roles import TRADE, USE_DESK


def navigation(request) -> dict:
    """What the navigation offers: each role sees only what it may use."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": {}}
    return {"nav": {"trade": user.has_perm(TRADE), "desk": user.has_perm(USE_DESK)}}
