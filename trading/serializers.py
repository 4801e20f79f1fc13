"""Pair request bodies: the contract's camelCase shape, strict, Decimal all the way."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from exchanges.symbols import SymbolError, normalise_symbol, split_symbol
from trading.models import (
    PAIR_ID_MAX_LENGTH,
    PAIR_ID_PATTERN,
    THRESHOLD_MAX_PERCENT,
    DirectionChoice,
    ExchangeChoice,
    MarketTypeChoice,
    Pair,
)


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, so a typo (`treshold`) is an error, not a silent default."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class LegSerializer(StrictSerializer):
    exchange = serializers.ChoiceField(choices=ExchangeChoice.choices)
    symbol = serializers.CharField(max_length=32)
    type = serializers.ChoiceField(choices=MarketTypeChoice.choices)

    def validate_symbol(self, value: str) -> str:
        try:
            symbol = normalise_symbol(value)
            split_symbol(symbol)
        except SymbolError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return symbol


def _decimal(max_digits: int, decimal_places: int, **kwargs: Any) -> serializers.DecimalField:
    # JSON numbers arrive as Decimal (DecimalJSONParser) or strings; never stored as floats.
    return serializers.DecimalField(
        max_digits=max_digits, decimal_places=decimal_places, coerce_to_string=False, **kwargs
    )


class PairSerializer(StrictSerializer):
    id = serializers.RegexField(PAIR_ID_PATTERN, max_length=PAIR_ID_MAX_LENGTH, required=False)
    leg1 = LegSerializer()
    leg2 = LegSerializer()
    threshold = _decimal(12, 6)
    qty = _decimal(30, 12)
    totalAmount = _decimal(24, 8, source="total_amount")
    direction = serializers.ChoiceField(choices=DirectionChoice.choices, required=False, default=DirectionChoice.AUTO)
    enabled = serializers.BooleanField(required=False)
    autoExecute = serializers.BooleanField(source="auto_execute", required=False)

    def validate_threshold(self, value: Decimal) -> Decimal:
        if not Decimal(0) < value <= THRESHOLD_MAX_PERCENT:
            raise serializers.ValidationError(
                f"must be greater than 0 and at most {THRESHOLD_MAX_PERCENT} (a percent: 0.1 means 0.1 %)"
            )
        return value

    def validate_qty(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError("must be greater than 0")
        return value

    def validate_totalAmount(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError("must be greater than 0")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        leg1, leg2 = attrs["leg1"], attrs["leg2"]
        if (leg1["exchange"], leg1["symbol"], leg1["type"]) == (leg2["exchange"], leg2["symbol"], leg2["type"]):
            raise serializers.ValidationError({"leg2": ["must differ from leg1 (same exchange, symbol and type)"]})
        base1, quote1 = split_symbol(leg1["symbol"])
        base2, quote2 = split_symbol(leg2["symbol"])
        if base1 != base2:
            raise serializers.ValidationError(
                {"leg2": {"symbol": [f"trades {base2}, leg1 trades {base1}: both legs must trade the same asset"]}}
            )
        if quote1 != quote2:
            raise serializers.ValidationError(
                {"leg2": {"symbol": [f"is quoted in {quote2}, leg1 in {quote1}: spreads need one quote currency"]}}
            )
        return attrs


def leg_json(exchange: str, symbol: str, market_type: str) -> dict[str, str]:
    return {"exchange": exchange, "symbol": symbol, "type": market_type}


def pair_json(pair: Pair) -> dict[str, Any]:
    """The contract's pair config; Decimals leave as JSON numbers (the renderer's encoder)."""
    return {
        "id": pair.id,
        "leg1": leg_json(pair.leg1_exchange, pair.leg1_symbol, pair.leg1_type),
        "leg2": leg_json(pair.leg2_exchange, pair.leg2_symbol, pair.leg2_type),
        "threshold": pair.threshold.normalize(),
        "qty": pair.qty.normalize(),
        "totalAmount": pair.total_amount.normalize(),
        "direction": pair.direction,
        "enabled": pair.enabled,
        "autoExecute": pair.auto_execute,
        "createdAt": pair.created_at.isoformat() if pair.created_at else None,
        "updatedAt": pair.updated_at.isoformat() if pair.updated_at else None,
    }
