"""The API envelope and its error codes: the one place both are defined.

Every `/api` response is `{"success": true, "data": ...}` or
`{"success": false, "error": {"code": ..., "message": ...}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import TextChoices
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework import status
from rest_framework.response import Response

logger = logging.getLogger("arbsite.api")


class ErrorCode(TextChoices):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    RISK_REJECTED = "RISK_REJECTED"
    EXCHANGE_UNAVAILABLE = "EXCHANGE_UNAVAILABLE"
    # Beyond the contract's list, only where none of the above fits.
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ApiError(drf.APIException):
    """An error the API reports with a specific code; raise a subclass."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code: str = ErrorCode.VALIDATION_ERROR
    default_detail = "Invalid request."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(detail=message or self.default_detail, code=code or self.default_code)
        self.error_code = str(code or self.default_code)


class ValidationFailed(ApiError):
    status_code = 400
    default_code = ErrorCode.VALIDATION_ERROR
    default_detail = "Invalid request."


class NotFound(ApiError):
    status_code = 404
    default_code = ErrorCode.NOT_FOUND
    default_detail = "Not found."


class RateLimited(ApiError):
    status_code = 429
    default_code = ErrorCode.RATE_LIMITED
    default_detail = "Rate limited by the exchange; retry shortly."


class UpstreamError(ApiError):
    status_code = 502
    default_code = ErrorCode.UPSTREAM_ERROR
    default_detail = "The exchange rejected the request."


class ExchangeUnavailable(ApiError):
    status_code = 503
    default_code = ErrorCode.EXCHANGE_UNAVAILABLE
    default_detail = "The exchange cannot be reached."


class InsufficientFunds(ApiError):
    status_code = 400
    default_code = ErrorCode.INSUFFICIENT_FUNDS
    default_detail = "Insufficient funds."


class RiskRejected(ApiError):
    status_code = 409
    default_code = ErrorCode.RISK_REJECTED
    default_detail = "Rejected by risk controls."


class Conflict(ApiError):
    status_code = 409
    default_code = ErrorCode.CONFLICT
    default_detail = "The request conflicts with the current state."


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message}}


def _flatten_validation(detail: Any, prefix: str = "") -> list[str]:
    """Turn DRF's nested validation detail into readable `field: message` lines."""
    if isinstance(detail, dict):
        lines: list[str] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            lines.extend(_flatten_validation(value, path))
        return lines
    if isinstance(detail, list):
        lines = []
        for item in detail:
            lines.extend(_flatten_validation(item, prefix))
        return lines
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def _field_errors(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {k: _field_errors(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_field_errors(v) for v in detail]
    return str(detail)


_CODE_FOR_DRF: list[tuple[type[Exception], str]] = [
    (drf.ValidationError, ErrorCode.VALIDATION_ERROR),
    (drf.ParseError, ErrorCode.VALIDATION_ERROR),
    (drf.UnsupportedMediaType, ErrorCode.VALIDATION_ERROR),
    (drf.NotAuthenticated, ErrorCode.AUTHENTICATION_REQUIRED),
    (drf.AuthenticationFailed, ErrorCode.AUTHENTICATION_REQUIRED),
    (drf.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (drf.NotFound, ErrorCode.NOT_FOUND),
    (drf.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (drf.NotAcceptable, ErrorCode.VALIDATION_ERROR),
    (drf.Throttled, ErrorCode.RATE_LIMITED),
]


def envelope_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: every error leaves in the envelope, never as a traceback."""
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, ApiError):
        response = Response(error_body(exc.error_code, str(exc.detail)), status=exc.status_code)
        return response

    if isinstance(exc, drf.APIException):
        from rest_framework.views import exception_handler as drf_exception_handler

        base = drf_exception_handler(exc, context)
        code = next((c for cls, c in _CODE_FOR_DRF if isinstance(exc, cls)), ErrorCode.UPSTREAM_ERROR)
        if isinstance(exc, drf.ValidationError):
            message = "; ".join(_flatten_validation(exc.detail)) or "Invalid request."
            body = error_body(code, message)
            if isinstance(exc.detail, dict):
                body["error"]["fields"] = _field_errors(exc.detail)
        else:
            body = error_body(code, str(exc.detail))
        status_code = base.status_code if base is not None else exc.status_code
        headers = dict(base.items()) if base is not None else {}
        return Response(body, status=status_code, headers=headers)

    view = context.get("view")
    request = context.get("request")
    logger.exception(
        "unhandled API error",
        extra={
            "event": "api_unhandled_error",
            "view": type(view).__name__ if view else None,
            "path": getattr(request, "path", None),
            "method": getattr(request, "method", None),
            "error_code": ErrorCode.INTERNAL_ERROR,
        },
    )
    return Response(
        error_body(ErrorCode.INTERNAL_ERROR, "Internal error; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def json_error(code: str, message: str, status_code: int) -> JsonResponse:
    """The envelope for responses produced outside DRF (404/500 handlers, middleware)."""
    return JsonResponse(error_body(code, message), status=status_code)
