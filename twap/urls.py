from django.urls import re_path

from twap import views

# No trailing slash per the contract; the slash variant is accepted too.
urlpatterns = [
    re_path(r"^twap/plans/?$", views.PlanListView.as_view(), name="twap-plans"),
    re_path(r"^twap/plans/(?P<plan_id>[^/]+)/?$", views.PlanDetailView.as_view(), name="twap-plan"),
    re_path(r"^twap/(?P<plan_id>[^/]+)/status/?$", views.PlanStatusView.as_view(), name="twap-status"),
    re_path(r"^twap/(?P<plan_id>[^/]+)/control/?$", views.PlanControlView.as_view(), name="twap-control"),
]
