"""Session login for the browser (with CSRF) and who-am-I; scripts use DRF tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from arbsite.errors import ApiError, ErrorCode, json_error


class LoginThrottle(AnonRateThrottle):
    scope = "login"
    rate = "10/min"

    def get_rate(self) -> str:
        return self.rate


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class LoginFailed(ApiError):
    status_code = 401
    default_code = ErrorCode.AUTHENTICATION_REQUIRED
    default_detail = "Wrong username or password."


def _user_payload(user: Any) -> dict[str, Any]:
    return {"username": user.get_username(), "isStaff": bool(user.is_staff)}


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"csrfToken": get_token(request)})


class LoginView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    def post(self, request: Request) -> Response:
        # APIView is csrf_exempt and DRF checks CSRF only for an existing session, so a
        # login form would be open to login CSRF; check it here like Django's LoginView.
        SessionAuthentication().enforce_csrf(request)
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=body.validated_data["username"],
            password=body.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise LoginFailed()
        login(request._request, user)
        return Response({"user": _user_payload(user), "csrfToken": get_token(request._request)})


class LogoutView(APIView):
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response({"success": True})


class MeView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"user": _user_payload(request.user)})


def api_not_found(request: HttpRequest) -> JsonResponse:
    return json_error(ErrorCode.NOT_FOUND, f"No API endpoint at {request.path}.", 404)
