"""Beat tasks: the UTC-midnight reset, and expiry of reservations whose order never reported."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from tests.risk.conftest import intent
from trading.risk import check_order, record_pnl, record_result, trading_state
from trading.risk.gate import expire_reservations, global_limits_row, utc_today
from trading.risk_tasks import daily_reset

pytestmark = pytest.mark.django_db


def test_yesterdays_notional_does_not_count_today(books: Any) -> None:
    from trading.risk_models import DailyUsage

    row = global_limits_row()
    row.max_daily_notional = D("1000")
    row.save()
    DailyUsage.objects.create(day=utc_today() - timedelta(days=1), scope="global", notional=D("1000"))
    check_order(intent())  # 680.01 of today's 1000


def test_the_daily_loss_pauses_the_desk_until_the_midnight_reset(books: Any, published: Any) -> None:
    from trading.risk_models import DailyUsage

    row = global_limits_row()
    row.max_daily_loss = D("100")
    row.save()
    record_pnl(D("-100"), ref="e1")
    state = trading_state()
    assert state.state == "reducing" and state.reason.startswith("daily realised loss for desk 100.00")
    # Midnight: the day's rows are keyed by date, so the new day starts at zero.
    DailyUsage.objects.filter(day=utc_today()).update(day=utc_today() - timedelta(days=1))
    assert daily_reset() == ["global"]
    assert trading_state().state == "active"
    check_order(intent())
    assert any(a["code"] == "RISK_DAILY_RESET" and "resumed global" in a["message"] for a in published.alerts())


def test_an_operator_pause_survives_the_reset() -> None:
    from trading.risk.gate import set_state

    set_state("pair:x", "halted", "daily checks by hand", user="olivia")
    assert daily_reset() == []
    assert trading_state("x").state == "halted"


def test_a_reservation_that_never_reports_expires(books: Any, published: Any) -> None:
    from trading.risk_models import RiskPosition, RiskReservation

    check_order(intent(client_order_id="lost"))
    assert expire_reservations() == 0  # not old yet
    RiskReservation.objects.update(created_at=RiskReservation.objects.get().created_at - timedelta(hours=1))
    assert expire_reservations() == 1
    p = RiskPosition.objects.get(exchange="binance", asset="BTC")
    assert (p.qty, p.pending_long, p.pending_short) == (0, 0, 0)
    assert any(a["code"] == "RISK_RESERVATION_EXPIRED" for a in published.alerts())
    record_result(intent(client_order_id="lost"), filled=D("0.01"), avg_price=D("68001"), ok=True)
    assert RiskPosition.objects.get(exchange="binance", asset="BTC").qty == 0  # settled already: not counted twice


def test_orders_without_client_ids_are_trued_up_by_shape(books: Any) -> None:
    from trading.risk_models import RiskPosition

    i = intent(plan_id="twap_001", purpose="twap")
    check_order(i)
    check_order(i)
    record_result(i, filled=D("0.01"), avg_price=D("68001"), ok=True)
    p = RiskPosition.objects.get(exchange="binance", asset="BTC")
    assert (p.qty, p.pending_long) == (D("0.01"), D("0.01"))
    record_result(i, filled=D(0), avg_price=None, ok=True)
    record_result(i, filled=D(0), avg_price=None, ok=True)  # nothing left to true up
    p.refresh_from_db()
    assert (p.qty, p.pending_long) == (D("0.01"), 0)
