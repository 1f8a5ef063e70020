from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import (
    LoginView,
    PasswordChangeView,
    api_token_revoke_view,
    api_tokens,
    recovery_codes_renew,
    second_factor,
    second_factor_enrol,
)

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("login/verify/", second_factor, name="second_factor"),
    path("login/authenticator/", second_factor_enrol, name="second_factor_enrol"),
    path("login/recovery-codes/", recovery_codes_renew, name="recovery_codes_renew"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("me/tokens/", api_tokens, name="api_tokens"),
    path("me/tokens/<int:pk>/revoke/", api_token_revoke_view, name="api_token_revoke"),
]
