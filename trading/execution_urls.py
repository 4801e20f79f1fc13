from django.urls import path

from trading import execution_views

urlpatterns = [
    path("arbitrage/execute/<str:pair_id>", execution_views.ExecuteView.as_view(), name="arbitrage-execute"),
    path("arbitrage/executions", execution_views.ExecutionListView.as_view(), name="arbitrage-executions"),
    path("arbitrage/executions/<int:execution_id>", execution_views.ExecutionDetailView.as_view(),
         name="arbitrage-execution-detail"),
    path("arbitrage/exposure", execution_views.ExposureView.as_view(), name="arbitrage-exposure"),
]
