"""TWAP API (`/api/twap/...`): thin views over the serializer, market checks and the scheduler."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from ccxt.base.decimal_to_precision import TICK_SIZE
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchanges.symbols import Exchange, Instrument, MarketType
from trading import pair_validation
from trading.views import DecimalJSONParser
from twap import scheduler
from twap.models import Plan
from twap.serializers import PlanSerializer, plan_detail_json, plan_fields, plan_json, status_json

logger = logging.getLogger("twap.api")


def _instrument(leg: dict[str, str]) -> Instrument:
    return Instrument(Exchange(leg["exchange"]), leg["symbol"], MarketType(leg["marketType"]))


def market_check(data: dict[str, Any]) -> list[str]:
    """Both symbols listed for their type; the slice at or above each venue's min amount and notional,
    on its lot step; the total on the lot step too (so the last slice, carrying the remainder, is)."""
    legs = [_instrument(leg) for leg in data["legs"]]
    result = pair_validation.check_pair(legs[0], legs[1], data["slice_qty"], Decimal("Infinity"))
    errors: dict[str, Any] = {}
    leg_errors: list[dict[str, list[str]]] = [{}, {}]
    for name, value in result.errors.items():
        if name in ("leg1", "leg2"):
            for field_name, messages in value.items():
                leg_errors[int(name[-1]) - 1].setdefault(field_name, []).extend(messages)
        elif name == "qty":
            errors.setdefault("sliceQty", []).extend(value)
    total = data["total_qty"]
    for check in result.legs:
        if check.market is None:
            continue
        step = pair_validation.amount_step(check.market, TICK_SIZE)
        amount = pair_validation.contracts_for(check.market, total)
        if step and amount % step != 0:
            errors.setdefault("totalQty", []).append(
                f"{check.leg} ({check.instrument.exchange} {check.instrument.symbol}): {total.normalize():f} is not a "
                f"multiple of the lot step {step.normalize():f}"
            )
    if any(leg_errors):
        errors["legs"] = leg_errors
    if errors:
        raise serializers.ValidationError(errors)
    return result.notes


class PlanListView(APIView):
    """`GET` every plan; `POST` a new one (validated against both markets) -> `{"planId": ...}`."""

    parser_classes = [DecimalJSONParser]

    def get(self, request: Request) -> Response:
        return Response([plan_json(p) for p in Plan.objects.all()])

    def post(self, request: Request) -> Response:
        body = PlanSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        notes = market_check(data)
        plan = scheduler.create_plan(plan_fields(data))
        logger.info("twap plan created", extra={"event": "twap_plan_created", "detail": {"planId": plan.plan_id}})
        out: dict[str, Any] = {"planId": plan.plan_id}
        if notes:
            out["warnings"] = notes
        return Response(out, status=status.HTTP_201_CREATED)


class PlanDetailView(APIView):
    """`GET` one plan with its slices and orders; `DELETE` it when it is not running."""

    def get(self, request: Request, plan_id: str) -> Response:
        return Response(plan_detail_json(scheduler.get_plan(plan_id)))

    def delete(self, request: Request, plan_id: str) -> Response:
        scheduler.delete_plan(plan_id)
        logger.info("twap plan deleted", extra={"event": "twap_plan_deleted", "detail": {"planId": plan_id}})
        return Response({"success": True})


class PlanStatusView(APIView):
    def get(self, request: Request, plan_id: str) -> Response:
        return Response(status_json(scheduler.get_plan(plan_id)))


class ControlSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[(a, a) for a in scheduler.ACTIONS])


class PlanControlView(APIView):
    """`POST {"action": "start"|"pause"|"resume"|"cancel"}` -> `{"success": true}`; CONFLICT when not allowed."""

    parser_classes = [DecimalJSONParser]

    def post(self, request: Request, plan_id: str) -> Response:
        body = ControlSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        scheduler.control(plan_id, body.validated_data["action"])
        return Response({"success": True})
