"""The stored record of one order sent to a venue, shared by arbitrage legs and TWAP slices."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from exchanges.venues import OrderResult


class VenueOrderRecord(models.Model):
    """What we asked a venue for, and what it answered. Concrete models add their owner, the client
    order id and the `state` field (whose values include every `OrderStatus` value)."""

    leg = models.PositiveSmallIntegerField()
    exchange = models.CharField(max_length=16)
    symbol = models.CharField(max_length=32)
    market_type = models.CharField(max_length=8)
    side = models.CharField(max_length=4)
    order_type = models.CharField(max_length=8)
    qty = models.DecimalField(max_digits=30, decimal_places=12)
    price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    exchange_order_id = models.CharField(max_length=64, blank=True)
    filled_qty = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    avg_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    fee = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal(0))
    fee_currency = models.CharField(max_length=16, blank=True)
    paper = models.BooleanField(default=False)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    state: models.CharField

    class Meta:
        abstract = True

    def apply(self, result: OrderResult) -> None:
        """Copy the venue's answer onto the record (the caller saves)."""
        self.state = result.status.value
        self.exchange_order_id = result.order_id or ""
        self.filled_qty = result.filled
        self.avg_price = result.average
        self.fee = result.fee
        self.fee_currency = result.fee_currency or ""
        self.paper = result.paper
