"""TWAP plan bodies (the contract's camelCase, strict, Decimal all the way) and response shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from rest_framework import serializers

from exchanges.symbols import SymbolError, normalise_symbol, split_symbol
from trading.models import ExchangeChoice, MarketTypeChoice
from trading.serializers import StrictSerializer
from twap.models import Plan, Progress, Slice

SIDES = (("buy", "buy"), ("sell", "sell"))
ORDER_TYPES = (("market", "market"), ("limit", "limit (IOC within the slippage cap)"))


def min_interval_ms() -> int:
    """Slices closer than this would overlap a slice's own round trip (and hammer the venues)."""
    return int(getattr(settings, "TWAP_MIN_INTERVAL_MS", 1000))


def max_slices() -> int:
    return int(getattr(settings, "TWAP_MAX_SLICES", 1000))


def _decimal(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=30, decimal_places=12, coerce_to_string=False, **kwargs)


class TwapLegSerializer(StrictSerializer):
    exchange = serializers.ChoiceField(choices=ExchangeChoice.choices)
    symbol = serializers.CharField(max_length=32)
    side = serializers.ChoiceField(choices=SIDES)
    type = serializers.ChoiceField(choices=ORDER_TYPES, required=False, default="market")
    marketType = serializers.ChoiceField(choices=MarketTypeChoice.choices, required=False, default="spot")

    def validate_symbol(self, value: str) -> str:
        try:
            symbol = normalise_symbol(value)
            split_symbol(symbol)
        except SymbolError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return symbol


class PlanSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    totalQty = _decimal(source="total_qty")
    sliceQty = _decimal(source="slice_qty")
    intervalMs = serializers.IntegerField(source="interval_ms")
    legs = serializers.ListField(child=TwapLegSerializer(), min_length=2, max_length=2)
    maxSpreadPercent = _decimal(source="max_spread_percent", required=False, allow_null=True)
    spreadWaitMs = serializers.IntegerField(source="spread_wait_ms", required=False, min_value=0)

    def validate_totalQty(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError("must be greater than 0")
        return value

    def validate_sliceQty(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError("must be greater than 0")
        return value

    def validate_intervalMs(self, value: int) -> int:
        floor = min_interval_ms()
        if value < floor:
            raise serializers.ValidationError(f"must be at least {floor} ms")
        if value > 86_400_000:
            raise serializers.ValidationError("must be at most one day (86400000 ms)")
        return value

    def validate_maxSpreadPercent(self, value: Decimal | None) -> Decimal | None:
        if value is not None and not Decimal(-100) < value < Decimal(100):
            raise serializers.ValidationError("must be a percent between -100 and 100")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        total, slice_qty = attrs["total_qty"], attrs["slice_qty"]
        if total < slice_qty:
            raise serializers.ValidationError({"totalQty": [f"must be at least sliceQty ({slice_qty.normalize():f})"]})
        if total / slice_qty > max_slices():
            raise serializers.ValidationError({"sliceQty": [f"makes more than {max_slices()} slices; use larger slices"]})
        leg1, leg2 = attrs["legs"]
        if (leg1["exchange"], leg1["symbol"], leg1["marketType"]) == (leg2["exchange"], leg2["symbol"],
                                                                      leg2["marketType"]):
            raise serializers.ValidationError({"legs": [{}, {"symbol": ["must differ from leg 1 (same market)"]}]})
        if split_symbol(leg1["symbol"])[0] != split_symbol(leg2["symbol"])[0]:
            raise serializers.ValidationError(
                {"legs": [{}, {"symbol": ["must trade the same asset as leg 1 (quantities are base units)"]}]}
            )
        if attrs.get("max_spread_percent") is not None and leg1["side"] == leg2["side"]:
            raise serializers.ValidationError(
                {"maxSpreadPercent": ["needs one buy leg and one sell leg (it bounds buy price against sell price)"]}
            )
        return attrs


def plan_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Validated body -> Plan model fields."""
    fields: dict[str, Any] = {
        "name": data["name"],
        "total_qty": data["total_qty"],
        "slice_qty": data["slice_qty"],
        "interval_ms": data["interval_ms"],
        "max_spread_percent": data.get("max_spread_percent"),
    }
    if "spread_wait_ms" in data:
        fields["spread_wait_ms"] = data["spread_wait_ms"]
    for n, leg in enumerate(data["legs"], start=1):
        fields.update({
            f"leg{n}_exchange": leg["exchange"], f"leg{n}_symbol": leg["symbol"],
            f"leg{n}_market_type": leg["marketType"], f"leg{n}_side": leg["side"], f"leg{n}_order_type": leg["type"],
        })
    return fields


# --------------------------------------------------------------------------- responses


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _ms(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def progress_json(progress: Progress) -> dict[str, Any]:
    return {
        "executed": float(progress.executed),
        "remaining": float(progress.remaining),
        "slicesDone": progress.slices_done,
        "slicesTotal": progress.slices_total,
    }


def legs_json(plan: Plan, progress: Progress) -> list[dict[str, Any]]:
    out = []
    for n, leg_progress in ((1, progress.leg1), (2, progress.leg2)):
        out.append({
            **plan.leg(n),
            "executed": float(leg_progress.executed),
            "avgPrice": _num(leg_progress.avg_price),
            "fees": float(leg_progress.fees),
        })
    return out


def status_json(plan: Plan) -> dict[str, Any]:
    """The contract's status body, plus per-leg executed quantity and average price."""
    progress = plan.progress()
    return {
        "planId": plan.plan_id,
        "progress": progress_json(progress),
        "state": plan.state,
        "stateReason": plan.state_reason or None,
        "lastExecutionTs": _ms(plan.last_execution_at),
        "legs": legs_json(plan, progress),
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    progress = plan.progress()
    return {
        "planId": plan.plan_id,
        "name": plan.name,
        "totalQty": float(plan.total_qty),
        "sliceQty": float(plan.slice_qty),
        "intervalMs": plan.interval_ms,
        "maxSpreadPercent": _num(plan.max_spread_percent),
        "spreadWaitMs": plan.spread_wait_ms,
        "legs": legs_json(plan, progress),
        "state": plan.state,
        "stateReason": plan.state_reason or None,
        "progress": progress_json(progress),
        "lastExecutionTs": _ms(plan.last_execution_at),
        "createdTs": _ms(plan.created_at),
        "startedTs": _ms(plan.started_at),
        "finishedTs": _ms(plan.finished_at),
    }


def slice_json(s: Slice) -> dict[str, Any]:
    return {
        "index": s.index,
        "qty": float(s.qty),
        "catchUp": s.catch_up,
        "state": s.state,
        "dueTs": _ms(s.due_at),
        "startedTs": _ms(s.claimed_at),
        "finishedTs": _ms(s.finished_at),
        "attempts": s.attempts,
        "deferrals": s.deferrals,
        "note": s.note or None,
        "orders": [
            {
                "leg": o.leg,
                "clientOrderId": o.client_order_id,
                "orderId": o.exchange_order_id or None,
                "exchange": o.exchange,
                "symbol": o.symbol,
                "side": o.side,
                "type": o.order_type,
                "qty": float(o.qty),
                "status": o.state,
                "filledQty": float(o.filled_qty),
                "avgPrice": _num(o.avg_price),
                "fee": float(o.fee),
                "paper": o.paper,
                "error": {"code": o.error_code, "message": o.error_message} if o.error_code else None,
            }
            for o in s.orders.all()
        ],
    }


def plan_detail_json(plan: Plan) -> dict[str, Any]:
    body = plan_json(plan)
    body["slices"] = [slice_json(s) for s in plan.slices.prefetch_related("orders").order_by("index")]
    return body
