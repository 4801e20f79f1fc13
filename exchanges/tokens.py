"""Operator API tokens: many per operator, named, revocable, shown once, stored as digests.

Scripts send `Authorization: Bearer arb_…`. DRF's single `Token` keeps working alongside;
these are for when an operator wants one token per script and to revoke one without the rest.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    TokenAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.errors import NotFound
from exchanges.models import AuditAction, AuditRecord, OperatorToken


class OperatorTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <operator token>`."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, OperatorToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid bearer header.")
        try:
            raw = parts[1].decode()
        except UnicodeError as exc:
            raise AuthenticationFailed("Invalid bearer header.") from exc
        user = OperatorToken.user_for_key(raw)
        if user is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        return user, raw  # type: ignore[return-value]

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


# Our views accept operator tokens even before the lead adds the class to DEFAULT_AUTHENTICATION_CLASSES.
AUTHENTICATION_CLASSES = [OperatorTokenAuthentication, TokenAuthentication, SessionAuthentication]


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, trim_whitespace=True)


def token_payload(token: OperatorToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "createdAt": int(token.created_at.timestamp() * 1000),
        "lastUsedAt": int(token.last_used_at.timestamp() * 1000) if token.last_used_at else None,
        "revoked": token.revoked_at is not None,
    }


def _user_id(request: Request) -> int:
    return int(request.user.pk or 0)  # IsAuthenticated guarantees a saved user


class TokenListView(APIView):
    authentication_classes = AUTHENTICATION_CLASSES

    def get(self, request: Request) -> Response:
        tokens = OperatorToken.objects.filter(user_id=_user_id(request))
        return Response([token_payload(t) for t in tokens])

    def post(self, request: Request) -> Response:
        body = TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, raw = OperatorToken.issue(request.user, body.validated_data["name"])
        AuditRecord.record(AuditAction.TOKEN_CREATED, request=request,
                           detail={"tokenId": token.pk, "name": token.name, "prefix": token.prefix})
        # The only time the key is ever shown.
        return Response({**token_payload(token), "key": raw}, status=201)


class TokenDetailView(APIView):
    authentication_classes = AUTHENTICATION_CLASSES

    def delete(self, request: Request, token_id: int) -> Response:
        updated = OperatorToken.objects.filter(pk=token_id, user_id=_user_id(request), revoked_at=None).update(
            revoked_at=timezone.now())
        if not updated:
            raise NotFound(f"No active token {token_id}.")
        AuditRecord.record(AuditAction.TOKEN_REVOKED, request=request, detail={"tokenId": token_id})
        return Response({"success": True})
