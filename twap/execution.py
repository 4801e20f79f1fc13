"""One TWAP slice: reconcile by client id, check, send both legs at once, record, advance the plan.

The flow for one claimed `Slice`:

1. **Reconcile** first: any order already stored for the slice is looked up at the venue by
   its client order id. Found → recorded, never sent again. Not found → it never arrived.
   If nothing of the slice reached a venue, the slice starts afresh (same client ids); if one
   leg did, the missing leg is sent now, so the legs stay in step.
2. **Prepare** (fresh slices only, and only while the plan runs): each leg's quantity is what
   brings it to the cumulative schedule (`slicing.leg_quantity`: a leg that filled short last
   time is caught up here), at the market's precision; books must be fresh; the optional
   spread guard and the risk gate must pass; minimums are checked. Anything refused here
   defers the slice (nothing was sent); too many deferrals, or a spread wait past the plan's
   limit, pause the plan with an alert.
3. **Persist** both orders with deterministic client ids (`tw{plan uid}s{slice}l{leg}`), then
   send them concurrently, each bounded by a timeout.
4. **Record** what the venues said. An outcome we cannot know (timeout, connection lost, and
   the order not found) leaves the slice running: after the lease it is dispatched again and
   step 1 settles it.
5. **Advance** the plan under its row lock (`scheduler.advance`) and publish `twap_progress`.

Database work is synchronous; venue I/O runs on one private event loop per slice, as in
`trading.execution`, so the ORM never runs inside a loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from arbsite.errors import (
    ApiError,
    ErrorCode,
    InsufficientFunds,
    NotFound,
    RateLimited,
    RiskRejected,
    UpstreamError,
    ValidationFailed,
)
from exchanges.order_books import OrderBook, now_ms
from exchanges.sessions import session_for
from exchanges.symbols import Exchange, Instrument, MarketType
from exchanges.venues import (
    KeptVenues,
    OrderResult,
    OrderStatus,
    OrderType,
    Side,
    VenueFactory,
    VenueLoop,
    check_minimums,
    gather_list,
    venue_for,
)
from trading import risk, spreads
from twap import scheduler, slicing
from twap.models import OrderState, Plan, PlanState, Slice, SliceOrder, SliceState

logger = logging.getLogger("twap.execution")

ZERO = Decimal(0)
HUNDRED = Decimal(100)
T = TypeVar("T")

# The venue answered and refused: the order certainly does not exist.
_DEFINITE = (RiskRejected, InsufficientFunds, ValidationFailed, NotFound, UpstreamError, RateLimited)
# A market that is gone or a plan the venue cannot take: retrying will not help.
_FATAL_CODES = (ErrorCode.NOT_FOUND, ErrorCode.VALIDATION_ERROR)


@dataclass(frozen=True, slots=True)
class Policy:
    """Slice limits, read from settings (all optional)."""

    leg_timeout: float
    slippage: Decimal  # fraction, for limit legs: 0.001 = 0.1 %
    retry_seconds: float  # a deferred slice is due again after this
    max_deferrals: int  # deferrals (risk, stale books) before the plan pauses
    max_book_age_ms: float

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            leg_timeout=float(getattr(settings, "EXECUTION_LEG_TIMEOUT_SECONDS", 8.0)),
            slippage=Decimal(str(getattr(settings, "EXECUTION_SLIPPAGE_PERCENT", "0.1"))) / HUNDRED,
            retry_seconds=float(getattr(settings, "TWAP_RETRY_SECONDS", 2.0)),
            max_deferrals=int(getattr(settings, "TWAP_MAX_DEFERRALS", 10)),
            max_book_age_ms=float(getattr(settings, "MARKETDATA_STALE_SECONDS", 10.0)) * 1000,
        )


class SliceInterrupted(Exception):
    """An order's outcome is unknown; the slice stays running until its lease lets a rerun reconcile it."""


class Deferred(Exception):
    """The slice cannot be sent now (nothing was sent); `spread` marks a spread-guard wait."""

    def __init__(self, message: str, *, code: str = ErrorCode.RISK_REJECTED, spread: bool = False,
                 fatal: bool = False) -> None:
        super().__init__(message)
        self.code, self.spread, self.fatal = code, spread, fatal


def client_order_id(plan: Plan, slice_: Slice, leg: int) -> str:
    """Deterministic per (plan, slice, leg); alphanumeric and ≤ 32 chars (OKX's limit)."""
    return f"tw{plan.uid}s{slice_.index}l{leg}"


