from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from exchanges.symbols import Instrument

logger = logging.getLogger("trading")


def enabled_pair_instruments() -> list[Instrument]:
    """Both legs of every enabled pair: what the market-data process must stream.

    The market-data loop calls instrument sources synchronously from its event loop, where
    the ORM refuses to run; the query then goes to a worker thread.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from trading.models import Pair

    def query() -> list[Instrument]:
        out: list[Instrument] = []
        for pair in Pair.objects.filter(enabled=True):
            out.extend((pair.leg1, pair.leg2))
        return out

    def query_in_thread() -> list[Instrument]:
        from django.db import connection

        try:
            return query()
        finally:
            connection.close()  # this thread's own connection; the thread ends here

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return query()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(query_in_thread).result(timeout=10)


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        # The market-data process streams every enabled pair's legs (lazy: no import cycle).
        try:
            from exchanges import market_data
        except ImportError:
            return
        register = getattr(market_data, "register_instrument_source", None)
        if register is not None:
            register(enabled_pair_instruments)
        # Opportunity detection: the record model, the `trading.poll_pairs` sweep, the book listener.
        from trading.detection import install

        install()
        # The risk gate: admin, beat tasks, and the abnormal-move book listener.
        from trading.risk import install as install_risk

        install_risk()
