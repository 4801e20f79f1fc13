"""Risk beat tasks (thin wrappers): the UTC-midnight daily reset, breaker half-open, kill cancels.

Beat entries the lead adds to `CELERY_BEAT_SCHEDULE`:

    "risk-daily-reset": {"task": "trading.risk_daily_reset", "schedule": crontab(minute=0, hour=0)},  # UTC
    "risk-breakers": {"task": "trading.risk_half_open_breakers", "schedule": 15.0},
    "risk-reservations": {"task": "trading.risk_expire_reservations", "schedule": 60.0},
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from celery import shared_task

from arbsite.celery import Queue

logger = logging.getLogger("trading.risk")

USAGE_KEEP_DAYS = 90


def daily_reset() -> list[str]:
    """UTC midnight: today's usage starts at zero (rows are keyed by day); lift the daily-loss pauses.

    Also prunes usage older than `USAGE_KEEP_DAYS` and alerts older than `RISK_ALERT_KEEP_DAYS`.
    Returns the scopes whose daily pause was lifted.
    """
    from django.conf import settings
    from django.utils import timezone

    from trading.risk.alerts import raise_alert
    from trading.risk.gate import GLOBAL, set_state, utc_today
    from trading.risk_models import Alert, DailyUsage, State, TradingState

    today = utc_today()
    DailyUsage.objects.get_or_create(day=today, scope=GLOBAL)
    DailyUsage.objects.filter(day__lt=today - timedelta(days=USAGE_KEEP_DAYS)).delete()
    keep = int(getattr(settings, "RISK_ALERT_KEEP_DAYS", 30))
    Alert.objects.filter(at__lt=timezone.now() - timedelta(days=keep)).delete()
    lifted = list(TradingState.objects.filter(automatic=True, reason__startswith="daily")
                  .exclude(state=State.ACTIVE).values_list("scope", flat=True))
    for scope in lifted:
        set_state(scope, State.ACTIVE, "", source="engine")
    raise_alert("info", "RISK_DAILY_RESET", f"daily notional and loss limits reset for {today} (UTC)"
                + (f"; resumed {', '.join(lifted)}" if lifted else ""))
    return lifted


@shared_task(name="trading.risk_daily_reset", ignore_result=True)
def risk_daily_reset() -> list[str]:
    return daily_reset()


@shared_task(name="trading.risk_expire_reservations", ignore_result=True)
def risk_expire_reservations() -> int:
    from trading.risk.gate import expire_reservations

    return expire_reservations()


@shared_task(name="trading.risk_half_open_breakers", ignore_result=True)
def risk_half_open_breakers() -> list[str]:
    from trading.risk import breaker

    return breaker.half_open_due()


def cancel_open_orders() -> int:
    """Kill switch: cancel every order still working at a venue (execution orders are IOC; this is the net)."""
    from exchanges.symbols import Exchange, Instrument, MarketType
    from exchanges.venues import venue_for
    from trading.execution_models import ExecutionOrder, OrderState

    open_orders = list(ExecutionOrder.objects.filter(state__in=[OrderState.OPEN, OrderState.SENDING]))
    if not open_orders:
        return 0

    async def run() -> int:
        venues = {}
        cancelled = 0
        try:
            for order in open_orders:
                exchange = Exchange(order.exchange)
                if exchange not in venues:
                    venues[exchange] = venue_for(exchange)
                inst = Instrument(exchange, order.symbol, MarketType(order.market_type))
                try:
                    await asyncio.wait_for(venues[exchange].cancel_order(inst, order.client_order_id), timeout=8)
                    cancelled += 1
                except Exception:
                    logger.exception("kill: cancel failed", extra={"event": "kill_cancel_failed",
                                                                   "exchange": order.exchange})
        finally:
            await asyncio.gather(*(v.close() for v in venues.values()), return_exceptions=True)
        return cancelled

    return asyncio.run(run())


@shared_task(name="trading.risk_cancel_open_orders", ignore_result=True)
def risk_cancel_open_orders() -> int:
    return cancel_open_orders()


def enqueue_cancel_open_orders() -> None:
    try:
        risk_cancel_open_orders.apply_async(queue=Queue.EXECUTION.value)
    except Exception:
        logger.exception("kill: cancel task not queued", extra={"event": "kill_cancel_not_queued"})