def worker_identity() -> str:
    """`node:pid`: a restarted worker knows which in-flight slices its previous incarnation held."""
    return f"{_NODE or socket.gethostname()}:{os.getpid()}"


_NODE = ""


def set_node_name(name: str) -> None:
    global _NODE
    _NODE = name


def instrument(plan: Plan, leg: int) -> Instrument:
    p = f"leg{leg}_"
    return Instrument(Exchange(getattr(plan, p + "exchange")), getattr(plan, p + "symbol"),
                      MarketType(getattr(plan, p + "market_type")))


# --------------------------------------------------------------------------- claiming


def claim(slice_id: int, *, lease: float | None = None) -> Slice | None:
    """Take a dispatched slice, or a running one whose lease expired; None when someone else has it."""
    now = timezone.now()
    stale = now - timedelta(seconds=scheduler.lease_seconds() if lease is None else lease)
    updated = Slice.objects.filter(
        Q(pk=slice_id) & (Q(state=SliceState.DISPATCHED) | Q(state=SliceState.RUNNING, claimed_at__lt=stale))
    ).update(state=SliceState.RUNNING, claimed_at=now, claimed_by=worker_identity(), attempts=F("attempts") + 1)
    if not updated:
        return None
    return Slice.objects.select_related("plan").get(pk=slice_id)


def orphaned_by(node: str) -> list[int]:
    """Running slices a previous incarnation of this worker node held (it died mid-slice)."""
    me = worker_identity()
    return list(
        Slice.objects.filter(state=SliceState.RUNNING, claimed_by__startswith=f"{node}:")
        .exclude(claimed_by=me)
        .values_list("id", flat=True)
    )


def recover_on_start(node: str, *, venue_factory: VenueFactory | None = None) -> list[int]:
    """Before a worker takes new work: reconcile the slices its previous incarnation left running."""
    ids = orphaned_by(node)
    for slice_id in ids:
        Slice.objects.filter(pk=slice_id, state=SliceState.RUNNING).update(state=SliceState.DISPATCHED)
        try:
            execute_slice(slice_id, venue_factory=venue_factory)
        except Exception:
            logger.exception("twap recovery failed", extra={"event": "twap_recovery_failed",
                                                            "detail": {"sliceId": slice_id}})
    if ids:
        logger.info("twap slices recovered", extra={"event": "twap_recovered", "detail": {"slices": ids}})
    return ids


# --------------------------------------------------------------------------- one slice


@dataclass(frozen=True, slots=True)
class LegOrder:
    leg: int
    instrument: Instrument
    side: Side
    order_type: OrderType
    qty: Decimal
    expected_price: Decimal
    limit_price: Decimal | None


