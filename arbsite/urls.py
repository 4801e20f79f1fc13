"""One router for the whole site: `/api` (DRF, enveloped), `/admin`, `/health`, the SPA."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from arbsite import auth_views, health, monitor_views
from arbsite.errors import ErrorCode, json_error
from arbsite.spa import spa_view

api_patterns: list[URLPattern | URLResolver] = [
    path("auth/", include("arbsite.auth_urls")),
    re_path(r"^monitoring/performance/?$", monitor_views.PerformanceView.as_view(), name="performance"),
    path("", include("exchanges.urls")),
    path("", include("exchanges.account_urls")),
    path("", include("trading.urls")),
    path("", include("trading.stats_urls")),
    path("", include("trading.risk_urls")),
    path("", include("twap.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health.health_view, name="health"),
    path("metrics", health.metrics_view, name="metrics"),
    path("api/", include(api_patterns)),
    re_path(r"^api/.*$", auth_views.api_not_found),
    re_path(r"^(?!static/|admin/|ws/?).*$", spa_view, name="spa"),
]


def handler404(request, exception=None):  # type: ignore[no-untyped-def]
    return json_error(ErrorCode.NOT_FOUND, "Not found.", 404)


def handler500(request):  # type: ignore[no-untyped-def]
    return json_error(ErrorCode.INTERNAL_ERROR, "Internal error; it has been logged.", 500)
