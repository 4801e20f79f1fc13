"""Routes for trading keys, accounts and operator tokens (included at the `/api/` root)."""

from django.urls import path

from exchanges import account_views, tokens

urlpatterns = [
    path("settings/api", account_views.ApiKeysView.as_view(), name="settings-api"),
    path("settings/api/test", account_views.ApiKeysTestView.as_view(), name="settings-api-test"),
    path("settings/api/<str:exchange>", account_views.ApiKeysDetailView.as_view(), name="settings-api-detail"),
    path("account/<str:exchange>", account_views.AccountView.as_view(), name="account"),
    path("auth/tokens", tokens.TokenListView.as_view(), name="auth-tokens"),
    path("auth/tokens/<int:token_id>", tokens.TokenDetailView.as_view(), name="auth-token-detail"),
]
