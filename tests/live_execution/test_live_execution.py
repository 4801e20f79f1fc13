"""Two-leg execution on the live path (LiveVenue, ccxt, signed requests) against the venue emulator.

Trading keys are the emulator's test accounts, set as `{EX}_API_KEY/SECRET`, so `venue_for`
hands out `LiveVenue`s; the books the engine re-validates on are the emulator's own (fetched
from it over REST and written to Redis as market data would), and orders match against the
same replayed books at the emulator. Every check of "what reached the exchange" reads the
emulator's arrival log and account state, not the engine's own records.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from exchanges.symbols import Exchange, Instrument
from exchanges.venues import LiveVenue, OrderResult, OrderType, Side
from tests.live_execution.conftest import QTY
from tests.trading_execution.conftest import EventRecorder
from tests.venue.server import VenueEmulator
from trading.execution import client_order_id, create_execution, execute, net_exposure
from trading.execution_models import ExecutionOrder, ExecutionState, LegRiskAction, OrderPurpose, OrderState

pytest_plugins = ["tests.venue.fixtures"]
pytestmark = [pytest.mark.django_db, pytest.mark.emulator, pytest.mark.recorded]


class SimulatedCrash(BaseException):
    """Stands in for the worker process dying (SIGKILL): nothing after it runs."""


def entry_ids(execution: Any) -> tuple[str, str]:
    return (client_order_id(execution, 1, OrderPurpose.ENTRY, 0), client_order_id(execution, 2, OrderPurpose.ENTRY, 0))


def arrived(emulator: VenueEmulator, exchange: str) -> list[str]:
    return [a.client_id for a in emulator.arrivals(exchange)]


def position(emulator: VenueEmulator, exchange: str, symbol: str) -> Decimal:
    held = emulator.account(exchange)["positions"].get(symbol)
    return Decimal(held["qty"]) if held else Decimal(0)


def test_both_legs_fill_at_the_emulator(emulator: VenueEmulator, pair: Any, published: EventRecorder) -> None:
    execution = execute(create_execution(pair).id)
    assert execution is not None
    assert execution.state == ExecutionState.COMPLETED, execution.error_message
    assert not execution.paper and execution.direction == "leg1_sell_leg2_buy"
    orders = list(execution.orders.all())
    assert [(o.leg, o.side, o.state, o.filled_qty, o.paper) for o in orders] == [
        (1, "sell", OrderState.FILLED, QTY, False), (2, "buy", OrderState.FILLED, QTY, False)]
    leg1_id, leg2_id = entry_ids(execution)
    # Exactly one order per leg reached each exchange, and both filled there.
    assert arrived(emulator, "bybit") == [leg1_id] and arrived(emulator, "binance") == [leg2_id]
    (bybit_order,), (binance_order,) = emulator.orders("bybit"), emulator.orders("binance")
    assert (bybit_order["status"], Decimal(bybit_order["filled"])) == ("FILLED", QTY)
    assert (binance_order["status"], Decimal(binance_order["filled"])) == ("FILLED", QTY)
    assert orders[0].exchange_order_id == str(bybit_order["orderId"])
    assert orders[1].exchange_order_id == str(binance_order["orderId"])
    # The exchange's money moved: a short perp on Bybit, BTC bought on Binance (fee taken in BTC).
    assert position(emulator, "bybit", "BTCUSDT") == -QTY
    assert Decimal(emulator.account("binance")["spot"]["BTC"]) == 1 + QTY - Decimal(binance_order["fee"])
    assert orders[1].avg_price == Decimal(binance_order["cost"]) / QTY
    assert {e["exchange"] for e in published.named("order_filled")} == {"bybit", "binance"}
    assert not any(e["paper"] for e in published.named("order_filled"))
    assert net_exposure()["oneSided"] == []


def test_one_leg_rejected_is_completed_then_flattened(emulator: VenueEmulator, pair: Any,
                                                      published: EventRecorder) -> None:
    # Binance refuses every order (its real -2010 insufficient-balance answer) until cleared.
    emulator.reject_orders("binance", "insufficient_balance", count=None)
    execution = execute(create_execution(pair).id)
    assert execution is not None
    assert execution.state == ExecutionState.FLATTENED, execution.error_message
    steps = [s.action for s in execution.leg_risk_steps.all()]
    assert steps == [LegRiskAction.DETECTED, LegRiskAction.COMPLETE_ATTEMPT, LegRiskAction.COMPLETE_ATTEMPT,
                     LegRiskAction.FLATTEN_ATTEMPT, LegRiskAction.FLATTENED]
    roles = [(o.leg, o.purpose, o.side, o.state, o.error_code) for o in execution.orders.all()]
    assert roles == [
        (1, "entry", "sell", OrderState.FILLED, ""),
        (2, "entry", "buy", OrderState.REJECTED, "INSUFFICIENT_FUNDS"),
        (2, "complete", "buy", OrderState.REJECTED, "INSUFFICIENT_FUNDS"),
        (2, "complete", "buy", OrderState.REJECTED, "INSUFFICIENT_FUNDS"),
        (1, "flatten", "buy", OrderState.FILLED, ""),
    ]
    # What the exchanges saw: three refused buys on Binance, the sell and its flattening buy on Bybit.
    assert arrived(emulator, "binance") == [o.client_order_id for o in execution.orders.filter(leg=2)]
    assert emulator.orders("binance") == []
    assert [(o["side"], o["status"]) for o in emulator.orders("bybit")] == [("SELL", "FILLED"), ("BUY", "FILLED")]
    # No exposure left, by the engine's books and by the exchanges' own accounts.
    assert position(emulator, "bybit", "BTCUSDT") == 0
    assert emulator.account("binance")["spot"]["BTC"] == "1"
    exposure = net_exposure()
    assert exposure["venues"] == [] and exposure["oneSided"] == []
    alerts = published.named("engine_alert")
    assert len(alerts) == 5 and {a["pairId"] for a in alerts} == {pair.id}
    assert any(a["severity"] == "error" for a in alerts)
    assert execution.pnl is not None and execution.pnl < 0  # a round trip pays spread and fees


def test_a_task_delivered_twice_sends_one_order_per_leg(emulator: VenueEmulator, pair: Any) -> None:
    execution = create_execution(pair)
    first = execute(execution.id)
    second = execute(execution.id)  # inside the lease: nothing to claim
    third = execute(execution.id, lease_seconds=0)  # a terminal execution is never claimed again
    assert first is not None and second is not None and third is not None
    assert first.state == second.state == third.state == ExecutionState.COMPLETED
    assert ExecutionOrder.objects.filter(execution=execution).count() == 2
    leg1_id, leg2_id = entry_ids(execution)
    assert arrived(emulator, "bybit") == [leg1_id] and arrived(emulator, "binance") == [leg2_id]
    assert len(emulator.orders("bybit")) == len(emulator.orders("binance")) == 1
    assert position(emulator, "bybit", "BTCUSDT") == -QTY


class CrashingLiveVenue(LiveVenue):
    """Test double: the real LiveVenue, except that its first send dies like a killed worker
    once the other leg's order is on the emulator's books (so leg 1 went out, leg 2 never did)."""

    def __init__(self, exchange: Exchange, emulator: VenueEmulator, other: str) -> None:
        super().__init__(exchange)
        self.emulator = emulator
        self.other = other

    async def create_order(self, instrument: Instrument, side: Side | str, qty: Decimal, *,
                           order_type: OrderType | str = OrderType.MARKET, price: Decimal | None = None,
                           client_order_id: str) -> OrderResult:
        from tests.venue.helpers import eventually

        await eventually(lambda: self.emulator.orders(self.other))
        raise SimulatedCrash("worker killed between the two sends")


def test_a_worker_killed_between_the_two_sends_is_reconciled(emulator: VenueEmulator, pair: Any,
                                                             published: EventRecorder) -> None:
    execution = create_execution(pair)
    leg1_id, leg2_id = entry_ids(execution)

    def crashing(exchange: Exchange) -> LiveVenue:
        if exchange is Exchange.BINANCE:
            return CrashingLiveVenue(exchange, emulator, "bybit")
        return LiveVenue(exchange)

    with pytest.raises(SimulatedCrash):
        execute(execution.id, venue_factory=crashing)
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING
    assert set(execution.orders.values_list("state", flat=True)) == {OrderState.SENDING}
    assert arrived(emulator, "bybit") == [leg1_id] and arrived(emulator, "binance") == []

    # The restarted worker (after the lease) reconciles by client id: leg 1 is found filled at
    # Bybit and never resent; leg 2 is not at Binance, so the missing side is completed.
    resumed = execute(execution.id, lease_seconds=0)
    assert resumed is not None
    assert resumed.state == ExecutionState.HEDGED, resumed.error_message
    orders = {o.client_order_id: o for o in resumed.orders.all()}
    completion = client_order_id(resumed, 2, OrderPurpose.COMPLETE, 0)
    assert orders[leg1_id].state == OrderState.FILLED and orders[leg1_id].filled_qty == QTY
    assert orders[leg2_id].state == OrderState.NOT_FOUND
    assert orders[completion].state == OrderState.FILLED and orders[completion].filled_qty == QTY
    assert arrived(emulator, "bybit") == [leg1_id]  # no duplicate sell
    assert arrived(emulator, "binance") == [completion]
    lookups = [q for _, path, q in emulator.requests if path.endswith("/v5/order/realtime")]
    assert any(q.get("orderLinkId") == leg1_id for q in lookups)
    assert position(emulator, "bybit", "BTCUSDT") == -QTY
    assert net_exposure()["oneSided"] == []
    assert LegRiskAction.RECONCILED in resumed.leg_risk_steps.values_list("action", flat=True)


def test_bybit_account_mode_is_asked_once_per_process(emulator: VenueEmulator, pair: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # ccxt asks Bybit for the account mode (2 requests) before a client's first private call;
    # LiveVenue remembers the answer per key, so later executions go straight to work.
    monkeypatch.setattr("exchanges.venues._ACCOUNT_MODE", {})
    for _ in range(2):
        execution = execute(create_execution(pair).id)
        assert execution is not None
        assert execution.state == ExecutionState.COMPLETED, execution.error_message
    asked = [path for _, path, _ in emulator.requests if path.endswith(("/v5/user/query-api", "/v5/account/info"))]
    assert len(asked) == 2
    assert len(emulator.arrivals("bybit")) == 2
