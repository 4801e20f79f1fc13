"""Fees in the quote currency: quote, base, or a third asset priced on the venue (never silently zero)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbsite.errors import ExchangeUnavailable
from exchanges.order_books import OrderBook, write_book
from exchanges.symbols import Exchange, Instrument, MarketType
from tests.trading_execution.conftest import EventRecorder
from tests.trading_execution.helpers import BINANCE_SPOT_BTC, BYBIT_LINEAR_BTC, StubVenue, write_recorded_book
from trading.execution import create_execution, execute
from trading.execution_models import ExecutionState
from trading.fees import fee_in_quote

pytestmark = pytest.mark.django_db

amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=8, allow_nan=False,
                      allow_infinity=False)
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("200000"), places=4, allow_nan=False,
                     allow_infinity=False)


@given(fee=amounts, price=prices, third=prices)
def test_a_fee_is_priced_in_the_quote_by_the_asset_it_was_charged_in(fee: Decimal, price: Decimal,
                                                                    third: Decimal) -> None:
    assert fee_in_quote(fee, "USDT", "BTC", "USDT", price) == fee
    assert fee_in_quote(fee, "", "BTC", "USDT", price) == fee  # venue did not say: the quote (paper, linear)
    assert fee_in_quote(fee, "BTC", "BTC", "USDT", price) == fee * price
    assert fee_in_quote(fee, "BNB", "BTC", "USDT", price, third) == fee * third
    if fee:
        assert fee_in_quote(fee, "BNB", "BTC", "USDT", price, None) is None  # unpriced, not zero
        assert fee_in_quote(fee, "BTC", "BTC", "USDT", None) is None


def test_no_fee_needs_no_price() -> None:
    assert fee_in_quote(Decimal(0), "BNB", "BTC", "USDT", None, None) == 0


@pytest.fixture
def books(data_dir: Path) -> tuple[OrderBook, OrderBook]:
    return write_recorded_book(data_dir, BYBIT_LINEAR_BTC), write_recorded_book(data_dir, BINANCE_SPOT_BTC)


def _bnb_on_binance(factory_fee: Decimal) -> Any:
    def factory(exchange: Exchange) -> StubVenue:
        return StubVenue(exchange, fee_in=("BNB", factory_fee) if exchange is Exchange.BINANCE else None)

    return factory


def test_a_bnb_fee_is_counted_at_the_bnb_mid(pair: Any, books: Any, published: EventRecorder) -> None:
    # A BNB/USDT book as market data would store it (derived: two levels around 600).
    write_book(OrderBook(Exchange.BINANCE, "BNBUSDT", MarketType.SPOT, [(Decimal("599.9"), Decimal("10"))],
                         [(Decimal("600.1"), Decimal("10"))], ts=None))
    execution = execute(create_execution(pair).id, venue_factory=_bnb_on_binance(Decimal("0.002")))
    assert execution is not None and execution.state == ExecutionState.COMPLETED, execution.error_message
    leg1, leg2 = execution.orders.order_by("leg")
    assert (leg2.fee, leg2.fee_currency) == (Decimal("0.002"), "BNB")
    assert execution.fees == leg1.fee + Decimal("0.002") * Decimal("600")
    assert execution.pnl == (leg1.avg_price - leg2.avg_price) * leg1.filled_qty - execution.fees
    assert not [a for a in published.named("engine_alert") if a["code"] == "FEE_UNPRICED"]


def test_an_unpriceable_fee_is_reported_not_counted_as_zero(pair: Any, books: Any, published: EventRecorder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def mock_get_book_unreachable(instrument: Instrument) -> Any:
        raise ExchangeUnavailable(f"{instrument.exchange}: unreachable (mock)")

    monkeypatch.setattr("exchanges.prices.get_book", mock_get_book_unreachable)
    execution = execute(create_execution(pair).id, venue_factory=_bnb_on_binance(Decimal("0.002")))
    assert execution is not None and execution.state == ExecutionState.COMPLETED
    leg1 = execution.orders.get(leg=1)
    assert execution.fees == leg1.fee  # only what could be priced...
    (alert,) = [a for a in published.named("engine_alert") if a["code"] == "FEE_UNPRICED"]
    assert "BNB (binance leg 2)" in alert["message"] and "exclude" in alert["message"]  # ...and said so
