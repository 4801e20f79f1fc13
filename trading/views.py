"""Pairs API (`/api/monitoring/pairs`): thin views over the serializer, market checks and the model."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.errors import Conflict, NotFound
from exchanges.symbols import Exchange, Instrument, MarketType
from trading import pair_validation
from trading.models import Pair, suggest_pair_id, unique_pair_id
from trading.serializers import PairSerializer, pair_json

logger = logging.getLogger("trading.pairs")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


class DecimalJSONParser(JSONParser):
    """JSON numbers become Decimal at parse time: `0.1` is never a binary float on its way in."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(stream.read().decode(encoding), parse_float=Decimal, parse_constant=_no_constants)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


def _instrument(leg: dict[str, str]) -> Instrument:
    return Instrument(Exchange(leg["exchange"]), leg["symbol"], MarketType(leg["type"]))


def _validated(request: Request) -> dict[str, Any]:
    body = PairSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def _market_check(data: dict[str, Any]) -> list[str]:
    """Exchange-side checks; field errors become VALIDATION_ERROR, outages propagate as theirs."""
    result = pair_validation.check_pair(
        _instrument(data["leg1"]), _instrument(data["leg2"]), data["qty"], data["total_amount"]
    )
    if not result.ok:
        raise serializers.ValidationError(result.errors)
    return result.notes


def _apply(pair: Pair, data: dict[str, Any]) -> None:
    for n in (1, 2):
        leg = data[f"leg{n}"]
        setattr(pair, f"leg{n}_exchange", leg["exchange"])
        setattr(pair, f"leg{n}_symbol", leg["symbol"])
        setattr(pair, f"leg{n}_type", leg["type"])
    pair.threshold = data["threshold"]
    pair.qty = data["qty"]
    pair.total_amount = data["total_amount"]
    pair.direction = data["direction"]
    if "enabled" in data:
        pair.enabled = data["enabled"]
    if "auto_execute" in data:
        pair.auto_execute = data["auto_execute"]


def _get(pair_id: str) -> Pair:
    try:
        return Pair.objects.get(id=pair_id)
    except Pair.DoesNotExist:
        raise NotFound(f"pair {pair_id!r} not found") from None


def _with_notes(body: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    if notes:
        body["warnings"] = notes
    return body


class PairListView(APIView):
    """`GET` every pair; `POST` a new one (market-checked) -> `{"id": ...}`."""

    parser_classes = [DecimalJSONParser]

    def get(self, request: Request) -> Response:
        return Response([pair_json(p) for p in Pair.objects.all()])

    def post(self, request: Request) -> Response:
        data = _validated(request)
        requested_id = data.get("id")
        if requested_id and Pair.objects.filter(id=requested_id).exists():
            raise Conflict(f"pair {requested_id!r} already exists")
        notes = _market_check(data)
        pair = Pair()
        _apply(pair, data)
        pair.enabled = data.get("enabled", True)
        pair.auto_execute = data.get("auto_execute", False)
        base_id = requested_id or suggest_pair_id(pair.leg1, pair.leg2)
        for _attempt in range(3):
            pair.id = requested_id or unique_pair_id(base_id)
            try:
                with transaction.atomic():
                    pair.save(force_insert=True)
                break
            except IntegrityError:
                if requested_id:
                    raise Conflict(f"pair {requested_id!r} already exists") from None
        else:
            raise Conflict("could not allocate a pair id; retry")
        logger.info("pair created", extra={"event": "pair_created", "pairId": pair.id})
        return Response(_with_notes({"id": pair.id}, notes), status=status.HTTP_201_CREATED)


class PairDetailView(APIView):
    """`GET`, `PUT` (full body) and `DELETE` one pair."""

    parser_classes = [DecimalJSONParser]

    def get(self, request: Request, pair_id: str) -> Response:
        return Response(pair_json(_get(pair_id)))

    def put(self, request: Request, pair_id: str) -> Response:
        pair = _get(pair_id)
        data = _validated(request)
        if data.get("id") not in (None, pair_id):
            raise serializers.ValidationError({"id": ["cannot be changed (it is the pair's key)"]})
        before = (pair.leg1, pair.leg2, pair.qty, pair.total_amount)
        _apply(pair, data)
        notes: list[str] = []
        # Toggling enabled or the threshold must work during an exchange outage: only a change
        # to what is traded is checked against the markets again.
        if (pair.leg1, pair.leg2, pair.qty, pair.total_amount) != before:
            notes = _market_check(data)
        pair.save()
        logger.info("pair updated", extra={"event": "pair_updated", "pairId": pair.id})
        return Response(_with_notes(pair_json(pair), notes))

    def delete(self, request: Request, pair_id: str) -> Response:
        pair = _get(pair_id)
        try:
            pair.delete()
        except ProtectedError:
            raise Conflict(f"pair {pair_id!r} has execution history; disable it instead") from None
        logger.info("pair deleted", extra={"event": "pair_deleted", "pairId": pair_id})
        return Response({"success": True})
