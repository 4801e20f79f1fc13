"""Opportunity history and per-pair statistics (`/api/arbitrage/opportunities`, `/api/arbitrage/stats`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, DateTimeField, DurationField, ExpressionWrapper, F, Max, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.errors import ValidationFailed
from arbsite.pagination import positive_int
from trading.opportunity_models import Opportunity

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def _bool(value: str | None, name: str) -> bool | None:
    if value in (None, ""):
        return None
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValidationFailed(f"{name}: true or false")


def _num(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def opportunity_json(row: Opportunity, now: datetime) -> dict[str, Any]:
    end = row.ended_at or now
    return {
        "id": row.id,
        "episode": row.episode,
        "pairId": row.pair_key,
        "direction": row.direction,
        "detectedTs": _ms(row.detected_at),
        "endedTs": _ms(row.ended_at),
        "open": row.ended_at is None,
        "durationMs": max(0, int((end - row.detected_at).total_seconds() * 1000)),
        "qty": _num(row.qty),
        "topSpread": _num(row.top_spread),
        "topSpreadPercent": _num(row.top_spread_percent),
        "buyPrice": _num(row.buy_price),
        "sellPrice": _num(row.sell_price),
        "netEdge": _num(row.net_edge),
        "netEdgePercent": _num(row.net_edge_percent),
        "maxNetEdgePercent": _num(row.max_net_edge_percent),
        "lastNetEdgePercent": _num(row.last_net_edge_percent),
        "threshold": _num(row.threshold),
        "updates": row.updates,
        "venue": row.venue,
        "source": row.source,
        "endReason": row.end_reason,
    }


class OpportunityListView(APIView):
    """`GET /api/arbitrage/opportunities?pair=&open=&page=&pageSize=`, newest first."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        page = positive_int(params.get("page"), "page", 1)
        size = positive_int(params.get("pageSize"), "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        qs = Opportunity.objects.all()
        if params.get("pair"):
            qs = qs.filter(pair_key=params["pair"])
        is_open = _bool(params.get("open"), "open")
        if is_open is not None:
            qs = qs.filter(ended_at__isnull=is_open)
        total = qs.count()
        now = timezone.now()
        items = [opportunity_json(row, now) for row in qs[(page - 1) * size: page * size]]
        return Response({"items": items, "page": page, "pageSize": size, "total": total,
                         "pages": (total + size - 1) // size})


class OpportunityStatsView(APIView):
    """`GET /api/arbitrage/stats?pair=`: per pair, how often, how good and how long opportunities were."""

    def get(self, request: Request) -> Response:
        now = timezone.now()
        qs = Opportunity.objects.all()
        if request.query_params.get("pair"):
            qs = qs.filter(pair_key=request.query_params["pair"])
        open_for = ExpressionWrapper(
            Coalesce(F("ended_at"), Value(now, output_field=DateTimeField())) - F("detected_at"),
            output_field=DurationField(),
        )
        rows = (
            qs.values("pair_key")
            .annotate(
                count=Count("id"),
                open_count=Count("id", filter=Q(ended_at__isnull=True)),
                avg_edge=Avg("net_edge_percent"),
                max_edge=Max("max_net_edge_percent"),
                total_open=Sum(open_for),
                last_detected=Max("detected_at"),
            )
            .order_by("pair_key")
        )
        items = [
            {
                "pairId": row["pair_key"],
                "count": row["count"],
                "open": row["open_count"],
                "avgNetEdgePercent": _num(row["avg_edge"]),
                "maxNetEdgePercent": _num(row["max_edge"]),
                "totalOpenSeconds": row["total_open"].total_seconds() if row["total_open"] is not None else 0.0,
                "lastDetectedTs": _ms(row["last_detected"]),
            }
            for row in rows
        ]
        return Response(items)
