"""The opportunity API mounted under /api (until the lead includes trading.stats_urls)."""

from django.urls import include, path

urlpatterns = [path("api/", include("trading.stats_urls"))]
