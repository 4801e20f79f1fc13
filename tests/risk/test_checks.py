"""Every pure check at its boundary: the limit itself passes, the smallest step past it is rejected."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from trading.risk import checks
from trading.risk.checks import Check

STEP = D("0.0001")


def test_slippage_buy_at_the_limit_passes_and_past_it_rejects() -> None:
    # 0.5 % above 68000 is 68340.
    assert checks.slippage("buy", D("68000"), D("68340"), D("0.5")) is None
    r = checks.slippage("buy", D("68000"), D("68340") + STEP, D("0.5"))
    assert r is not None and r.check is Check.SLIPPAGE and "slippage above limit" in r.reason


def test_slippage_sell_is_adverse_downwards() -> None:
    assert checks.slippage("sell", D("68000"), D("67660"), D("0.5")) is None
    assert checks.slippage("sell", D("68000"), D("67660") - STEP, D("0.5")) is not None
    assert checks.slippage("sell", D("68000"), D("99999"), D("0.5")) is None  # better is never slippage


def test_spread_at_the_threshold_passes_and_below_rejects() -> None:
    assert checks.spread(D("0.1"), D("0.1")) is None
    r = checks.spread(D("0.1") - STEP, D("0.1"))
    assert r is not None and r.check is Check.SPREAD and "below the threshold" in r.reason
    assert checks.spread(None, D("0.1")) is not None


def test_price_deviation_from_the_median() -> None:
    others = {"bybit linear": D("100"), "okx spot": D("100")}
    assert checks.price_deviation("binance spot", D("102"), others, D("2")) is None
    r = checks.price_deviation("binance spot", D("102") + STEP, others, D("2"))
    assert r is not None and r.check is Check.PRICE_DEVIATION and "median 100" in r.reason


def test_price_deviation_needs_two_other_venues() -> None:
    assert checks.price_deviation("binance spot", D("150"), {"bybit linear": D("100")}, D("2")) is None


def test_abnormal_move_within_the_window() -> None:
    now = 1_000_000
    at_limit = [(now - 5_000, D("100")), (now, D("103"))]
    assert checks.abnormal_move(at_limit, now, 10, D("3")) is None
    past = [(now - 5_000, D("100")), (now, D("103") + STEP)]
    r = checks.abnormal_move(past, now, 10, D("3"))
    assert r is not None and r.check is Check.ABNORMAL_MOVE
    # The same move spread over longer than the window is not abnormal.
    assert checks.abnormal_move([(now - 10_001, D("100")), (now, D("110"))], now, 10, D("3")) is None


def test_stale_book_at_the_age_limit() -> None:
    assert checks.book("binance spot BTCUSDT", 10_000, D(10_000), False) is None
    r = checks.book("binance spot BTCUSDT", 10_001, D(10_000), False)
    assert r is not None and r.check is Check.STALE_BOOK
    assert checks.book("x", None, D(10_000), False) is not None


def test_crossed_book() -> None:
    r = checks.book("x", 0, D(10_000), True)
    assert r is not None and r.check is Check.CROSSED_BOOK


def test_order_notional() -> None:
    assert checks.order_notional(D("0.05"), D("100000"), D("5000")) is None
    r = checks.order_notional(D("0.05") + STEP, D("100000"), D("5000"))
    assert r is not None and r.check is Check.ORDER_NOTIONAL


@pytest.mark.parametrize("check", [Check.VENUE_POSITION, Check.NET_POSITION])
def test_position_limit_and_reducing_always_allowed(check: Check) -> None:
    # Settled 0.04 long, nothing pending: up to 0.05 BTC at 100000 is 5000.
    assert checks.position(check, "x", D("0.04"), D("0.04"), D("0.01"), D("100000"), D("5000")) is None
    r = checks.position(check, "x", D("0.04"), D("0.04"), D("0.01") + STEP, D("100000"), D("5000"))
    assert r is not None and r.check is check and "could reach 0.0501" in r.reason
    # Already past the limit (limits lowered): reducing passes, increasing does not.
    assert checks.position(check, "x", D("0.2"), D("0.2"), D("-0.01"), D("100000"), D("5000")) is None
    assert checks.position(check, "x", D("-0.2"), D("-0.2"), D("-0.01"), D("100000"), D("5000")) is not None


def test_a_pending_buy_does_not_make_room_for_a_sell() -> None:
    # 0.05 long may still arrive (pending); a sell of 0.1 could leave -0.1 if that buy never fills.
    assert checks.position(Check.VENUE_POSITION, "x", D(0), D("0.05"), D("-0.1"), D("100000"), D("5000")) is not None
    assert checks.position(Check.VENUE_POSITION, "x", D(0), D("0.05"), D("-0.05"), D("100000"), D("5000")) is None


def test_capital_in_use_against_total_amount() -> None:
    assert checks.capital(D("150"), D("50"), D("200")) is None
    r = checks.capital(D("150"), D("50") + STEP, D("200"))
    assert r is not None and r.check is Check.CAPITAL and "totalAmount" in r.reason


def test_daily_notional() -> None:
    assert checks.daily_notional(D("99000"), D("1000"), D("100000")) is None
    assert checks.daily_notional(D("99000"), D("1000") + STEP, D("100000")) is not None


def test_daily_loss_stops_when_reached() -> None:
    assert checks.daily_loss(D("-500") + STEP, D("500")) is None
    r = checks.daily_loss(D("-500"), D("500"))
    assert r is not None and r.check is Check.DAILY_LOSS


def test_pnl_window_floor() -> None:
    assert checks.pnl_window(D("-200"), D("-200"), 60, scope="p") is None
    r = checks.pnl_window(D("-200") - STEP, D("-200"), 60, scope="p")
    assert r is not None and r.check is Check.PNL_WINDOW


def test_balance() -> None:
    assert checks.balance("USDT", D("680.68"), D("680.68"), exchange="binance") is None
    r = checks.balance("USDT", D("680.68") - STEP, D("680.68"), exchange="binance")
    assert r is not None and r.check is Check.BALANCE and "insufficient balance" in r.reason


def test_spend_per_market_and_side() -> None:
    fee = D("0.001")
    assert checks.spend("spot", "buy", D("0.01"), D("68000"), fee, "BTC", "USDT") == ("USDT", D("680.68"))
    assert checks.spend("spot", "sell", D("0.01"), D("68000"), fee, "BTC", "USDT") == ("BTC", D("0.01"))
    assert checks.spend("linear", "sell", D("0.01"), D("68000"), fee, "BTC", "USDT",
                        leverage=D(2)) == ("USDT", D("340.68"))
    assert checks.spend("linear", "buy", D("0.01"), D("68000"), fee, "BTC", "USDT",
                        reducing=True) == ("USDT", D("0.68"))


@pytest.mark.parametrize(
    ("state", "reducing", "rejected"),
    [("active", False, False), ("reducing", True, False), ("reducing", False, True), ("halted", True, True)],
)
def test_trading_states(state: str, reducing: bool, rejected: bool) -> None:
    assert (checks.trading_state(state, reducing=reducing, scope="global") is not None) is rejected
