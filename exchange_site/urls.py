from django.contrib import admin
from django.urls import include, path

from accounts.views import home
from margin.views.health import healthz

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("", include("accounts.urls")),
    path("", include("margin.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("margin.api.urls")),
]
