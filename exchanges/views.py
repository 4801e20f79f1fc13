"""Prices and Exchanges API: thin views over `prices` and `status`."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.async_api import api_view
from arbsite.errors import ApiError, NotFound
from exchanges import prices, status
from exchanges.serializers import BatchSerializer


@api_view("GET")
async def price_view(request: HttpRequest, exchange: str, symbol: str) -> dict[str, Any]:
    """`GET /api/prices/{exchange}/{symbol}?type=spot|linear`: one order book.

    A native async view (polled hard: the cache hit never leaves the event loop).
    """
    instrument = prices.parse_instrument(exchange, symbol, request.GET.get("type"))
    return await prices.aget_book(instrument, request)


class PriceBatchView(APIView):
    """`POST /api/prices/batch`: up to 20 books; a failing item carries its own error."""

    def post(self, request: Request) -> Response:
        body = BatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items: list[dict[str, Any]] = body.validated_data["items"]
        parsed: list[Any] = []
        for item in items:
            try:
                parsed.append(prices.parse_instrument(item["exchange"], item["symbol"], item.get("type")))
            except ApiError as exc:
                parsed.append(exc)
        results = prices.get_books(parsed)
        out: list[dict[str, Any]] = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, ApiError):
                out.append({
                    "exchange": item["exchange"],
                    "symbol": item["symbol"],
                    "type": item.get("type", "spot"),
                    "error": {"code": result.error_code, "message": str(result.detail)},
                })
            else:
                out.append(result)
        return Response(out)


class ExchangeListView(APIView):
    """`GET /api/exchanges`: every supported exchange's connectivity and stream health."""

    def get(self, request: Request) -> Response:
        return Response(status.all_exchange_statuses())


class ExchangeDetailView(APIView):
    """`GET /api/exchanges/{name}`."""

    def get(self, request: Request, name: str) -> Response:
        for entry in status.all_exchange_statuses():
            if entry["name"] == name.lower():
                return Response(entry)
        raise NotFound(f"unknown exchange {name!r}; valid: {', '.join(status.supported_exchanges())}")
