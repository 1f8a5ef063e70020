from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import api_token_revoke_view, api_tokens

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(),
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
