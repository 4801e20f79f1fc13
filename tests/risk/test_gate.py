"""The gate with its database side: limits that count, states, reservations, stored rejections."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from arbsite.errors import RiskRejected
from tests.risk.conftest import intent, put_book
from trading.risk import check_order, check_orders, record_pnl, record_result, release, trading_state
from trading.risk.gate import effective_limits, global_limits_row, set_state

pytestmark = pytest.mark.django_db

PRICE = D("68001")  # the Binance ask in the `books` fixture


def set_limits(pair: Any = None, **values: Any) -> None:
    from trading.risk_models import RiskLimits

    row = RiskLimits.objects.get_or_create(pair=pair)[0] if pair is not None else global_limits_row()
    for k, v in values.items():
        setattr(row, k, v)
    row.save()


def rejected(i: Any) -> str:
    with pytest.raises(RiskRejected) as info:
        check_order(i)
    return str(info.value.detail)


def position() -> tuple[D, D, D]:
    from trading.risk_models import RiskPosition

    p = RiskPosition.objects.get(exchange="binance", asset="BTC")
    return p.qty, p.pending_long, p.pending_short


def test_it_passes_and_reserves_then_trues_up(books: Any, pair: Any) -> None:
    from trading.risk_models import DailyUsage

    i = intent(pair_id=pair.id, client_order_id="c1")
    check_order(i)
    assert position() == (0, D("0.01"), 0)  # pending until the order reports
    assert DailyUsage.objects.get(scope="global").notional == D("680.01")
    record_result(i, filled=D("0.004"), avg_price=PRICE, ok=True)
    assert position() == (D("0.004"), 0, 0)
    assert DailyUsage.objects.get(scope=f"pair:{pair.id}").notional == D("0.004") * PRICE
    record_result(i, filled=D("0.004"), avg_price=PRICE, ok=True)  # a second report changes nothing
    assert position() == (D("0.004"), 0, 0)


def test_a_rerun_with_the_same_client_id_reserves_once(books: Any) -> None:
    check_order(intent(client_order_id="same"))
    check_order(intent(client_order_id="same"))
    assert position() == (0, D("0.01"), 0)
    release(intent(client_order_id="same"))
    assert position() == (0, 0, 0)


def test_every_rejection_is_stored_with_its_reason_and_published(books: Any, published: Any) -> None:
    from trading.risk_models import Alert

    set_limits(max_order_notional=D("100"))
    reason = rejected(intent())
    assert "order notional 680.01 above the limit 100.00" in reason
    alert = Alert.objects.get()
    assert (alert.code, alert.risk_check, alert.message) == ("RISK_REJECTED", "order_notional", reason)
    [event] = published.alerts()
    assert event["code"] == "RISK_REJECTED" and event["message"] == reason and event["check"] == "order_notional"


def test_order_notional_boundary(books: Any) -> None:
    set_limits(max_order_notional=D("680.01"))
    check_order(intent())
    set_limits(max_order_notional=D("680.00"))
    assert "order notional" in rejected(intent())


def test_slippage_boundary(books: Any) -> None:
    set_limits(max_slippage_percent=D("0.1"))
    check_order(intent(expected_price=D("68000"), executable_price=D("68068")))
    assert "slippage above limit" in rejected(intent(expected_price=D("68000"), executable_price=D("68068.01")))


def test_spread_revalidation_boundary(books: Any) -> None:
    check_order(intent(net_edge_percent=D("0.1"), threshold_percent=D("0.1")))
    assert "below the threshold" in rejected(intent(net_edge_percent=D("0.0999"), threshold_percent=D("0.1")))


def test_stale_book_boundary(books: Any) -> None:
    set_limits(max_book_age_seconds=D("5"))
    put_book("binance", "spot", "BTCUSDT", "68000", "68001", age_ms=4_000)
    check_order(intent())
    put_book("binance", "spot", "BTCUSDT", "68000", "68001", age_ms=6_000)
    assert "stale order book" in rejected(intent())


def test_crossed_book(books: Any) -> None:
    put_book("binance", "spot", "BTCUSDT", "68002", "68001")
    assert "crossed order book" in rejected(intent())


def test_price_deviation_boundary(books: Any) -> None:
    set_limits(max_price_deviation_percent=D("1"))
    put_book("okx", "spot", "BTCUSDT", "68010", "68012")
    put_book("bitget", "spot", "BTCUSDT", "68010", "68012")  # with bybit's 68010.5: median 68011
    put_book("binance", "spot", "BTCUSDT", "68691.10", "68691.12")  # mid 68691.11 = median + 1 %
    check_order(intent(expected_price=D("68691.12"), executable_price=D("68691.12")))
    put_book("binance", "spot", "BTCUSDT", "68691.11", "68691.13")
    assert "price deviation" in rejected(intent(expected_price=D("68691.13"), executable_price=D("68691.13")))


def test_abnormal_move_from_recorded_samples(books: Any) -> None:
    from exchanges.order_books import now_ms
    from trading.risk import prices

    set_limits(abnormal_move_percent=D("3"), abnormal_move_window_seconds=10)
    prices.record_sample("binance", "spot", "BTCUSDT", now_ms() - 2_000, D("66020"))  # 68000.5 is +2.999 %
    check_order(intent())
    prices.record_sample("binance", "spot", "BTCUSDT", now_ms() - 1_000, D("65000"))
    assert "abnormal move" in rejected(intent())


def test_venue_and_net_position_boundaries(books: Any) -> None:
    set_limits(max_position_notional_per_venue=D("1360.02"), max_net_position_notional=D("100000"))
    check_order(intent())
    check_order(intent())  # 0.02 BTC at 68001 = 1360.02
    assert "max position: binance BTC" in rejected(intent(qty=D("0.0001")))
    check_order(intent(side="sell"))  # reducing is always allowed
    set_limits(max_position_notional_per_venue=D("100000"), max_net_position_notional=D("680.01"))
    assert "max position: net BTC" in rejected(intent())


def test_capital_in_use_boundary(books: Any, pair: Any) -> None:
    pair.total_amount = D("680.01")
    pair.save()
    check_order(intent(pair_id=pair.id))
    pair.total_amount = D("680.00")
    pair.save()
    assert "exceeds totalAmount" in rejected(intent(pair_id=pair.id))


def test_daily_notional_boundary_global_and_per_pair(books: Any, pair: Any) -> None:
    set_limits(max_daily_notional=D("1360.02"))
    check_orders([intent(), intent()])
    assert "daily notional for desk" in rejected(intent(qty=D("0.0001")))
    set_limits(max_daily_notional=D("100000"))
    set_limits(pair, max_daily_notional=D("680.01"))
    check_order(intent(pair_id=pair.id))
    assert f"daily notional for {pair.id}" in rejected(intent(pair_id=pair.id, qty=D("0.0001")))


def test_a_batch_is_all_or_nothing(books: Any) -> None:
    from trading.risk_models import DailyUsage, RiskPosition

    set_limits(max_daily_notional=D("1000"))
    with pytest.raises(RiskRejected):
        check_orders([intent(client_order_id="a"), intent(client_order_id="b")])
    assert not RiskPosition.objects.exclude(qty=0).exists()
    assert DailyUsage.objects.get(scope="global").notional == 0


def test_daily_loss_boundary(books: Any) -> None:
    set_limits(max_daily_loss=D("100"))
    record_pnl(D("-99.99"), ref="x1")
    check_order(intent())
    record_pnl(D("-0.01"), ref="x2")
    assert "daily realised loss for desk 100.00 has reached the limit" in rejected(intent())


def test_insufficient_balance_is_checked_before_sending(books: Any) -> None:
    need = D("0.01") * PRICE * D("1.001")
    check_order(intent(balances={"USDT": need}))
    assert "insufficient balance on binance" in rejected(intent(balances={"USDT": need - D("0.0001")}))
    assert "BTC free" in rejected(intent(side="sell", qty=D("2"), balances={"BTC": D("1")}))


def test_balances_are_read_from_the_paper_venue_when_not_given(books: Any, settings: Any) -> None:
    settings.PAPER_STARTING_FUNDS = {"USDT": "500", "BTC": "0"}
    assert "insufficient balance on binance: 500 USDT free" in rejected(intent(balances=None))


def test_pnl_guard_pauses_the_pair_with_an_alert(books: Any, pair: Any, published: Any) -> None:
    set_limits(pnl_window_floor=D("-50"), pnl_window_minutes=60)
    record_pnl(D("-50"), pair_id=pair.id, ref="e1")
    assert trading_state(pair.id).state == "active"
    record_pnl(D("-0.01"), pair_id=pair.id, ref="e2")
    state = trading_state(pair.id)
    assert state.state == "reducing" and "PnL guard" in state.reason
    assert any("paused" in a["message"] and a.get("pairId") == pair.id for a in published.alerts())
    assert "reducing-only" in rejected(intent(pair_id=pair.id))
    check_order(intent(pair_id=pair.id, purpose="flatten", side="sell"))  # reducing orders still pass


def test_halted_refuses_even_reducing_orders(books: Any, pair: Any) -> None:
    set_state(f"pair:{pair.id}", "halted", "operator")
    assert "halted" in rejected(intent(pair_id=pair.id, purpose="flatten"))
    set_state(f"pair:{pair.id}", "active")
    check_order(intent(pair_id=pair.id))


def test_reducing_globally_lets_completions_through(books: Any) -> None:
    set_state("global", "reducing", "wind down")
    assert "reducing-only" in rejected(intent())
    check_order(intent(purpose="complete"))


def test_pair_overrides_inherit_the_rest(pair: Any) -> None:
    set_limits(pair, max_order_notional=D("10"))
    limits = effective_limits(pair.id)
    assert limits.max_order_notional == D("10")
    assert limits.max_daily_notional == effective_limits(None).max_daily_notional
