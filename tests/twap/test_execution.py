"""Slices on paper: full plans, catch-up and pause on leg failures, reconcile after crashes, guards, controls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from arbsite.errors import UpstreamError
from exchanges.symbols import Exchange, Instrument
from exchanges.venues import OrderResult, OrderType, Side
from tests.trading_execution.helpers import SimulatedCrash, StubVenue
from tests.twap.conftest import drive, paper_orders, run_due, venue_filled
from twap import execution, scheduler
from twap.models import OrderState, Plan, PlanState, Slice, SliceOrder, SliceState

# Transactional: on-commit work (events after each slice) runs when each transaction commits, as in a worker.
pytestmark = [pytest.mark.recorded, pytest.mark.django_db(transaction=True)]

D = Decimal
TOTAL = D("0.01")


class ScriptedVenue(StubVenue):
    """Stub over a real PaperVenue: refuses the client ids a test names, counts every send."""

    def __init__(self, exchange: Exchange, refuse: Callable[[str], bool] = lambda cid: False, **kwargs: Any) -> None:
        super().__init__(exchange, **kwargs)
        self.refuse = refuse
        # This client never opens a socket (markets are seeded): skip ccxt's 250 ms graceful-exit wait.
        self.inner.client.timeout_on_exit = 0

    async def create_order(self, instrument: Instrument, side: Side | str, qty: Decimal, *,
                           order_type: OrderType | str = OrderType.MARKET, price: Decimal | None = None,
                           client_order_id: str) -> OrderResult:
        if self.refuse(client_order_id):
            self.create_calls.append(client_order_id)
            raise UpstreamError(f"{self.exchange} rejected the request: order rejected (stub)")
        return await super().create_order(instrument, side, qty, order_type=order_type, price=price,
                                          client_order_id=client_order_id)


class Venues:
    """The venue factory for a test: one stub per exchange, rebuilt per slice like `venue_for`."""

    def __init__(self) -> None:
        self.refuse: dict[Exchange, Callable[[str], bool]] = {}
        self.crash_after: set[Exchange] = set()
        self.crash_before: set[Exchange] = set()
        self.calls: list[str] = []

    def __call__(self, exchange: Exchange) -> Any:
        venue = ScriptedVenue(exchange, self.refuse.get(exchange, lambda cid: False),
                              crash_after=exchange in self.crash_after,
                              crash_before=self._crash if exchange in self.crash_before else None)
        venue.create_calls = self.calls
        return venue

    @staticmethod
    async def _crash() -> None:
        return None


@pytest.fixture
def venues() -> Venues:
    return Venues()


def legs(plan: Plan) -> tuple[Decimal, Decimal]:
    p = plan.executed_by_leg()
    return p[1].executed, p[2].executed


def test_it_runs_a_full_plan_on_paper(make_plan: Any, books: Any, venues: Venues, published: Any) -> None:
    plan = make_plan()
    scheduler.control(plan.plan_id, "start")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED
    assert legs(plan) == (TOTAL, TOTAL)
    # The venues' own books agree: exactly one order per slice and leg, and exactly the total filled.
    assert venue_filled("bybit") == TOTAL and venue_filled("binance") == TOTAL
    assert len(paper_orders("bybit")) == 10 and len(paper_orders("binance")) == 10
    assert sorted(venues.calls) == sorted(set(venues.calls)) and len(venues.calls) == 20
    progress = plan.progress()
    assert (progress.executed, progress.remaining, progress.slices_done, progress.slices_total) == (TOTAL, 0, 10, 10)
    assert progress.leg1.avg_price is not None and progress.leg2.avg_price is not None
    assert progress.leg1.avg_price > progress.leg2.avg_price  # Bybit asks above Binance bids in the recordings
    events = published.named("twap_progress")
    assert events[-1]["state"] == "completed" and events[-1]["executed"] == 0.01 and events[-1]["slicesDone"] == 10
    assert [e["slicesDone"] for e in events if e["state"] == "running"][1:] == list(range(1, 10))
    assert len(published.named("order_filled")) == 20
    assert plan.last_execution_at is not None


def test_each_order_has_a_deterministic_client_id(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    drive(plan, venues)
    ids = list(SliceOrder.objects.order_by("slice__index", "leg").values_list("client_order_id", flat=True))
    assert ids == [f"tw{plan.uid}s1l1", f"tw{plan.uid}s1l2", f"tw{plan.uid}s2l1", f"tw{plan.uid}s2l2"]
    assert all(len(i) <= 32 and i.isalnum() for i in ids)


def test_a_redelivered_slice_sends_nothing_again(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    [slice_id] = run_due(venues)
    assert len(venues.calls) == 2
    execution.execute_slice(slice_id, venue_factory=venues)  # a duplicate delivery
    Slice.objects.filter(pk=slice_id).update(state=SliceState.DISPATCHED)  # even one that is claimable again
    execution.execute_slice(slice_id, venue_factory=venues)
    assert len(venues.calls) == 2
    assert legs(plan) == (D("0.001"), D("0.001"))


def _expire_lease(slice_id: int) -> None:
    Slice.objects.filter(pk=slice_id).update(claimed_at=timezone.now() - timedelta(hours=1))


def test_a_crash_after_sending_is_reconciled_not_resent(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    venues.crash_after = {Exchange.BYBIT, Exchange.BINANCE}
    with pytest.raises(SimulatedCrash):
        run_due(venues)
    crashed = Slice.objects.get(plan=plan, index=1)
    assert crashed.state == SliceState.RUNNING
    assert set(crashed.orders.values_list("state", flat=True)) == {OrderState.SENDING}
    venues.crash_after = set()
    # Not before the lease expires: the worker might still be alive.
    assert scheduler.stale_slices() == []
    _expire_lease(crashed.pk)
    assert scheduler.stale_slices() == [crashed.pk]
    execution.execute_slice(crashed.pk, venue_factory=venues)
    crashed.refresh_from_db()
    assert crashed.state == SliceState.DONE and crashed.attempts == 2
    assert set(crashed.orders.values_list("state", flat=True)) == {OrderState.FILLED}
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED
    assert len(venues.calls) == len(set(venues.calls)) == 4
    assert venue_filled("bybit") == venue_filled("binance") == D("0.002")


def test_a_crash_before_anything_reached_a_venue_starts_the_slice_afresh(
    make_plan: Any, books: Any, venues: Venues
) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    venues.crash_before = {Exchange.BYBIT, Exchange.BINANCE}
    with pytest.raises(SimulatedCrash):
        run_due(venues)
    venues.crash_before = set()
    crashed = Slice.objects.get(plan=plan, index=1)
    _expire_lease(crashed.pk)
    execution.execute_slice(crashed.pk, venue_factory=venues)
    assert set(crashed.orders.values_list("state", flat=True)) == {OrderState.FILLED}
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED
    assert venue_filled("bybit") == venue_filled("binance") == D("0.002")
    assert len(paper_orders("bybit")) == len(paper_orders("binance")) == 2


def test_a_crash_with_one_leg_out_sends_the_other_leg(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    venues.crash_before = {Exchange.BINANCE}  # bybit's order lands, binance's never leaves
    with pytest.raises(SimulatedCrash):
        run_due(venues)
    venues.crash_before = set()
    crashed = Slice.objects.get(plan=plan, index=1)
    scheduler.control(plan.plan_id, "pause")  # even paused, the half-sent slice is finished
    _expire_lease(crashed.pk)
    execution.execute_slice(crashed.pk, venue_factory=venues)
    crashed.refresh_from_db()
    assert crashed.state == SliceState.DONE
    assert legs(plan) == (D("0.001"), D("0.001"))
    assert len(paper_orders("bybit")) == len(paper_orders("binance")) == 1


def test_a_rejected_leg_is_caught_up_in_the_next_slice(make_plan: Any, books: Any, venues: Venues,
                                                       published: Any) -> None:
    plan = make_plan(total_qty=D("0.004"))
    scheduler.control(plan.plan_id, "start")
    venues.refuse[Exchange.BINANCE] = lambda cid: cid.endswith("s2l2")
    run_due(venues)
    run_due(venues)
    plan.refresh_from_db()
    assert plan.state == PlanState.RUNNING
    assert legs(plan) == (D("0.002"), D("0.001"))
    assert any(a["code"] == "TWAP_CATCH_UP" for a in published.named("engine_alert"))
    assert published.named("order_failed")[-1]["clientOrderId"].endswith("s2l2")
    run_due(venues)
    catch_up = SliceOrder.objects.get(slice__plan=plan, slice__index=3, leg=2)
    assert catch_up.qty == D("0.002") and catch_up.state == OrderState.FILLED
    assert legs(plan) == (D("0.003"), D("0.003"))
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED
    assert legs(plan) == (D("0.004"), D("0.004"))
    assert venue_filled("bybit") == venue_filled("binance") == D("0.004")


def test_a_leg_failing_twice_pauses_the_plan_with_an_alert(make_plan: Any, books: Any, venues: Venues,
                                                          published: Any) -> None:
    plan = make_plan(total_qty=D("0.004"))
    scheduler.control(plan.plan_id, "start")
    venues.refuse[Exchange.BINANCE] = lambda cid: cid.endswith(("s2l2", "s3l2"))
    plan = drive(plan, venues)
    assert plan.state == PlanState.PAUSED
    assert legs(plan) == (D("0.003"), D("0.001"))
    alert = published.named("engine_alert")[-1]
    assert alert["code"] == "TWAP_LEGS_APART" and alert["planId"] == plan.plan_id and alert["severity"] == "error"
    assert "more than one slice" in plan.state_reason
    assert published.named("twap_progress")[-1]["state"] == "paused"
    # The operator resumes: the lagging leg catches up and the plan ends exact on both legs.
    scheduler.control(plan.plan_id, "resume")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED
    assert legs(plan) == (D("0.004"), D("0.004"))
    assert venue_filled("bybit") == venue_filled("binance") == D("0.004")
    assert SliceOrder.objects.get(slice__plan=plan, slice__index=4, leg=2).qty == D("0.003")


def test_a_leg_rejected_on_the_last_slice_gets_a_catch_up_slice(make_plan: Any, books: Any,
                                                                venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.003"))
    scheduler.control(plan.plan_id, "start")
    venues.refuse[Exchange.BYBIT] = lambda cid: cid.endswith("s3l1")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED
    extra = Slice.objects.get(plan=plan, index=4)
    assert extra.catch_up and list(extra.orders.values_list("leg", "qty")) == [(1, D("0.001"))]
    assert plan.progress().slices_total == 4
    assert legs(plan) == (D("0.003"), D("0.003"))


def test_a_failing_catch_up_slice_pauses(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    venues.refuse[Exchange.BYBIT] = lambda cid: cid.endswith(("s2l1", "s3l1"))
    plan = drive(plan, venues)
    assert plan.state == PlanState.PAUSED
    assert "catch-up" in plan.state_reason
    venues.refuse = {}
    scheduler.control(plan.plan_id, "resume")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED and legs(plan) == (D("0.002"), D("0.002"))


def test_pause_holds_the_next_slice_and_resume_sends_it(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.003"))
    scheduler.control(plan.plan_id, "start")
    run_due(venues)
    scheduler.control(plan.plan_id, "pause")
    assert run_due(venues) == []  # nothing is claimed for a paused plan
    scheduler.control(plan.plan_id, "resume")
    assert len(run_due(venues)) == 1
    assert legs(plan) == (D("0.002"), D("0.002"))


def test_a_slice_dispatched_before_a_pause_is_handed_back_unsent(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    [slice_id] = scheduler.claim_due()
    scheduler.control(plan.plan_id, "pause")
    execution.execute_slice(slice_id, venue_factory=venues)
    assert Slice.objects.get(pk=slice_id).state == SliceState.PENDING
    assert venues.calls == []
    scheduler.control(plan.plan_id, "resume")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED and legs(plan) == (D("0.002"), D("0.002"))


def test_cancel_stops_a_running_plan_where_it_is(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.003"))
    scheduler.control(plan.plan_id, "start")
    run_due(venues)
    assert scheduler.claim_due() == []  # not yet due
    Slice.objects.filter(plan=plan, state=SliceState.PENDING, due_at__isnull=False).update(due_at=timezone.now())
    [slice_id] = scheduler.claim_due()
    scheduler.control(plan.plan_id, "cancel")
    execution.execute_slice(slice_id, venue_factory=venues)  # the dispatched slice is not sent
    plan.refresh_from_db()
    assert plan.state == PlanState.CANCELLED
    assert legs(plan) == (D("0.001"), D("0.001"))
    assert set(Slice.objects.filter(plan=plan).exclude(index=1).values_list("state", flat=True)) == {
        SliceState.CANCELLED}
    assert run_due(venues) == []


def test_the_spread_guard_waits_then_pauses(make_plan: Any, books: Any, venues: Venues, published: Any) -> None:
    # The recorded books: Bybit linear asks ~65114, Binance spot bids ~61837: buying costs ~5 % more.
    plan = make_plan(max_spread_percent=D("1"), spread_wait_ms=60_000)
    scheduler.control(plan.plan_id, "start")
    run_due(venues)
    waiting = Slice.objects.get(plan=plan, index=1)
    assert waiting.state == SliceState.PENDING and waiting.deferrals == 1 and "spread" in waiting.note
    assert venues.calls == []
    assert published.named("engine_alert")[-1]["severity"] == "info"
    Slice.objects.filter(pk=waiting.pk).update(waiting_since=timezone.now() - timedelta(minutes=2))
    run_due(venues)
    plan.refresh_from_db()
    assert plan.state == PlanState.PAUSED
    assert published.named("engine_alert")[-1]["code"] == "TWAP_SPREAD_GUARD"
    assert venues.calls == []


def test_the_spread_guard_lets_an_acceptable_spread_through(make_plan: Any, books: Any, venues: Venues) -> None:
    plan = make_plan(total_qty=D("0.002"), max_spread_percent=D("10"))
    scheduler.control(plan.plan_id, "start")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED and legs(plan) == (D("0.002"), D("0.002"))


def test_a_stale_book_defers_and_then_pauses(make_plan: Any, venues: Venues, settings: Any, books: Any) -> None:
    settings.MARKETDATA_STALE_SECONDS = 0.0  # every book is too old
    settings.TWAP_MAX_DEFERRALS = 3
    plan = make_plan()
    scheduler.control(plan.plan_id, "start")
    plan = drive(plan, venues)
    assert plan.state == PlanState.PAUSED
    assert Slice.objects.get(plan=plan, index=1).deferrals == 3
    assert venues.calls == []


class GateSpy:
    """Records what reaches the real risk gate (and lets it decide)."""

    def __init__(self, real: Callable[[Any], None]) -> None:
        self.real = real
        self.batches: list[list[Any]] = []

    def __call__(self, intents: Any) -> None:
        self.batches.append(list(intents))
        self.real(intents)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> GateSpy:
    from trading import risk

    spy = GateSpy(risk.check_orders)
    monkeypatch.setattr(risk, "check_orders", spy)
    return spy


def test_both_legs_of_each_slice_pass_the_risk_gate_together(make_plan: Any, books: Any, venues: Venues,
                                                             gate: GateSpy) -> None:
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED
    assert [[(i.exchange, i.side, i.qty, i.plan_id, i.purpose, i.client_order_id) for i in batch]
            for batch in gate.batches] == [
        [("bybit", "buy", D("0.001"), plan.plan_id, "twap", f"tw{plan.uid}s{n}l1"),
         ("binance", "sell", D("0.001"), plan.plan_id, "twap", f"tw{plan.uid}s{n}l2")] for n in (1, 2)
    ]
    assert all(i.balances is not None and i.executable_price > 0 for batch in gate.batches for i in batch)


def test_a_gate_rejection_defers_the_slice_then_pauses(make_plan: Any, books: Any, venues: Venues, settings: Any,
                                                       gate: GateSpy, published: Any) -> None:
    from trading import risk

    settings.TWAP_MAX_DEFERRALS = 2
    plan = make_plan(total_qty=D("0.002"))
    scheduler.control(plan.plan_id, "start")
    risk.engage_kill_switch("test: halt everything")
    plan.refresh_from_db()
    assert plan.state == PlanState.PAUSED  # the kill hook pauses running plans at once
    assert any(a["code"] == "KILL_SWITCH" for a in published.named("engine_alert"))
    scheduler.control(plan.plan_id, "resume")  # resumed while the switch is still engaged: the gate refuses
    plan = drive(plan, venues)
    assert plan.state == PlanState.PAUSED and "kill switch" in plan.state_reason.lower()
    assert Slice.objects.get(plan=plan, index=1).deferrals == 2
    assert venues.calls == [] and SliceOrder.objects.filter(slice__plan=plan).count() == 0
    risk.clear_kill_switch(user="olivia")
    scheduler.control(plan.plan_id, "resume")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED and legs(plan) == (D("0.002"), D("0.002"))


def test_a_running_slice_keeps_its_claim_until_the_lease_ends(make_plan: Any, books: Any) -> None:
    plan = make_plan()
    scheduler.control(plan.plan_id, "start")
    [slice_id] = scheduler.claim_due()
    assert execution.claim(slice_id) is not None
    assert execution.claim(slice_id) is None  # another worker: refused
    assert execution.claim(slice_id, lease=0) is not None  # expired lease: taken over
    assert Slice.objects.get(pk=slice_id).attempts == 2


def test_limit_legs_go_out_as_ioc_within_the_slippage_cap(make_plan: Any, books: Any, venues: Venues,
                                                           settings: Any) -> None:
    settings.EXECUTION_SLIPPAGE_PERCENT = 0.1
    plan = make_plan(total_qty=D("0.002"), leg1_order_type="limit", leg2_order_type="limit")
    scheduler.control(plan.plan_id, "start")
    plan = drive(plan, venues)
    assert plan.state == PlanState.COMPLETED and legs(plan) == (D("0.002"), D("0.002"))
    for order in SliceOrder.objects.filter(slice__plan=plan):
        assert order.order_type == "limit" and order.price is not None and order.expected_price is not None
        if order.side == "buy":
            assert order.expected_price < order.price <= order.expected_price * D("1.0011")
        else:
            assert order.expected_price * D("0.9989") <= order.price < order.expected_price
