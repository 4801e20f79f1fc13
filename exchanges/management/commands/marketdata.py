"""`python manage.py marketdata`: the long-running order-book process (SIGTERM/SIGINT stop it cleanly)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand

from exchanges.market_data import MarketData


class Command(BaseCommand):
    help = "Stream order books for every leg in use into Redis and publish price_update events."

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await MarketData().run(stop)
