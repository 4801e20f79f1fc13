from django.urls import include, path, re_path

from trading import views

# No trailing slash per the contract; the slash variant is accepted too.
urlpatterns = [
    re_path(r"^monitoring/pairs/?$", views.PairListView.as_view(), name="pairs"),
    re_path(r"^monitoring/pairs/(?P<pair_id>[^/]+)/?$", views.PairDetailView.as_view(), name="pair-detail"),
    path("", include("trading.execution_urls")),
]
