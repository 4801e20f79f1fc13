"""`GET /api/monitoring/performance`: the performance monitor's view of the recent window."""

from __future__ import annotations

import redis
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite import monitor
from arbsite.errors import ApiError, ErrorCode


class MetricsUnavailable(ApiError):
    status_code = 503
    default_code = ErrorCode.INTERNAL_ERROR
    default_detail = "Metrics are unavailable: Redis cannot be reached."


class PerformanceView(APIView):
    """Figures over `PERF_WINDOW_SECONDS`, each with its threshold, breach flag and open-alert flag."""

    def get(self, request: Request) -> Response:
        try:
            return Response(monitor.report())
        except redis.RedisError as exc:
            raise MetricsUnavailable() from exc
