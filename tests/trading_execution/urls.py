"""The execution API mounted under /api (until the lead includes it from trading.urls)."""

from django.urls import include, path

urlpatterns = [path("api/", include("trading.execution_urls"))]
