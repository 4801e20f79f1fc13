"""Opportunity records: one row per opportunity episode, for history and statistics.

An episode starts when a pair's executable net edge first passes its threshold in one
direction and ends when it stops passing (or flips direction, which starts a new one).
The row is written when the episode opens and updated when it ends, never once per tick.
`episode` is the id the detector generated for it, so writes from the market-data process
and the beat sweep converge on one row whatever order they land in.
"""

from __future__ import annotations

from django.db import models


class DetectionSource(models.TextChoices):
    STREAM = "stream", "Order-book stream (event-driven)"
    SWEEP = "sweep", "Beat sweep (cached or REST books)"


class Opportunity(models.Model):
    episode = models.CharField(max_length=32, unique=True, help_text="Detector-generated episode id.")
    pair = models.ForeignKey(
        "trading.Pair", null=True, blank=True, on_delete=models.SET_NULL, related_name="opportunities"
    )
    pair_key = models.CharField(max_length=64, db_index=True, help_text="The pair id, kept when the pair is deleted.")
    direction = models.CharField(max_length=24)
    detected_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the opportunity persists.")
    qty = models.DecimalField(max_digits=30, decimal_places=12)
    # Best-price spread at detection, shown for context; decisions use the executable edge below.
    top_spread = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    top_spread_percent = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    buy_price = models.DecimalField(max_digits=30, decimal_places=12)
    sell_price = models.DecimalField(max_digits=30, decimal_places=12)
    net_edge = models.DecimalField(max_digits=30, decimal_places=12, help_text="Quote PnL for qty after fees.")
    net_edge_percent = models.DecimalField(max_digits=20, decimal_places=10, help_text="At detection.")
    max_net_edge_percent = models.DecimalField(max_digits=20, decimal_places=10)
    last_net_edge_percent = models.DecimalField(max_digits=20, decimal_places=10)
    threshold = models.DecimalField(max_digits=12, decimal_places=6)
    updates = models.PositiveIntegerField(default=1, help_text="Book updates that saw it passing.")
    venue = models.CharField(max_length=16, default="live", help_text="live | emulator")
    source = models.CharField(max_length=8, choices=DetectionSource.choices, default=DetectionSource.STREAM)
    end_reason = models.CharField(max_length=200, blank=True)

    objects: models.Manager[Opportunity] = models.Manager()

    class Meta:
        ordering = ["-detected_at", "-id"]
        indexes = [models.Index(fields=["pair_key", "-detected_at"], name="opportunity_pair_recent")]

    def __str__(self) -> str:
        return f"{self.pair_key} {self.direction} {self.net_edge_percent}% at {self.detected_at:%Y-%m-%d %H:%M:%S}"

    @property
    def open(self) -> bool:
        return self.ended_at is None
