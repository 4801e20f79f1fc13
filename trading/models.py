"""Pairs: the two legs the desk watches and trades against each other."""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from exchanges.symbols import Exchange, Instrument, MarketType, SymbolError, split_symbol


class ExchangeChoice(models.TextChoices):
    """Mirrors `exchanges.symbols.Exchange` (checked in tests)."""

    BINANCE = Exchange.BINANCE.value, "Binance"
    BYBIT = Exchange.BYBIT.value, "Bybit"
    OKX = Exchange.OKX.value, "OKX"
    BITGET = Exchange.BITGET.value, "Bitget"


class MarketTypeChoice(models.TextChoices):
    """Mirrors `exchanges.symbols.MarketType`."""

    SPOT = MarketType.SPOT.value, "Spot"
    LINEAR = MarketType.LINEAR.value, "Linear perpetual (USDT-margined)"


class DirectionChoice(models.TextChoices):
    """Mirrors `trading.spreads.Direction`."""

    AUTO = "auto", "Auto (whichever side is profitable)"
    LEG1_BUY_LEG2_SELL = "leg1_buy_leg2_sell", "Buy leg 1, sell leg 2"
    LEG1_SELL_LEG2_BUY = "leg1_sell_leg2_buy", "Sell leg 1, buy leg 2"


PAIR_ID_MAX_LENGTH = 64
PAIR_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
# Thresholds are a percent spread; above this it is a typo (50 for 0.5), not a strategy.
THRESHOLD_MAX_PERCENT = Decimal(50)


class Pair(models.Model):
    id = models.CharField(
        primary_key=True,
        max_length=PAIR_ID_MAX_LENGTH,
        validators=[RegexValidator(PAIR_ID_PATTERN, "lowercase letters, digits, '_' and '-' only")],
        help_text="Slug such as bybit_binance_btc; generated from the legs when left empty.",
    )
    leg1_exchange = models.CharField(max_length=16, choices=ExchangeChoice.choices)
    leg1_symbol = models.CharField(max_length=32, help_text="Contract symbol, e.g. BTCUSDT")
    leg1_type = models.CharField(max_length=8, choices=MarketTypeChoice.choices)
    leg2_exchange = models.CharField(max_length=16, choices=ExchangeChoice.choices)
    leg2_symbol = models.CharField(max_length=32)
    leg2_type = models.CharField(max_length=8, choices=MarketTypeChoice.choices)
    threshold = models.DecimalField(
        max_digits=12, decimal_places=6, help_text="Minimum net spread in percent (0.1 means 0.1 %)."
    )
    qty = models.DecimalField(
        max_digits=30,
        decimal_places=12,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Base-asset quantity per execution, per leg.",
    )
    total_amount = models.DecimalField(
        max_digits=24,
        decimal_places=8,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Cap on the quote notional (USDT) the pair may have deployed.",
    )
    direction = models.CharField(max_length=24, choices=DirectionChoice.choices, default=DirectionChoice.AUTO)
    enabled = models.BooleanField(default=True)
    auto_execute = models.BooleanField(
        default=False, help_text="Execute automatically when an opportunity passes the risk checks."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gt=0), name="pair_threshold_positive"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="pair_qty_positive"),
            models.CheckConstraint(condition=Q(total_amount__gt=0), name="pair_total_amount_positive"),
            models.CheckConstraint(
                condition=~Q(leg1_exchange=F("leg2_exchange"), leg1_symbol=F("leg2_symbol"), leg1_type=F("leg2_type")),
                name="pair_legs_differ",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id}: {self.leg1.key} / {self.leg2.key}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.id:
            self.id = unique_pair_id(suggest_pair_id(self.leg1, self.leg2))
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def leg1(self) -> Instrument:
        return Instrument(Exchange(self.leg1_exchange), self.leg1_symbol, MarketType(self.leg1_type))

    @property
    def leg2(self) -> Instrument:
        return Instrument(Exchange(self.leg2_exchange), self.leg2_symbol, MarketType(self.leg2_type))

    def clean(self) -> None:
        """Model-level checks the admin shares with the API (market checks live in pair_validation)."""
        errors: dict[str, str] = {}
        if self.threshold is not None and not Decimal(0) < self.threshold <= THRESHOLD_MAX_PERCENT:
            errors["threshold"] = f"must be > 0 and at most {THRESHOLD_MAX_PERCENT} (percent)"
        if self.qty is not None and self.qty <= 0:
            errors["qty"] = "must be greater than 0"
        if self.total_amount is not None and self.total_amount <= 0:
            errors["total_amount"] = "must be greater than 0"
        if (self.leg1_exchange, self.leg1_symbol, self.leg1_type) == (
            self.leg2_exchange,
            self.leg2_symbol,
            self.leg2_type,
        ):
            errors["leg2_symbol"] = "leg 2 must differ from leg 1"
        if errors:
            raise ValidationError(errors)


def suggest_pair_id(leg1: Instrument, leg2: Instrument) -> str:
    """`bybit_binance_btc`; types are spelled out when both legs are on one exchange."""
    try:
        base = split_symbol(leg1.symbol)[0].lower()
    except SymbolError:
        base = leg1.symbol.lower()
    if leg1.exchange == leg2.exchange:
        parts = [leg1.exchange.value, leg1.type.value, leg2.type.value, base]
    else:
        parts = [leg1.exchange.value, leg2.exchange.value, base]
    slug = re.sub(r"[^a-z0-9_-]", "", "_".join(parts))
    return slug[: PAIR_ID_MAX_LENGTH - 4]


def unique_pair_id(base: str) -> str:
    """`base`, else `base_2`, `base_3`, ... (the first that is free)."""
    if not Pair.objects.filter(id=base).exists():
        return base
    taken = set(Pair.objects.filter(id__startswith=f"{base}_").values_list("id", flat=True))
    n = 2
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"

# Execution records live in their own module; importing them here registers them with the app.
from trading.execution_models import *  # noqa: E402, F403
from trading.opportunity_models import *  # noqa: E402, F403
from trading.risk_models import *  # noqa: E402, F403
