from django.contrib import admin
from django.urls import include, path

from .api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("account/", include("accounts.urls")),
    path("analysis/", include("analysis.urls")),
    path("design/", include("design.urls")),
    path("training/", include("training.urls")),
    path("api/v1/", api.urls),
    path("", include("workers.urls")),
]
