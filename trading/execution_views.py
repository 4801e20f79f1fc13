"""Arbitrage execution API: manual execute, execution history, net exposure."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.errors import NotFound, ValidationFailed
from arbsite.pagination import positive_int
from exchanges.models import AuditAction, AuditRecord
from trading.execution import create_execution, error_for, execute, execution_response, net_exposure
from trading.execution_models import Execution, ExecutionState
from trading.models import Pair

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class ExecuteView(APIView):
    """Run both legs inline (bounded by the leg timeouts) so the answer carries both results."""

    def post(self, request: Request, pair_id: str) -> Response:
        pair = Pair.objects.filter(id=pair_id).first()
        if pair is None:
            raise NotFound(f"pair {pair_id} not found")
        execution = create_execution(pair)
        finished = execute(execution.id)
        if finished is None:
            raise NotFound(f"execution {execution.id} disappeared")
        AuditRecord.record(
            AuditAction.MANUAL_EXECUTION,
            request=request,
            pair_id=pair_id,
            detail={"executionId": finished.id, "state": str(finished.state), "paper": bool(finished.paper)},
        )
        if finished.state in (ExecutionState.REJECTED, ExecutionState.FAILED):
            raise error_for(finished)
        return Response(execution_response(finished))


class ExecutionListView(APIView):
    """`GET /api/arbitrage/executions?pair=&state=&page=&pageSize=`, newest first."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        page = positive_int(params.get("page"), "page", 1)
        size = positive_int(params.get("pageSize"), "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        qs = Execution.objects.all().prefetch_related("orders", "leg_risk_steps")
        if params.get("pair"):
            qs = qs.filter(pair_key=params["pair"])
        if params.get("state"):
            if params["state"] not in ExecutionState.values:
                raise ValidationFailed(f"state: one of {', '.join(ExecutionState.values)}")
            qs = qs.filter(state=params["state"])
        total = qs.count()
        items = [execution_response(e) for e in qs[(page - 1) * size: page * size]]
        body: dict[str, Any] = {"items": items, "page": page, "pageSize": size, "total": total,
                                "pages": (total + size - 1) // size}
        return Response(body)


class ExecutionDetailView(APIView):
    def get(self, request: Request, execution_id: int) -> Response:
        execution = Execution.objects.filter(pk=execution_id).first()
        if execution is None:
            raise NotFound(f"execution {execution_id} not found")
        return Response(execution_response(execution))


class ExposureView(APIView):
    """Net filled position per venue and per asset; one-sided exposure is listed apart."""

    def get(self, request: Request) -> Response:
        return Response(net_exposure())
