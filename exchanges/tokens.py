"""Operator API tokens: many per operator, named, revocable, shown once, stored as digests.

Scripts send `Authorization: Bearer arb_…`. DRF's single `Token` keeps working alongside;
these are for when an operator wants one token per script and to revoke one without the rest.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.errors import NotFound
from exchanges.authentication import OperatorTokenAuthentication
from exchanges.models import AuditAction, AuditRecord, OperatorToken

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


def operator_token_user(key: str) -> Any | None:
    """`/ws?token=` lookup for operator tokens (listed in settings.WS_TOKEN_LOOKUPS)."""
    return OperatorToken.user_for_key(key)