class _Runner(VenueLoop):
    def __init__(self, slice_: Slice, factory: VenueFactory, policy: Policy,
                 session: KeptVenues | None = None) -> None:
        super().__init__(factory, session)
        self.slice = slice_
        self.plan = slice_.plan
        self.policy = policy
        self.events: list[tuple[str, dict[str, Any]]] = []

    # -- the flow
    def drive(self) -> None:
        orders = list(self.slice.orders.all())
        if orders:
            self.reconcile(orders)
            orders = list(self.slice.orders.all())
            missing = [o for o in orders if o.state == OrderState.NOT_FOUND]
            if missing and len(missing) == len(orders):
                # Nothing of this slice reached a venue before the crash: a fresh start, same client ids.
                SliceOrder.objects.filter(pk__in=[o.pk for o in missing]).delete()
                orders = []
            elif missing:
                # One leg is out there, the other never arrived: send it, or the legs drift apart.
                self.send(missing)
        if not orders:
            if not self.still_running():
                return
            try:
                legs = self.prepare()
            except Deferred as exc:
                self.defer(exc)
                return
            orders = self.persist(legs)
            self.send(orders)
        self.finish()

    def still_running(self) -> bool:
        """Hand the slice back (pending, or cancelled with its plan) when the plan stopped running."""
        with transaction.atomic():
            plan = Plan.objects.select_for_update().get(pk=self.plan.pk)
            self.plan = plan
            if plan.state == PlanState.RUNNING:
                return True
            state = SliceState.PENDING if plan.state == PlanState.PAUSED else SliceState.CANCELLED
            Slice.objects.filter(pk=self.slice.pk).update(state=state, claimed_at=None, claimed_by="")
        logger.info("twap slice released", extra={"event": "twap_slice_released",
                                                  "detail": {"planId": plan.plan_id, "slice": self.slice.index,
                                                             "planState": plan.state}})
        return False

    # -- 1. reconcile
    def reconcile(self, orders: list[SliceOrder]) -> None:
        pending = [o for o in orders if o.state in (OrderState.SENDING, OrderState.OPEN)]
        if not pending:
            return

        async def look(order: SliceOrder) -> OrderResult | None:
            inst = Instrument(Exchange(order.exchange), order.symbol, MarketType(order.market_type))
            return await asyncio.wait_for(self.venues[inst.exchange].fetch_order(inst, order.client_order_id),
                                          timeout=self.policy.leg_timeout)

        for order in pending:
            self.venue(Exchange(order.exchange))
        results = self.run(gather_list(*(look(o) for o in pending), return_exceptions=True))
        unknown = []
        for order, result in zip(pending, results, strict=True):
            if isinstance(result, OrderResult):
                self.record(order, result)
                self._risk_record(order, result)
            elif result is None:
                order.state = OrderState.NOT_FOUND
                order.save(update_fields=["state", "updated_at"])
            else:
                unknown.append(f"{order.client_order_id}: {result!r}")
        logger.info("twap slice reconciled", extra={"event": "twap_reconciled", "detail": {
            "planId": self.plan.plan_id, "slice": self.slice.index, "attempt": self.slice.attempts,
            "orders": {o.client_order_id: o.state for o in pending}}})
        if unknown:
            raise SliceInterrupted(f"cannot reconcile {', '.join(unknown)}")

    # -- 2. prepare
    def prepare(self) -> list[LegOrder]:
        plan = self.plan
        schedule = slicing.slice_schedule(plan.total_qty, plan.slice_qty)
        target = slicing.cumulative_target(schedule, self.slice.index)
        executed = plan.executed_by_leg()
        insts = {leg: instrument(plan, leg) for leg in (1, 2)}
        venues = {leg: self.venue(inst.exchange) for leg, inst in insts.items()}
        if venues[1].paper != venues[2].paper:
            raise Deferred("one leg trades live and the other paper: a TWAP must not be half real", fatal=True)

        async def fetch() -> list[Any]:
            return await asyncio.wait_for(
                gather_list(venues[1].rules(insts[1]), venues[2].rules(insts[2]), self.book(insts[1]),
                        self.book(insts[2])),
                timeout=self.policy.leg_timeout,
            )

        try:
            rules1, rules2, book1, book2 = self.run(fetch())
        except ApiError as exc:
            raise Deferred(str(exc.detail), code=exc.error_code,
                           fatal=exc.error_code in _FATAL_CODES) from exc
        except TimeoutError as exc:
            raise Deferred("market rules or books timed out", code=ErrorCode.EXCHANGE_UNAVAILABLE) from exc
        rules = {1: rules1, 2: rules2}
        books: dict[int, OrderBook | None] = {1: book1, 2: book2}
        legs: list[LegOrder] = []
        quotes: dict[int, spreads.Fill] = {}
        for leg in (1, 2):
            book = books[leg]
            inst = insts[leg]
            if book is None:
                raise Deferred(f"no live order book for {inst.key}", code=ErrorCode.EXCHANGE_UNAVAILABLE)
            if book.age_ms() > self.policy.max_book_age_ms:
                raise Deferred(f"stale order book for {inst.key} ({book.age_ms()} ms old)",
                               code=ErrorCode.EXCHANGE_UNAVAILABLE)
            if book.is_crossed:
                raise Deferred(f"crossed order book for {inst.key}", code=ErrorCode.EXCHANGE_UNAVAILABLE)
            side = Side(getattr(plan, f"leg{leg}_side"))
            want = slicing.leg_quantity(target, executed[leg].executed)
            qty = venues[leg].amount_to_precision(inst, want) if want > 0 else ZERO
            # The guard and the expected price use at least one slice's size, so a catch-up-only
            # slice is still priced like a slice.
            sizing = max(qty, plan.slice_qty)
            fill = spreads.vwap(book.asks if side is Side.BUY else book.bids, sizing)
            if not fill.complete or fill.avg_price is None or fill.worst_price is None:
                raise Deferred(f"the {inst.key} book is too thin for {sizing}", code=ErrorCode.EXCHANGE_UNAVAILABLE)
            quotes[leg] = fill
            if qty <= 0:
                continue
            order_type = OrderType(getattr(plan, f"leg{leg}_order_type"))
            limit = None
            if order_type is OrderType.LIMIT:
                cap = 1 + self.policy.slippage if side is Side.BUY else 1 - self.policy.slippage
                limit = venues[leg].price_to_precision(inst, fill.worst_price * cap)
            try:
                check_minimums(rules[leg], qty, limit or fill.avg_price)
            except RiskRejected as exc:
                raise Deferred(str(exc.detail)) from exc
            legs.append(LegOrder(leg, inst, side, order_type, qty, fill.avg_price, limit))
        self.spread_guard(quotes)
        self.risk_gate(legs, books, rules)
        return legs

    def spread_guard(self, quotes: dict[int, spreads.Fill]) -> None:
        limit = self.plan.max_spread_percent
        sides = {leg: Side(getattr(self.plan, f"leg{leg}_side")) for leg in (1, 2)}
        if limit is None or sides[1] is sides[2]:
            return
        buy = next(leg for leg in (1, 2) if sides[leg] is Side.BUY)
        sell = 3 - buy
        buy_price, sell_price = quotes[buy].avg_price, quotes[sell].avg_price
        assert buy_price is not None and sell_price is not None
        adverse = slicing.adverse_spread_percent(buy_price, sell_price)
        if adverse > limit:
            raise Deferred(
                f"executable spread {adverse:.4f}% (buy {buy_price}, sell {sell_price}) is worse than the "
                f"plan's limit {limit}%", spread=True,
            )

    def risk_gate(self, legs: list[LegOrder], books: dict[int, OrderBook | None], rules: dict[int, Any]) -> None:
        """Both legs through the one risk gate together (all or nothing; it reserves their exposure)."""
        if not legs:
            return
        for leg in legs:
            self.venue(leg.instrument.exchange)
        try:
            balances = self.run(asyncio.wait_for(gather_list(*(self.balance(leg.instrument.exchange) for leg in legs)),
                                                 timeout=self.policy.leg_timeout))
        except (ApiError, TimeoutError) as exc:
            detail = exc.detail if isinstance(exc, ApiError) else "timed out"
            raise Deferred(f"balances unavailable: {detail}", code=ErrorCode.EXCHANGE_UNAVAILABLE) from exc
        intents = []
        for leg, balance in zip(legs, balances, strict=True):
            book = books[leg.leg]
            top = (book.best_ask if leg.side is Side.BUY else book.best_bid) if book is not None else None
            intents.append(risk.OrderIntent(
                exchange=leg.instrument.exchange.value, symbol=leg.instrument.symbol, type=leg.instrument.type.value,
                side=leg.side.value, qty=leg.qty, expected_price=top or leg.expected_price,
                executable_price=leg.expected_price, plan_id=self.plan.plan_id, purpose=risk.Purpose.TWAP,
                balances=balance, fee_rate=rules[leg.leg].taker_fee,
                client_order_id=client_order_id(self.plan, self.slice, leg.leg),
                checks_done=frozenset({"book"}),  # fresh and uncrossed: checked just above
                book=book,
            ))
        try:
            risk.check_orders(intents)
        except RiskRejected as exc:
            raise Deferred(str(exc.detail)) from exc

    def _risk_intent(self, order: SliceOrder) -> risk.OrderIntent:
        """The gate's view of a stored order (its reservation is found by client order id)."""
        price = order.expected_price or order.avg_price or order.price or Decimal(1)
        return risk.OrderIntent(
            exchange=order.exchange, symbol=order.symbol, type=order.market_type, side=order.side, qty=order.qty,
            expected_price=price, executable_price=price, plan_id=self.plan.plan_id, purpose=risk.Purpose.TWAP,
            client_order_id=order.client_order_id,
        )

    def _risk_record(self, order: SliceOrder, result: OrderResult | ApiError | None) -> None:
        """Tell the gate how the order ended: trues up its reservation, feeds the breakers. Never raises."""
        try:
            intent = self._risk_intent(order)
            if isinstance(result, OrderResult):
                if result.status.is_terminal:
                    risk.record_result(intent, filled=result.filled, avg_price=result.average,
                                       ok=result.status is not OrderStatus.REJECTED)
            elif isinstance(result, ApiError):
                risk.record_result(intent, filled=ZERO, avg_price=None, ok=isinstance(result, RiskRejected),
                                   error_code=result.error_code, message=str(result.detail))
            else:  # outcome unknown: counted, reservation kept until a rerun settles it
                risk.record_result(intent, filled=ZERO, avg_price=None, ok=False,
                                   error_code=ErrorCode.EXCHANGE_UNAVAILABLE, message="outcome unknown", final=False)
        except Exception:
            logger.exception("twap risk bookkeeping failed", extra={"event": "twap_risk_record_failed"})

    def defer(self, exc: Deferred) -> None:
        """Put the slice back (nothing was sent); pause the plan when it has waited long enough."""
        now = timezone.now()
        with transaction.atomic():
            plan = Plan.objects.select_for_update().get(pk=self.plan.pk)
            s = Slice.objects.select_for_update().get(pk=self.slice.pk)
            s.state, s.claimed_at, s.claimed_by = SliceState.PENDING, None, ""
            s.deferrals += 1
            s.waiting_since = s.waiting_since or now
            s.note = str(exc)
            s.due_at = now + timedelta(seconds=self.policy.retry_seconds)
            waited_ms = (now - s.waiting_since).total_seconds() * 1000
            s.save()
            if exc.fatal:
                plan.state, plan.state_reason, plan.finished_at = PlanState.FAILED, str(exc), now
                plan.save(update_fields=["state", "state_reason", "finished_at", "updated_at"])
                Slice.objects.filter(plan=plan, state=SliceState.PENDING).update(state=SliceState.CANCELLED)
                scheduler.alert_later(plan, "critical", exc.code, f"failed: {exc}")
            elif exc.spread and waited_ms >= plan.spread_wait_ms:
                scheduler.pause_with_alert(plan, f"spread guard waited {waited_ms / 1000:.0f} s: {exc}",
                                           "TWAP_SPREAD_GUARD")
            elif not exc.spread and s.deferrals >= self.policy.max_deferrals:
                scheduler.pause_with_alert(plan, f"slice {s.index} refused {s.deferrals} times: {exc}", exc.code)
            elif s.deferrals == 1:
                scheduler.alert_later(plan, "info" if exc.spread else "warning", exc.code,
                                      f"slice {s.index} waits: {exc}")
            scheduler.publish_progress_later(plan)
        logger.info("twap slice deferred", extra={"event": "twap_slice_deferred", "error_code": exc.code,
                                                  "detail": {"planId": self.plan.plan_id, "slice": self.slice.index,
                                                             "reason": str(exc)}})

    # -- 3. persist and send
    def persist(self, legs: list[LegOrder]) -> list[SliceOrder]:
        with transaction.atomic():
            orders = [
                SliceOrder.objects.create(
                    slice=self.slice, leg=leg.leg, client_order_id=client_order_id(self.plan, self.slice, leg.leg),
                    exchange=leg.instrument.exchange.value, symbol=leg.instrument.symbol,
                    market_type=leg.instrument.type.value, side=leg.side.value, order_type=leg.order_type.value,
                    qty=leg.qty, price=leg.limit_price, expected_price=leg.expected_price,
                    paper=self.venue(leg.instrument.exchange).paper,
                )
                for leg in legs
            ]
        return orders

    def send(self, orders: list[SliceOrder]) -> None:
        """Both legs at once, each bounded by the leg timeout; every outcome recorded or left to reconcile."""

        async def one(order: SliceOrder) -> OrderResult:
            inst = Instrument(Exchange(order.exchange), order.symbol, MarketType(order.market_type))
            return await asyncio.wait_for(
                self.venues[inst.exchange].create_order(
                    inst, order.side, order.qty, order_type=order.order_type, price=order.price,
                    client_order_id=order.client_order_id,
                ),
                timeout=self.policy.leg_timeout,
            )

        for order in orders:
            self.venue(Exchange(order.exchange))
        for order in orders:
            self.events.append(("order_submitted", self._order_event(order, side=order.side, qty=order.qty)))
        results = self.run(gather_list(*(one(o) for o in orders), return_exceptions=True))
        unknown: list[str] = []
        for order, result in zip(orders, results, strict=True):
            if isinstance(result, OrderResult):
                self.record(order, result)
                self._risk_record(order, result)
            elif isinstance(result, _DEFINITE):
                order.state = OrderState.REJECTED
                order.error_code, order.error_message = result.error_code, str(result.detail)
                order.save(update_fields=["state", "error_code", "error_message", "updated_at"])
                self._risk_record(order, result)
            elif isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            else:
                # Timed out or the connection broke: look before assuming anything.
                found = self._fetch_quietly(order)
                if found is not None:
                    self.record(order, found)
                    self._risk_record(order, found)
                else:
                    self._risk_record(order, None)
                    unknown.append(f"{order.client_order_id}: {type(result).__name__}")
        if unknown:
            self.flush_events()
            raise SliceInterrupted(f"outcome unknown for {', '.join(unknown)}")

    def _fetch_quietly(self, order: SliceOrder) -> OrderResult | None:
        inst = Instrument(Exchange(order.exchange), order.symbol, MarketType(order.market_type))
        try:
            return self.run(asyncio.wait_for(self.venues[inst.exchange].fetch_order(inst, order.client_order_id),
                                             timeout=self.policy.leg_timeout))
        except (ApiError, TimeoutError):
            return None

    # -- 4. record
    def record(self, order: SliceOrder, result: OrderResult) -> None:
        order.apply(result)
        order.save()
        if result.filled > 0:
            self.events.append(("order_filled", self._order_event(order, price=result.average, qty=result.filled)))

    def _order_event(self, order: SliceOrder, **data: Any) -> dict[str, Any]:
        return {"exchange": order.exchange, "orderId": order.exchange_order_id or order.client_order_id,
                "clientOrderId": order.client_order_id, "symbol": order.symbol, "planId": self.plan.plan_id,
                "paper": order.paper, "ts": now_ms(), **data}

    # -- 5. finish
    def finish(self) -> None:
        orders = list(self.slice.orders.all())
        for order in orders:
            if order.state in (OrderState.REJECTED, OrderState.CANCELED) or (
                order.state == OrderState.PARTIALLY_FILLED
            ):
                self.events.append(("order_failed", self._order_event(
                    order, code=order.error_code or ErrorCode.UPSTREAM_ERROR,
                    message=order.error_message or f"{order.state}: filled {order.filled_qty} of {order.qty}")))
        now = timezone.now()
        with transaction.atomic():
            plan = Plan.objects.select_for_update().get(pk=self.plan.pk)
            s = Slice.objects.select_for_update().get(pk=self.slice.pk)
            s.state, s.finished_at = SliceState.DONE, now
            s.note = "; ".join(f"leg {o.leg} {o.state} {o.filled_qty}/{o.qty}" for o in orders) or "nothing to send"
            s.save()
            if any(o.filled_qty > 0 for o in orders):
                plan.last_execution_at = now
                plan.save(update_fields=["last_execution_at", "updated_at"])
            scheduler.advance(plan, s)
            scheduler.publish_progress_later(plan)
            self.plan = plan
        self.flush_events()
        logger.info("twap slice done", extra={"event": "twap_slice_done", "success": all(
            o.state == OrderState.FILLED for o in orders), "detail": {"planId": plan.plan_id, "slice": s.index,
                                                                      "planState": plan.state}})

    def flush_events(self) -> None:
        events, self.events = self.events, []
        for name, data in events:
            scheduler.publish_event(name, data)


def execute_slice(slice_id: int, *, venue_factory: VenueFactory | None = None) -> Slice | None:
    """Run (or resume) one slice; returns it as it ended, or as it is when another worker has it."""
    slice_ = claim(slice_id)
    if slice_ is None:
        return Slice.objects.filter(pk=slice_id).first()
    factory = venue_factory or venue_for
    # Production venues are kept open by the worker; a test's own factory gets a private loop.
    runner = _Runner(slice_, factory, Policy.from_settings(), session_for(factory))
    try:
        runner.drive()
    except SliceInterrupted as exc:
        Slice.objects.filter(pk=slice_id).update(note=f"interrupted: {exc}")
        logger.warning("twap slice interrupted", extra={"event": "twap_slice_interrupted",
                                                        "detail": {"sliceId": slice_id, "reason": str(exc)}})
    except Exception:
        # Unexpected (database down, a bug): the slice stays running, so after the lease a rerun
        # reconciles it by client id; nothing is assumed sent or unsent.
        logger.exception("twap slice failed", extra={"event": "twap_slice_error", "detail": {"sliceId": slice_id}})
        raise
    finally:
        runner.close()
    return Slice.objects.filter(pk=slice_id).first()
