"""Two-leg execution on the paper venue, with labelled stub venues for the failure paths."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arbsite.redis_client import get_redis, key
from exchanges.order_books import OrderBook, write_book
from exchanges.symbols import Exchange
from tests.trading_execution.conftest import EventRecorder
from tests.trading_execution.helpers import (
    BINANCE_LINEAR_BTC,
    BINANCE_SPOT_BTC,
    BYBIT_LINEAR_BTC,
    SimulatedCrash,
    StubVenue,
    eventually,
    recorded_book,
    write_recorded_book,
)
from trading.execution import client_order_id, create_execution, execute, net_exposure
from trading.execution_models import ExecutionOrder, ExecutionState, LegRiskAction, OrderPurpose, OrderState

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(data_dir: Path) -> tuple[OrderBook, OrderBook]:
    """Bybit perp (2026 recording) far above Binance spot (2024 recording): sell leg 1, buy leg 2."""
    return write_recorded_book(data_dir, BYBIT_LINEAR_BTC), write_recorded_book(data_dir, BINANCE_SPOT_BTC)


def paper_positions(exchange: str) -> dict[str, Any]:
    raw: dict[bytes, bytes] = get_redis().hgetall(key("paper", exchange, "positions"))  # type: ignore[assignment]
    return {k.decode(): v for k, v in raw.items()}


def paper_balance(exchange: str, asset: str) -> Decimal:
    raw: bytes | None = get_redis().hget(key("paper", exchange, "balances"), asset)  # type: ignore[assignment]
    return Decimal(raw.decode()) if raw else Decimal(0)


def paper_order_count(execution: Any) -> int:
    return sum(1 for _ in get_redis().scan_iter(match=key("paper", "*", "orders", f"arb{execution.uid}*")))


def entry_ids(execution: Any) -> tuple[str, str]:
    return (client_order_id(execution, 1, OrderPurpose.ENTRY, 0), client_order_id(execution, 2, OrderPurpose.ENTRY, 0))


def test_it_fills_both_legs_on_paper(pair: Any, books: Any, published: EventRecorder) -> None:
    execution = execute(create_execution(pair).id)
    assert execution is not None
    assert execution.state == ExecutionState.COMPLETED, execution.error_message
    assert execution.paper and execution.direction == "leg1_sell_leg2_buy"
    orders = list(execution.orders.all())
    assert [(o.leg, o.side, o.state, o.filled_qty) for o in orders] == [
        (1, "sell", OrderState.FILLED, Decimal("0.01")), (2, "buy", OrderState.FILLED, Decimal("0.01"))]
    sell, buy = orders
    assert sell.avg_price is not None and buy.avg_price is not None
    assert execution.spread == sell.avg_price - buy.avg_price
    assert execution.fees == sell.fee + buy.fee
    assert execution.pnl == (sell.avg_price - buy.avg_price) * Decimal("0.01") - sell.fee - buy.fee
    assert all(o.fills.count() >= 1 for o in orders)
    assert len(published.named("order_submitted")) == 2
    assert {e["exchange"] for e in published.named("order_filled")} == {"bybit", "binance"}
    assert all(e["paper"] for e in published.named("order_filled"))
    assert paper_balance("binance", "BTC") == Decimal("1.01")
    exposure = net_exposure()
    assert exposure["oneSided"] == []
    assert {(v["exchange"], v["netQty"]) for v in exposure["venues"]} == {("bybit", -0.01), ("binance", 0.01)}


def test_it_rejects_when_the_spread_is_gone(pair: Any, data_dir: Path, published: EventRecorder) -> None:
    # Binance USD-M against Binance spot from the same minute: ~0.06 % gross, negative after fees.
    write_recorded_book(data_dir, BINANCE_LINEAR_BTC, as_instrument=BYBIT_LINEAR_BTC)
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    execution = execute(create_execution(pair).id)
    assert execution is not None
    assert execution.state == ExecutionState.REJECTED
    assert execution.error_code == "RISK_REJECTED"
    assert "below the threshold" in execution.error_message
    assert execution.orders.count() == 0
    assert paper_order_count(execution) == 0
    assert published.named("order_submitted") == []


def test_it_rejects_a_stale_book(pair: Any, data_dir: Path) -> None:
    book = recorded_book(data_dir, BYBIT_LINEAR_BTC)
    book.received_ts -= 60_000
    write_book(book)
    write_recorded_book(data_dir, BINANCE_SPOT_BTC)
    execution = execute(create_execution(pair).id)
    assert execution is not None and execution.state == ExecutionState.REJECTED
    assert "stale" in execution.error_message


def test_one_leg_rejected_completes_then_flattens(pair: Any, books: Any, published: EventRecorder) -> None:
    venues: dict[Exchange, StubVenue] = {}

    def factory(exchange: Exchange) -> StubVenue:
        venues[exchange] = StubVenue(exchange, reject=exchange is Exchange.BINANCE)  # FailingVenue role
        return venues[exchange]

    execution = execute(create_execution(pair).id, venue_factory=factory)
    assert execution is not None
    assert execution.state == ExecutionState.FLATTENED
    steps = [s.action for s in execution.leg_risk_steps.all()]
    assert steps == [LegRiskAction.DETECTED, LegRiskAction.COMPLETE_ATTEMPT, LegRiskAction.COMPLETE_ATTEMPT,
                     LegRiskAction.FLATTEN_ATTEMPT, LegRiskAction.FLATTENED]
    roles = [(o.leg, o.purpose, o.side, o.state) for o in execution.orders.all()]
    assert roles == [
        (1, "entry", "sell", OrderState.FILLED),
        (2, "entry", "buy", OrderState.REJECTED),
        (2, "complete", "buy", OrderState.REJECTED),
        (2, "complete", "buy", OrderState.REJECTED),
        (1, "flatten", "buy", OrderState.FILLED),
    ]
    assert venues[Exchange.BINANCE].create_calls == [o.client_order_id for o in execution.orders.filter(leg=2)]
    alerts = published.named("engine_alert")
    assert len(alerts) == 5 and {a["pairId"] for a in alerts} == {pair.id}
    assert any(a["severity"] == "error" for a in alerts)
    assert published.named("order_failed")
    exposure = net_exposure()
    assert exposure["venues"] == [] and exposure["oneSided"] == []
    assert Decimal(json.loads(paper_positions("bybit")["BTCUSDT"])["qty"]) == 0  # the paper position is flat
    assert execution.pnl is not None and execution.pnl < 0  # a round trip pays spread and fees


def test_a_partial_fill_is_completed(pair: Any, books: Any, data_dir: Path) -> None:
    full = recorded_book(data_dir, BINANCE_SPOT_BTC)
    thin = OrderBook(full.exchange, full.symbol, full.type, full.bids, [(full.asks[0][0], Decimal("0.004"))],
                     full.ts)
    seen: list[str] = []

    def thin_first_then_restore(instrument: Any) -> None:
        # The book moves between re-validation and the fill: only 0.004 left for the entry.
        write_book(thin if not seen else full)
        seen.append(instrument.key)

    def factory(exchange: Exchange) -> StubVenue:
        return StubVenue(exchange, before=thin_first_then_restore if exchange is Exchange.BINANCE else None)

    execution = execute(create_execution(pair).id, venue_factory=factory)
    assert execution is not None
    assert execution.state == ExecutionState.HEDGED, execution.error_message
    leg2 = list(execution.orders.filter(leg=2))
    assert [(o.purpose, o.state, o.filled_qty) for o in leg2] == [
        ("entry", OrderState.PARTIALLY_FILLED, Decimal("0.004")), ("complete", OrderState.FILLED, Decimal("0.006"))]
    assert net_exposure()["oneSided"] == []
    assert execution.pnl is not None and execution.pnl > 0


def test_a_lost_answer_is_an_unknown_outcome_never_a_rejection(pair: Any, books: Any, published: EventRecorder,
                                                                settings: Any) -> None:
    """The Binance entry is placed (and fills) but its answer is lost and lookups fail: no guessing.

    Taking it for a rejection would "complete" the leg by buying again: double the position.
    """
    settings.EXECUTION_LEG_TIMEOUT_SECONDS = 0.3
    settings.EXECUTION_RECONCILE_ATTEMPTS = 2
    venues: dict[Exchange, StubVenue] = {}

    def factory(exchange: Exchange) -> StubVenue:
        lost = exchange is Exchange.BINANCE
        venues[exchange] = StubVenue(exchange, lose_answer=lost, lookup_fails=lost)
        return venues[exchange]

    execution = execute(create_execution(pair).id, venue_factory=factory)
    assert execution is not None and execution.state == ExecutionState.RUNNING  # left for the sweep
    assert [(o.leg, o.purpose, o.state) for o in execution.orders.all()] == [
        (1, "entry", OrderState.FILLED), (2, "entry", OrderState.SENDING)]
    assert venues[Exchange.BINANCE].create_calls == [client_order_id(execution, 2, OrderPurpose.ENTRY, 0)]
    unknown = [a for a in published.named("engine_alert") if a["code"] == "EXECUTION_OUTCOME_UNKNOWN"]
    assert len(unknown) == 1 and unknown[0]["severity"] == "critical"
    execution.refresh_from_db()
    assert "outcome unknown" in execution.error_message and execution.orders.filter(purpose="complete").count() == 0

    # The venue answers again; the sweep's rerun finds the order filled: hedged as planned, nothing re-sent.
    healed: dict[Exchange, StubVenue] = {}

    def healthy(exchange: Exchange) -> StubVenue:
        healed[exchange] = StubVenue(exchange)
        return healed[exchange]

    resumed = execute(execution.id, venue_factory=healthy, lease_seconds=0)
    assert resumed is not None and resumed.state == ExecutionState.COMPLETED, resumed.error_message
    assert all(v.create_calls == [] for v in healed.values())
    assert net_exposure()["oneSided"] == []


def test_a_task_delivered_twice_sends_one_order_per_leg(pair: Any, books: Any) -> None:
    execution = create_execution(pair)
    first = execute(execution.id)
    second = execute(execution.id)
    third = execute(execution.id, lease_seconds=0)
    assert first is not None and second is not None and third is not None
    assert first.state == second.state == third.state == ExecutionState.COMPLETED
    assert ExecutionOrder.objects.filter(execution=execution).count() == 2
    assert paper_order_count(execution) == 2
    assert paper_balance("binance", "BTC") == Decimal("1.01")


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_claim_once(pair: Any, books: Any) -> None:
    from django.db import connection

    execution = create_execution(pair)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            from trading.tasks import execute_arbitrage

            execute_arbitrage(execution.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    execution.refresh_from_db()
    assert execution.state == ExecutionState.COMPLETED
    assert execution.attempts == 1
    assert ExecutionOrder.objects.filter(execution=execution).count() == 2
    assert paper_order_count(execution) == 2


def test_a_crash_between_the_two_sends_is_reconciled(pair: Any, books: Any, published: EventRecorder) -> None:
    execution = create_execution(pair)
    leg1_id, leg2_id = entry_ids(execution)

    async def leg1_has_gone_out() -> None:
        await eventually(lambda: get_redis().exists(key("paper", "bybit", "orders", leg1_id)))

    def crashing(exchange: Exchange) -> StubVenue:
        return StubVenue(exchange, crash_before=leg1_has_gone_out if exchange is Exchange.BINANCE else None)

    with pytest.raises(SimulatedCrash):
        execute(execution.id, venue_factory=crashing)
    execution.refresh_from_db()
    assert execution.state == ExecutionState.RUNNING
    assert set(execution.orders.values_list("state", flat=True)) == {OrderState.SENDING}

    # A redelivery inside the lease leaves it alone; after the lease it reconciles.
    assert execute(execution.id) is not None and execution.orders.filter(state=OrderState.SENDING).count() == 2
    resumed = execute(execution.id, lease_seconds=0)
    assert resumed is not None
    assert resumed.state == ExecutionState.HEDGED, resumed.error_message
    orders = {o.client_order_id: o for o in resumed.orders.all()}
    assert orders[leg1_id].state == OrderState.FILLED
    assert orders[leg2_id].state == OrderState.NOT_FOUND
    completion = client_order_id(resumed, 2, OrderPurpose.COMPLETE, 0)
    assert orders[completion].state == OrderState.FILLED
    # One order per leg reached the paper venue: no second sell on bybit.
    assert get_redis().exists(key("paper", "bybit", "orders", leg1_id))
    assert paper_order_count(resumed) == 2
    assert net_exposure()["oneSided"] == []
    assert LegRiskAction.RECONCILED in resumed.leg_risk_steps.values_list("action", flat=True)


def test_a_crash_after_both_sends_is_reconciled_without_resending(pair: Any, books: Any) -> None:
    execution = create_execution(pair)

    def crashing(exchange: Exchange) -> StubVenue:
        return StubVenue(exchange, crash_after=exchange is Exchange.BINANCE)

    with pytest.raises(SimulatedCrash):
        execute(execution.id, venue_factory=crashing)
    resumed = execute(execution.id, lease_seconds=0)
    assert resumed is not None and resumed.state == ExecutionState.COMPLETED
    assert resumed.orders.count() == 2
    assert set(resumed.orders.values_list("state", flat=True)) == {OrderState.FILLED}
    assert paper_order_count(resumed) == 2
    assert paper_balance("binance", "BTC") == Decimal("1.01")


def test_both_legs_failing_leaves_nothing(pair: Any, books: Any) -> None:
    execution = execute(create_execution(pair).id, venue_factory=lambda ex: StubVenue(ex, reject=True))
    assert execution is not None
    assert execution.state == ExecutionState.FAILED
    assert execution.error_code == "UPSTREAM_ERROR"
    assert execution.leg_risk_steps.count() == 0
    assert net_exposure()["venues"] == []


def test_it_refuses_half_paper_half_live(pair: Any, books: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class LiveLookingStubVenue(StubVenue):
        """A stub that claims to be live, to check the mixed-mode guard (sends nothing)."""

    def factory(exchange: Exchange) -> StubVenue:
        venue = LiveLookingStubVenue(exchange) if exchange is Exchange.BYBIT else StubVenue(exchange)
        venue.paper = exchange is not Exchange.BYBIT
        return venue

    execution = execute(create_execution(pair).id, venue_factory=factory)
    assert execution is not None and execution.state == ExecutionState.REJECTED
    assert "has no trading keys" in execution.error_message
    assert execution.orders.count() == 0


def test_a_crash_after_the_flatten_filled_ends_flattened(pair: Any, books: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from trading import execution as engine

    def factory(exchange: Exchange) -> StubVenue:
        return StubVenue(exchange, reject=exchange is Exchange.BINANCE)

    real_finish = engine._Runner._finish
    crashed: list[bool] = []

    def crash_once(self: Any, state: Any, **kwargs: Any) -> None:
        if state == ExecutionState.FLATTENED and not crashed:
            crashed.append(True)
            raise SimulatedCrash("worker killed before marking the execution done")
        real_finish(self, state, **kwargs)

    monkeypatch.setattr(engine._Runner, "_finish", crash_once)
    execution = create_execution(pair)
    with pytest.raises(SimulatedCrash):
        execute(execution.id, venue_factory=factory)
    resumed = execute(execution.id, venue_factory=factory, lease_seconds=0)
    assert resumed is not None and resumed.state == ExecutionState.FLATTENED
    assert resumed.orders.filter(purpose=OrderPurpose.FLATTEN).count() == 1  # not flattened twice
    assert net_exposure()["venues"] == []
