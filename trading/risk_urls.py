"""Risk API routes; the lead includes them under /api (`path("", include("trading.risk_urls"))`)."""

from django.urls import re_path

from trading import risk_views

# No trailing slash per the contract; the slash variant is accepted too.
urlpatterns = [
    re_path(r"^risk/limits/?$", risk_views.LimitsView.as_view(), name="risk-limits"),
    re_path(r"^risk/state/?$", risk_views.StateView.as_view(), name="risk-state"),
    re_path(r"^risk/kill-switch/?$", risk_views.KillSwitchView.as_view(), name="risk-kill-switch"),
    re_path(r"^risk/alerts/?$", risk_views.AlertListView.as_view(), name="risk-alerts"),
    re_path(r"^risk/audit/?$", risk_views.LimitChangeListView.as_view(), name="risk-audit"),
]
