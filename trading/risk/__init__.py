"""The risk engine: one gate every order passes before it reaches a venue.

The stable API (TWAP, execution and manual orders call these):

    from trading.risk import OrderIntent, Purpose, check_order, check_orders, record_result, release, trading_state

- `check_orders([OrderIntent, ...])` raises `arbsite.errors.RiskRejected(reason)` or reserves
  exposure for all of them (all-or-nothing: pass both legs of a slice together);
  `check_order(intent)` for one.
- `record_result(intent, filled=, avg_price=, ok=, error_code=, message=, final=True)` after the
  venue answered (trues up the reservation, feeds the breakers); `release(intent)` if never sent.

Give every intent its deterministic `client_order_id`: a rerun then reserves once and its
result is counted once. Give `balances` (the venue's free balances) when you have them; else
the gate reads them itself (not possible from inside a running event loop: rejected). An
order that never reports is released by the `trading.risk_expire_reservations` sweep.
- `record_pnl(amount, pair_id=, plan_id=, ref=)` for realised PnL (daily loss, PnL guard).
- `trading_state(pair_id=None, exchange=None)` -> ScopeState(scope, state, reason).

Pure checks live in `checks` (no Django), the breaker state machine in `breaker`, alerts in
`alerts`. The per-exchange request budget, backoff and ban halt are the exchange layer's
(`exchanges.throttle`); `install()` registers what a ban means here: the exchange scope halted.
"""

from __future__ import annotations

from trading.risk.gate import (
    OrderIntent,
    Purpose,
    ScopeState,
    check_order,
    check_orders,
    clear_kill_switch,
    engage_kill_switch,
    on_kill,
    record_pnl,
    record_result,
    release,
    trading_state,
)

__all__ = [
    "OrderIntent",
    "Purpose",
    "ScopeState",
    "check_order",
    "check_orders",
    "clear_kill_switch",
    "engage_kill_switch",
    "install",
    "on_kill",
    "pause_banned_exchange",
    "record_pnl",
    "record_result",
    "release",
    "trading_state",
]


def pause_banned_exchange(exchange: str, reason: str, seconds: float) -> None:
    """`exchanges.throttle` ban handler: halt the exchange scope until the ban ends, with a critical alert.

    Runs in a worker thread of the throttle's loop, so it closes that thread's database connection.
    """
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from trading.risk.gate import exchange_scope, pause

    try:
        pause(exchange_scope(exchange), reason, check="throttle", exchange=exchange, state="halted",
              until=timezone.now() + timedelta(seconds=seconds), severity="critical")
    finally:
        connection.close()


def install() -> None:
    """From `TradingConfig.ready()` (web, Celery workers, the marketdata command: every process that
    sets Django up): the ban handler, admin, beat tasks, and the abnormal-move book listener."""
    import importlib

    from exchanges import throttle

    throttle.on_ban(pause_banned_exchange)

    importlib.import_module("trading.risk_admin")
    importlib.import_module("trading.risk_tasks")
    from trading.risk import prices

    prices.install()
    # Performance alerts (arbsite.monitor) join the stored alert history.
    from arbsite import monitor
    from trading.risk.alerts import store_performance_alert

    monitor.register_alert_sink(store_performance_alert)
