from django.urls import path

from exchanges import views

urlpatterns = [
    path("prices/batch", views.PriceBatchView.as_view(), name="prices-batch"),
    path("prices/<str:exchange>/<str:symbol>", views.price_view, name="prices-book"),
    path("exchanges", views.ExchangeListView.as_view(), name="exchanges"),
    path("exchanges/<str:name>", views.ExchangeDetailView.as_view(), name="exchange-detail"),
]
