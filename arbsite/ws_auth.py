"""Who is on the other end of `/ws`: the browser's session, or a DRF token for scripts.

- Browsers: the session cookie, exactly as Channels' `AuthMiddlewareStack` reads it.
- Scripts: `ws://host/ws?token=<DRF token>` (the key from `rest_framework.authtoken`),
  because browsers' and most clients' websocket APIs cannot set an Authorization header.
  The token travels in the URL, so use `wss://` outside localhost; our logs never record
  websocket URLs. Scripts must also send an `Origin` header whose host is in
  `ALLOWED_HOSTS` (`AllowedHostsOriginValidator` guards against cross-site websocket hijacking).

A session wins over a token. Neither -> `AnonymousUser`, which the consumer refuses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

TOKEN_PARAM = "token"
MAX_TOKEN_LENGTH = 128


def drf_token_user(key: str) -> Any | None:
    """The active user owning a DRF token, or None."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


@database_sync_to_async
def user_for_token(key: str) -> Any | None:
    """Try each configured token lookup (`WS_TOKEN_LOOKUPS`, dotted paths) in order."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    for path in getattr(settings, "WS_TOKEN_LOOKUPS", ["arbsite.ws_auth.drf_token_user"]):
        user = import_string(path)(key)
        if user is not None:
            return user
    return None


def token_from_scope(scope: dict[str, Any]) -> str | None:
    query = scope.get("query_string", b"")
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    values = parse_qs(query).get(TOKEN_PARAM)
    if not values or not values[0] or len(values[0]) > MAX_TOKEN_LENGTH:
        return None
    return values[0]


class TokenQueryMiddleware(BaseMiddleware):
    """Sets `scope["user"]` from `?token=` when the session did not authenticate anyone."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = token_from_scope(scope)
            if key:
                token_user = await user_for_token(key)
                if token_user is not None:
                    scope = dict(scope, user=token_user)
        return await super().__call__(scope, receive, send)


def SessionOrTokenAuthMiddleware(inner: Any) -> Any:
    """Cookie -> session -> user, then the `?token=` fallback."""
    return AuthMiddlewareStack(TokenQueryMiddleware(inner))
