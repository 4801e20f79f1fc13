"""Request bodies of the Prices API."""

from __future__ import annotations

from rest_framework import serializers

BATCH_MAX_ITEMS = 20


class BookItemSerializer(serializers.Serializer):
    exchange = serializers.CharField(max_length=20)
    symbol = serializers.CharField(max_length=40)
    type = serializers.CharField(max_length=10, required=False, default="spot")


class BatchSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=BookItemSerializer(), allow_empty=False, max_length=BATCH_MAX_ITEMS,
    )
