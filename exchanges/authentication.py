"""`Authorization: Bearer <operator token>` for DRF (kept apart from the views: DRF loads it at import)."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request


class OperatorTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <operator token>`."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid bearer header.")
        try:
            raw = parts[1].decode()
        except UnicodeError as exc:
            raise AuthenticationFailed("Invalid bearer header.") from exc
        from exchanges.models import OperatorToken

        user = OperatorToken.user_for_key(raw)
        if user is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        return user, raw  # type: ignore[return-value]

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
