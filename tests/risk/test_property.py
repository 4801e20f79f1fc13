"""Property: no sequence of orders, batches and partial fills pushes a position or the day's notional past its limit."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbsite.errors import RiskRejected
from tests.risk.conftest import intent
from trading.risk import check_orders, record_result
from trading.risk.gate import global_limits_row

PRICE = D("68000")
VENUE_LIMIT = D("2000")
NET_LIMIT = D("1500")
DAILY_LIMIT = D("6000")

order = st.fixed_dictionaries({
    "venue": st.sampled_from([("binance", "spot"), ("bybit", "linear")]),
    "side": st.sampled_from(["buy", "sell"]),
    "qty": st.sampled_from([D("0.001"), D("0.005"), D("0.01"), D("0.02"), D("0.03")]),
    "purpose": st.sampled_from(["open", "twap", "complete", "flatten"]),
    "fill": st.sampled_from([D(0), D("0.5"), D(1)]),
})
batches = st.lists(st.lists(order, min_size=1, max_size=2), min_size=1, max_size=12)


def reset_desk() -> None:
    from trading.risk_models import DailyUsage, RiskPosition, RiskReservation

    RiskPosition.objects.all().delete()
    DailyUsage.objects.all().delete()
    RiskReservation.objects.all().delete()


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_no_sequence_exceeds_position_or_daily_notional(books: Any, batches: list[list[dict[str, Any]]]) -> None:
    from trading.risk_models import DailyUsage, RiskPosition

    reset_desk()
    row = global_limits_row()
    row.max_position_notional_per_venue, row.max_net_position_notional = VENUE_LIMIT, NET_LIMIT
    row.max_daily_notional, row.max_order_notional = DAILY_LIMIT, D("100000")
    row.save()
    n = 0
    for batch in batches:
        intents = []
        for o in batch:
            n += 1
            exchange, market_type = o["venue"]
            intents.append(intent(exchange=exchange, type=market_type, side=o["side"], qty=o["qty"],
                                  expected_price=PRICE, executable_price=PRICE, purpose=o["purpose"],
                                  client_order_id=f"p{n}", balances={"USDT": D("1e9"), "BTC": D("1e9")}))
        try:
            check_orders(intents)
        except RiskRejected:
            continue
        for i, o in zip(intents, batch, strict=True):
            record_result(i, filled=i.qty * o["fill"], avg_price=PRICE, ok=True)
            positions = {p.exchange: p.qty for p in RiskPosition.objects.all()}
            for qty in positions.values():
                assert abs(qty) * PRICE <= VENUE_LIMIT
            assert abs(sum(positions.values(), D(0))) * PRICE <= NET_LIMIT
            usage = DailyUsage.objects.filter(scope="global").first()
            assert usage is None or usage.notional <= DAILY_LIMIT
