"""The risk API mounted under /api, and the admin (until the lead includes them in arbsite.urls)."""

from django.contrib import admin
from django.urls import include, path

import trading.risk_admin  # noqa: F401 - registers the risk models with the admin

urlpatterns = [path("api/", include("trading.risk_urls")), path("admin/", admin.site.urls)]
