"""Opportunity history and statistics; the lead includes these under `/api/`."""

from django.urls import re_path

from trading import stats_views

urlpatterns = [
    re_path(r"^arbitrage/opportunities/?$", stats_views.OpportunityListView.as_view(), name="arbitrage-opportunities"),
    re_path(r"^arbitrage/stats/?$", stats_views.OpportunityStatsView.as_view(), name="arbitrage-stats"),
]
