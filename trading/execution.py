"""Two-leg execution: claim, re-validate, send both legs at once, and never leave one side open.

The flow for one `Execution` row:

1. **Claim** it with a conditional update (pending, or active with an expired lease), so a
   task delivered twice runs once and a task redelivered after a crash picks it up again.
2. **Re-validate** the spread on the cached books just before sending (executable VWAP on
   both books, net of both taker fees, at least the pair's threshold), round the quantity
   with ccxt's precision for both markets and check the minimums.
3. **Persist** both orders with their deterministic client order ids (`arb{uid}{leg}{purpose}{n}`),
   then send both concurrently, each bounded by a timeout (limit IOC at the expected worst
   price plus the slippage cap).
4. On a rerun, **reconcile** by client id first: an order found at the venue is recorded,
   never sent again.
5. **Leg risk**: when the legs' fills do not cancel out (one rejected, one partial), a
   persisted state machine first completes the lagging leg (aggressive limit inside the
   slippage cap, a bounded number of tries in bounded time), then flattens what is left on
   the leading leg. Every step is stored as a `LegRiskStep` and raised as `engine_alert`.

Database work is synchronous; venue I/O runs on one private event loop per execution
(`run_until_complete` between database steps), so the ORM never runs inside a loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Sum, Value, When
from django.utils import timezone

from arbsite.errors import (
    ApiError,
    Conflict,
    ErrorCode,
    ExchangeUnavailable,
    InsufficientFunds,
    NotFound,
    RateLimited,
    RiskRejected,
    UpstreamError,
    ValidationFailed,
)
from exchanges.order_books import OrderBook, now_ms
from exchanges.sessions import session_for
from exchanges.symbols import Exchange, Instrument, MarketType, split_symbol
from exchanges.venues import (
    KeptVenues,
    MarketRules,
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
from trading import fees, spreads
from trading.execution_models import (
    ACTIVE_STATES,
    Execution,
    ExecutionOrder,
    ExecutionState,
    Fill,
    LegRiskAction,
    LegRiskStep,
    OrderPurpose,
    OrderState,
    Trigger,
)
from trading.models import Pair
from trading.risk import gate as risk

logger = logging.getLogger("trading.execution")

ZERO = Decimal(0)
HUNDRED = Decimal(100)
T = TypeVar("T")

# No final answer from the venue yet: looked up by client order id before anything else is decided.
UNSETTLED_ORDER_STATES = (OrderState.NEW, OrderState.SENDING, OrderState.OPEN)
_PURPOSE_CODE = {OrderPurpose.ENTRY: "e", OrderPurpose.COMPLETE: "c", OrderPurpose.FLATTEN: "f"}
_RISK_PURPOSE = {
    OrderPurpose.ENTRY: risk.Purpose.OPEN,
    OrderPurpose.COMPLETE: risk.Purpose.COMPLETE,
    OrderPurpose.FLATTEN: risk.Purpose.FLATTEN,
}
_ERRORS: dict[str, type[ApiError]] = {
    ErrorCode.RISK_REJECTED: RiskRejected,
    ErrorCode.INSUFFICIENT_FUNDS: InsufficientFunds,
    ErrorCode.EXCHANGE_UNAVAILABLE: ExchangeUnavailable,
    ErrorCode.RATE_LIMITED: RateLimited,
    ErrorCode.UPSTREAM_ERROR: UpstreamError,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.VALIDATION_ERROR: ValidationFailed,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """Execution limits, read from settings (all optional)."""

    leg_timeout: float
    slippage: Decimal  # fraction: 0.001 = 0.1 %
    flatten_slippage: Decimal
    complete_attempts: int
    flatten_attempts: int
    leg_risk_seconds: float
    lease_seconds: float
    max_book_age_ms: float
    reconcile_attempts: int

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            leg_timeout=float(getattr(settings, "EXECUTION_LEG_TIMEOUT_SECONDS", 8.0)),
            slippage=Decimal(str(getattr(settings, "EXECUTION_SLIPPAGE_PERCENT", "0.1"))) / HUNDRED,
            flatten_slippage=Decimal(str(getattr(settings, "LEG_RISK_FLATTEN_SLIPPAGE_PERCENT", "1.0"))) / HUNDRED,
            complete_attempts=int(getattr(settings, "LEG_RISK_COMPLETE_ATTEMPTS", 2)),
            flatten_attempts=int(getattr(settings, "LEG_RISK_FLATTEN_ATTEMPTS", 3)),
            leg_risk_seconds=float(getattr(settings, "LEG_RISK_MAX_SECONDS", 30.0)),
            lease_seconds=float(getattr(settings, "EXECUTION_LEASE_SECONDS", 180.0)),
            max_book_age_ms=float(getattr(settings, "MARKETDATA_STALE_SECONDS", 10.0)) * 1000,
            reconcile_attempts=int(getattr(settings, "EXECUTION_RECONCILE_ATTEMPTS", 3)),
        )


def client_order_id(execution: Execution, leg: int, purpose: OrderPurpose | str, attempt: int) -> str:
    """Deterministic per (execution, leg, purpose, attempt); alphanumeric, ≤ 32 chars (OKX's limit)."""
    return f"arb{execution.uid}l{leg}{_PURPOSE_CODE[OrderPurpose(purpose)]}{attempt}"


def _publish(event: str, data: dict[str, Any]) -> None:
    from arbsite import events  # lazily: the websocket layer is optional for the engine

    events.publish(event, data)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- creating and claiming


def create_execution(pair: Pair, trigger: Trigger | str = Trigger.MANUAL) -> Execution:
    """A pending execution for `pair`; CONFLICT when one is already in flight for it."""
    try:
        with transaction.atomic():
            return Execution.objects.create(
                pair=pair,
                pair_key=pair.id,
                trigger=Trigger(trigger),
                leg1_exchange=pair.leg1_exchange,
                leg1_symbol=pair.leg1_symbol,
                leg1_type=pair.leg1_type,
                leg2_exchange=pair.leg2_exchange,
                leg2_symbol=pair.leg2_symbol,
                leg2_type=pair.leg2_type,
            )
    except IntegrityError as exc:
        raise Conflict(f"an execution of {pair.id} is already in progress") from exc


def request_auto_execution(pair_id: str) -> Execution | None:
    """For the detector: queue an execution if the pair auto-executes and none is in flight."""
    pair = Pair.objects.filter(id=pair_id, enabled=True, auto_execute=True).first()
    if pair is None:
        return None
    try:
        execution = create_execution(pair, Trigger.AUTO)
    except Conflict:
        return None
    from trading.tasks import enqueue_execution

    transaction.on_commit(lambda: enqueue_execution(execution.id))
    return execution


def claim(execution_id: int, lease_seconds: float) -> Execution | None:
    """Take the execution if it is pending, or active with an expired lease; None otherwise."""
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    claimable = Q(state=ExecutionState.PENDING) | Q(
        state__in=[ExecutionState.RUNNING, ExecutionState.LEG_RISK], claimed_at__lt=stale
    )
    updated = Execution.objects.filter(Q(pk=execution_id) & claimable).update(
        state=Case(When(state=ExecutionState.PENDING, then=Value(ExecutionState.RUNNING.value)), default=F("state")),
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    if not updated:
        return None
    return Execution.objects.select_related("pair").get(pk=execution_id)


def recover_stale(lease_seconds: float | None = None) -> list[int]:
    """Active executions whose lease expired (their worker died): the beat sweep re-queues them."""
    lease = lease_seconds if lease_seconds is not None else Policy.from_settings().lease_seconds
    stale = timezone.now() - timedelta(seconds=lease)
    return list(
        Execution.objects.filter(
            state__in=[ExecutionState.RUNNING, ExecutionState.LEG_RISK], claimed_at__lt=stale
        ).values_list("id", flat=True)
    )


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class LegPlan:
    leg: int
    instrument: Instrument
    side: Side
    qty: Decimal
    expected_price: Decimal  # VWAP for qty on the cached book
    limit_price: Decimal  # worst level ± slippage cap, at the market's precision
    rules: MarketRules


@dataclass(frozen=True, slots=True)
class Plan:
    evaluation: spreads.Evaluation
    legs: tuple[LegPlan, LegPlan]


def _instrument(execution: Execution, leg: int) -> Instrument:
    if leg == 1:
        return Instrument(Exchange(execution.leg1_exchange), execution.leg1_symbol, MarketType(execution.leg1_type))
    return Instrument(Exchange(execution.leg2_exchange), execution.leg2_symbol, MarketType(execution.leg2_type))


_gather = gather_list


def _signed(side: Side | str, qty: Decimal) -> Decimal:
    return qty if Side(side) is Side.BUY else -qty


class _Runner(VenueLoop):
    """One claimed execution, driven to a terminal state (or left active for a rerun)."""

    def __init__(self, execution: Execution, factory: VenueFactory, policy: Policy,
                 session: KeptVenues | None = None) -> None:
        super().__init__(factory, session)
        self.ex = execution
        self.policy = policy

    # -- the whole flow
    def drive(self) -> None:
        # Only a rerun can find orders of its own (the first claim has sent nothing yet).
        entries = list(self.ex.orders.filter(purpose=OrderPurpose.ENTRY)) if self.ex.attempts > 1 else []
        if entries:
            self._step(LegRiskAction.RECONCILED, ZERO, f"rerun #{self.ex.attempts}: reconciling by client order id")
            self.refresh(entries, missing_means_unsent=True)
            entries = list(self.ex.orders.filter(purpose=OrderPurpose.ENTRY))
            if all(o.state == OrderState.NOT_FOUND for o in entries):
                # Nothing reached a venue before the crash: a fresh start, same client ids.
                plan = self.prepare()
                if plan is None:
                    return
                self.reprice(entries, plan)
                self.send(entries)
        else:
            plan = self.prepare()
            if plan is None:
                return
            entries = self.persist_entries(plan)
            self.send(entries)
        self.settle()

    # -- 2. re-validation
    def prepare(self) -> Plan | None:
        try:
            return self._prepare()
        except ApiError as exc:
            state = ExecutionState.REJECTED
            self._finish(state, code=exc.error_code, message=str(exc.detail))
            if self.ex.trigger == Trigger.AUTO and not hasattr(exc, "risk_check"):  # the gate alerted already
                self._alert("warning", exc.error_code, f"{self.ex.pair_key}: not executed: {exc.detail}")
            return None

    def _prepare(self) -> Plan:
        pair = self.ex.pair
        if pair is None:
            raise NotFound(f"pair {self.ex.pair_key} no longer exists")
        if not pair.enabled:
            raise RiskRejected(f"pair {pair.id} is disabled")
        inst1, inst2 = _instrument(self.ex, 1), _instrument(self.ex, 2)
        v1, v2 = self.venue(inst1.exchange), self.venue(inst2.exchange)
        if v1.paper != v2.paper:
            live, paper = (inst1, inst2) if v2.paper else (inst2, inst1)
            raise RiskRejected(
                f"{live.exchange} trades live but {paper.exchange} has no trading keys (paper): "
                "a half-paper arbitrage would leave real one-sided exposure"
            )

        async def gather() -> tuple[MarketRules, MarketRules, OrderBook | None, OrderBook | None, list[Any]]:
            # Balances ride along (one trip to the loop); their failure is reported at the gate's turn.
            balances = asyncio.gather(self.balance(inst1.exchange), self.balance(inst2.exchange),
                                      return_exceptions=True)
            r1, r2, b1, b2, free = await asyncio.wait_for(
                asyncio.gather(v1.rules(inst1), v2.rules(inst2), self.book(inst1), self.book(inst2), balances),
                timeout=self.policy.leg_timeout,
            )
            return r1, r2, b1, b2, list(free)

        pending = self.submit(gather())
        # The gate's database side (kill switch, states, breakers, limits) is read while that I/O runs.
        reads = risk.GateReads([pair.id], [inst1.exchange.value, inst2.exchange.value]).preload()
        rules1, rules2, book1, book2, balances = pending.result()
        for inst, book in ((inst1, book1), (inst2, book2)):
            if book is None:
                raise ExchangeUnavailable(f"no live order book for {inst.key}")
        assert book1 is not None and book2 is not None
        # Stale and crossed books, the threshold and capital in use are the risk gate's checks (below).
        qty = min(v1.amount_to_precision(inst1, pair.qty), v2.amount_to_precision(inst2, pair.qty))
        if qty <= 0:
            raise RiskRejected(f"qty {pair.qty} rounds to zero at the markets' precision")
        evaluation = spreads.evaluate(book1, book2, qty, pair.direction, rules1.taker_fee, rules2.taker_fee)
        if not evaluation.executable:
            raise RiskRejected(evaluation.reason)
        assert evaluation.net_edge_percent is not None and evaluation.net_edge is not None
        legs = []
        for leg, inst, venue, rules, quote in (
            (1, inst1, v1, rules1, evaluation.leg1),
            (2, inst2, v2, rules2, evaluation.leg2),
        ):
            side = Side(quote.side)
            assert quote.fill.worst_price is not None and quote.fill.avg_price is not None
            cap = 1 + self.policy.slippage if side is Side.BUY else 1 - self.policy.slippage
            limit = venue.price_to_precision(inst, quote.fill.worst_price * cap)
            check_minimums(rules, qty, limit)
            legs.append(LegPlan(leg, inst, side, qty, quote.fill.avg_price, limit, rules))
        # The one gate: every check (books, spread, slippage, limits, balances) and the reservation.
        for balance in balances:
            if isinstance(balance, BaseException):
                raise balance
        books = {1: book1, 2: book2}
        intents = []
        for plan, balance in zip(legs, balances, strict=True):
            book = books[plan.leg]
            top = book.best_ask if plan.side is Side.BUY else book.best_bid
            intents.append(risk.OrderIntent(
                exchange=plan.instrument.exchange.value, symbol=plan.instrument.symbol,
                type=plan.instrument.type.value, side=plan.side.value, qty=plan.qty,
                expected_price=top or plan.expected_price, executable_price=plan.expected_price,
                pair_id=pair.id, purpose=risk.Purpose.OPEN, balances=balance, fee_rate=plan.rules.taker_fee,
                net_edge_percent=evaluation.net_edge_percent, threshold_percent=pair.threshold,
                client_order_id=client_order_id(self.ex, plan.leg, OrderPurpose.ENTRY, 0), book=book,
            ))
        risk.check_orders(intents, reads)
        self.ex.direction = evaluation.direction.value
        self.ex.qty = qty
        self.ex.expected_buy_price = evaluation.buy_price
        self.ex.expected_sell_price = evaluation.sell_price
        self.ex.expected_net_edge = evaluation.net_edge
        self.ex.expected_net_edge_percent = evaluation.net_edge_percent
        self.ex.paper = bool(v1.paper or v2.paper)
        return Plan(evaluation, (legs[0], legs[1]))

    def _save_plan(self) -> None:
        """What the re-validation decided (direction, size, expected prices), saved with the orders."""
        self.ex.save(update_fields=["direction", "qty", "expected_buy_price", "expected_sell_price",
                                    "expected_net_edge", "expected_net_edge_percent", "paper", "updated_at"])

    # -- 3. persist, then send
    def persist_entries(self, plan: Plan) -> list[ExecutionOrder]:
        """The plan and both entry orders in one commit, marked as sending: they go out right after it.

        A crash between this commit and the venue's answer leaves them `sending`: a rerun looks each
        one up by client id (found: recorded; not found: sent again under the same id).
        """
        with transaction.atomic():
            self._save_plan()
            return [
                self._new_order(
                    p.leg, OrderPurpose.ENTRY, 0, p.instrument, p.side, p.qty, OrderType.LIMIT, p.limit_price,
                    state=OrderState.SENDING,
                )
                for p in plan.legs
            ]

    def reprice(self, entries: list[ExecutionOrder], plan: Plan) -> None:
        by_leg = {p.leg: p for p in plan.legs}
        with transaction.atomic():
            self._save_plan()
            for order in entries:
                p = by_leg[order.leg]
                order.side, order.qty, order.price, order.state = p.side.value, p.qty, p.limit_price, OrderState.NEW
                order.save(update_fields=["side", "qty", "price", "state", "updated_at"])

    def _new_order(
        self,
        leg: int,
        purpose: OrderPurpose,
        attempt: int,
        instrument: Instrument,
        side: Side,
        qty: Decimal,
        order_type: OrderType,
        price: Decimal | None,
        state: OrderState = OrderState.NEW,
    ) -> ExecutionOrder:
        return ExecutionOrder.objects.create(
            execution=self.ex,
            leg=leg,
            purpose=purpose,
            attempt=attempt,
            client_order_id=client_order_id(self.ex, leg, purpose, attempt),
            exchange=instrument.exchange.value,
            symbol=instrument.symbol,
            market_type=instrument.type.value,
            side=side.value,
            order_type=order_type.value,
            qty=qty,
            price=price,
            paper=self.venue(instrument.exchange).paper,
            state=state,
        )

    def send(self, orders: Sequence[ExecutionOrder]) -> None:
        """Send `orders` concurrently (each with a timeout) and record what came back."""
        new = [o for o in orders if o.state == OrderState.NEW]
        if new:
            ExecutionOrder.objects.filter(pk__in=[o.pk for o in new], state=OrderState.NEW).update(
                state=OrderState.SENDING
            )
        for order in new:
            order.state = OrderState.SENDING  # an answer lost on the way is an unknown outcome, not a rejection

        async def one(order: ExecutionOrder) -> OrderResult | ApiError:
            inst = _instrument(self.ex, order.leg)
            venue = self.venues[inst.exchange]
            try:
                return await asyncio.wait_for(
                    venue.create_order(
                        inst,
                        order.side,
                        order.qty,
                        order_type=order.order_type,
                        price=order.price,
                        client_order_id=order.client_order_id,
                    ),
                    timeout=self.policy.leg_timeout,
                )
            except TimeoutError:
                try:  # the answer was lost, not necessarily the order: look for it
                    found = await asyncio.wait_for(
                        venue.fetch_order(inst, order.client_order_id), timeout=self.policy.leg_timeout
                    )
                except (TimeoutError, ApiError):
                    found = None
                return found or ExchangeUnavailable(f"{inst.exchange}: no answer within {self.policy.leg_timeout}s")
            except ApiError as exc:
                return exc

        for order in orders:
            self.venue(Exchange(order.exchange))
        results = self.run(_gather(*(one(o) for o in orders)))
        for order, result in zip(orders, results, strict=True):
            self._publish_submitted(order, result)
            self.record(order, result)
            self._risk_record(order, result)

    def refresh(self, orders: Sequence[ExecutionOrder], *, missing_means_unsent: bool) -> None:
        """Look unsettled orders up by client id; cancel any still working; record them."""
        pending = [o for o in orders if o.state in UNSETTLED_ORDER_STATES]
        for order in pending:
            self.venue(Exchange(order.exchange))

        async def one(order: ExecutionOrder) -> OrderResult | ApiError | None:
            inst = _instrument(self.ex, order.leg)
            venue = self.venues[inst.exchange]
            try:
                found = await asyncio.wait_for(
                    venue.fetch_order(inst, order.client_order_id), timeout=self.policy.leg_timeout
                )
                if found is not None and found.status is OrderStatus.OPEN:
                    found = await asyncio.wait_for(
                        venue.cancel_order(inst, order.client_order_id), timeout=self.policy.leg_timeout
                    )
                return found
            except (TimeoutError, ApiError) as exc:
                return exc if isinstance(exc, ApiError) else ExchangeUnavailable(f"{inst.exchange}: lookup timed out")

        results = self.run(_gather(*(one(o) for o in pending)))
        for order, result in zip(pending, results, strict=True):
            if result is None:
                if missing_means_unsent:
                    order.state = OrderState.NOT_FOUND
                    order.error_message = "not found at the venue by client order id"
                    order.save(update_fields=["state", "error_message", "updated_at"])
                    if order.purpose != OrderPurpose.ENTRY:
                        risk.release(self._risk_intent(order))  # entries are re-sent with the same ids
            elif isinstance(result, OrderResult):
                self.record(order, result)
                self._risk_record(order, result)
            # an ApiError leaves the order unsettled: the next pass (or operator) looks again

    def record(self, order: ExecutionOrder, result: OrderResult | ApiError) -> None:
        """Store one venue answer on its order row (idempotent: fills are replaced, not added)."""
        if isinstance(result, ApiError):
            if isinstance(result, ExchangeUnavailable) and order.state == OrderState.SENDING:
                state = OrderState.SENDING  # unknown outcome: reconciled later, never assumed
            else:
                state = OrderState.REJECTED
            order.state, order.error_code, order.error_message = state, result.error_code, str(result.detail)
            order.save(update_fields=["state", "error_code", "error_message", "updated_at"])
            self._event("order_failed", order, code=result.error_code, message=str(result.detail))
            return
        previously_filled = order.filled_qty
        with transaction.atomic():
            order.apply(result)
            order.save()
            if result.filled != previously_filled:
                order.fills.all().delete()
                fills = [(f.price, f.qty, f.fee) for f in result.fills] or [
                    (result.average or ZERO, result.filled, result.fee)]
                Fill.objects.bulk_create(Fill(order=order, price=p, qty=q, fee=f) for p, q, f in fills if q)
        if result.filled > 0 and result.filled != previously_filled:
            self._event("order_filled", order, price=result.average, qty=result.filled)
        elif result.filled == 0 and result.status.is_terminal:
            self._event(
                "order_failed", order, code=ErrorCode.UPSTREAM_ERROR, message=f"not filled ({result.status.value})"
            )

    # -- 5. settle, or resolve leg risk
    def exposure(self) -> tuple[Decimal, Decimal]:
        e1 = e2 = ZERO
        for order in self.ex.orders.all():
            if order.leg == 1:
                e1 += _signed(order.side, order.filled_qty)
            else:
                e2 += _signed(order.side, order.filled_qty)
        return e1, e2

    def settle(self) -> None:
        unknown = self._reconcile_unsettled()
        if unknown:
            self._outcome_unknown(unknown)
            return
        orders = list(self.ex.orders.all())
        e1, e2 = self.exposure()
        if e1 + e2 != 0 or self.ex.state == ExecutionState.LEG_RISK:
            self.resolve_leg_risk()
            return
        if e1 == 0 and e2 == 0:
            entries = [o for o in orders if o.purpose == OrderPurpose.ENTRY]
            failure = next((o for o in entries if o.error_code), None)
            code = failure.error_code if failure else ErrorCode.UPSTREAM_ERROR
            message = "; ".join(f"leg {o.leg}: {o.error_message or o.state}" for o in entries)
            self._finish(ExecutionState.FAILED, code=code, message=message or "nothing filled")
            return
        self._finish(ExecutionState.COMPLETED)

    def _reconcile_unsettled(self) -> list[ExecutionOrder]:
        """Look up every order without a final answer, a few times; what stays unknown is returned."""
        for attempt in range(self.policy.reconcile_attempts + 1):
            unsettled = [o for o in self.ex.orders.all() if o.state in UNSETTLED_ORDER_STATES]
            if not unsettled:
                return []
            if attempt == self.policy.reconcile_attempts:
                return unsettled
            if attempt:
                time.sleep(min(2.0, 0.25 * 2**attempt))
            self.refresh(unsettled, missing_means_unsent=True)
        return []

    def _outcome_unknown(self, orders: Sequence[ExecutionOrder]) -> None:
        """Never complete or flatten against a guess: stay active, say so, and let the sweep look again.

        The execution keeps its lease; when it expires the stale-execution sweep re-queues it and the
        rerun reconciles by client order id before doing anything else.
        """
        names = ", ".join(f"leg {o.leg} {o.purpose} {o.client_order_id} ({o.exchange})" for o in orders)
        message = (f"outcome unknown for {names}: the venue did not confirm or deny after "
                   f"{self.policy.reconcile_attempts} lookups; reconciled again when the lease expires")
        self.ex.error_message = message[:500]
        Execution.objects.filter(pk=self.ex.pk).update(error_message=self.ex.error_message)
        self._alert("critical", "EXECUTION_OUTCOME_UNKNOWN", f"{self.ex.pair_key} execution {self.ex.id}: {message}")
        logger.error("execution outcome unknown", extra={"event": "execution_outcome_unknown",
                                                         "pairId": self.ex.pair_key,
                                                         "detail": {"executionId": self.ex.id}})

    def resolve_leg_risk(self) -> None:
        ex = self.ex
        if ex.state != ExecutionState.LEG_RISK:
            ex.state = ExecutionState.LEG_RISK
            ex.save(update_fields=["state", "updated_at"])
            e1, e2 = self.exposure()
            self._step(
                LegRiskAction.DETECTED,
                e1 + e2,
                f"one-sided exposure: leg 1 {e1}, leg 2 {e2} (base units)",
                alert="error",
            )
        deadline = time.monotonic() + self.policy.leg_risk_seconds
        entry_side = {o.leg: Side(o.side) for o in ex.orders.filter(purpose=OrderPurpose.ENTRY)}

        def imbalance() -> Decimal:
            e1, e2 = self.exposure()
            return e1 + e2

        # Completion: trade the lagging leg in its entry direction, inside the slippage cap.
        while imbalance() != 0 and time.monotonic() < deadline:
            attempt = ex.orders.filter(purpose=OrderPurpose.COMPLETE).count()
            if attempt >= self.policy.complete_attempts:
                break
            gap = imbalance()
            leg = next(n for n, side in entry_side.items() if side.sign * gap < 0)
            order = self._resolution_order(leg, entry_side[leg], abs(gap), OrderPurpose.COMPLETE, attempt)
            if order is None:
                break
            self.send([order])
            order.refresh_from_db()
            if order.state in UNSETTLED_ORDER_STATES and self._reconcile_unsettled():
                self._outcome_unknown([order])
                return
            order.refresh_from_db()
            self._step(
                LegRiskAction.COMPLETE_ATTEMPT,
                imbalance(),
                f"complete leg {leg}: {order.side} {order.qty} limit {order.price} -> {order.state}, "
                f"filled {order.filled_qty}",
                order=order,
            )
        if imbalance() == 0:
            if ex.orders.filter(purpose=OrderPurpose.FLATTEN, filled_qty__gt=0).exists():
                # A rerun after the flatten filled but before it was marked done.
                self._step(LegRiskAction.FLATTENED, ZERO, "filled exposure flattened; no position left")
                self._finish(ExecutionState.FLATTENED)
                return
            self._step(LegRiskAction.COMPLETED, ZERO, "missing leg completed; hedged", alert="info")
            self._finish(ExecutionState.HEDGED)
            return

        # Flatten: take the leading leg's excess back out (IOC at the book within the flatten cap).
        while imbalance() != 0:
            attempt = ex.orders.filter(purpose=OrderPurpose.FLATTEN).count()
            if attempt >= self.policy.flatten_attempts:
                break
            gap = imbalance()
            leg = next(n for n, side in entry_side.items() if side.sign * gap > 0)
            order = self._resolution_order(leg, entry_side[leg].opposite, abs(gap), OrderPurpose.FLATTEN, attempt)
            if order is None:
                break
            self.send([order])
            order.refresh_from_db()
            if order.state in UNSETTLED_ORDER_STATES and self._reconcile_unsettled():
                self._outcome_unknown([order])
                return
            order.refresh_from_db()
            self._step(
                LegRiskAction.FLATTEN_ATTEMPT,
                imbalance(),
                f"flatten leg {leg}: {order.side} {order.qty} -> {order.state}, filled {order.filled_qty}",
                order=order,
            )
        left = imbalance()
        if left == 0:
            self._step(LegRiskAction.FLATTENED, ZERO, "filled exposure flattened; no position left", alert="warning")
            self._finish(ExecutionState.FLATTENED)
            return
        self._step(
            LegRiskAction.UNRESOLVED,
            left,
            f"{left} base units of one-sided exposure remain; operator action needed",
            alert="critical",
        )
        self._finish(
            ExecutionState.UNRESOLVED, code=ErrorCode.UPSTREAM_ERROR, message=f"unresolved one-sided exposure of {left}"
        )

    def _resolution_order(
        self, leg: int, side: Side, gap: Decimal, purpose: OrderPurpose, attempt: int
    ) -> ExecutionOrder | None:
        """A completion or flatten order (limit IOC inside its cap), persisted before sending."""
        inst = _instrument(self.ex, leg)
        venue = self.venue(inst.exchange)
        try:
            rules = self.run(asyncio.wait_for(venue.rules(inst), timeout=self.policy.leg_timeout))
            qty = venue.amount_to_precision(inst, gap)
            price: Decimal | None = None
            order_type = OrderType.LIMIT
            if purpose is OrderPurpose.COMPLETE:
                # Aggressive, but never worse than the slippage cap around what we expected.
                reference = self.ex.expected_buy_price if side is Side.BUY else self.ex.expected_sell_price
                slippage = self.policy.slippage
            else:
                # Flatten at the book as it is now, within the (wider) flatten cap.
                book = self.run(self.book(inst))
                reference = (book.best_ask if side is Side.BUY else book.best_bid) if book is not None else None
                slippage = self.policy.flatten_slippage
            if reference is None:
                if purpose is OrderPurpose.COMPLETE:
                    raise RiskRejected("no expected price to cap the completion order")
                order_type = OrderType.MARKET  # no book to price it: take what is there
            else:
                cap = 1 + slippage if side is Side.BUY else 1 - slippage
                price = venue.price_to_precision(inst, reference * cap)
            reference_price = price if price is not None else reference
            check_minimums(rules, qty, reference_price)
            # Reducing orders pass the gate too (allowed in reducing-only state, never when halted).
            gate_price = reference_price or self.ex.expected_buy_price or self.ex.expected_sell_price
            if gate_price is None:
                raise RiskRejected(f"no price to check the {purpose.value} order against")
            balance = self.run(asyncio.wait_for(self.balance(inst.exchange), timeout=self.policy.leg_timeout))
            risk.check_order(risk.OrderIntent(
                exchange=inst.exchange.value, symbol=inst.symbol, type=inst.type.value, side=side.value, qty=qty,
                expected_price=reference or gate_price, executable_price=gate_price, pair_id=self.ex.pair_key,
                purpose=_RISK_PURPOSE[purpose], balances=balance, fee_rate=rules.taker_fee,
                client_order_id=client_order_id(self.ex, leg, purpose, attempt),
            ))
        except (ApiError, TimeoutError) as exc:
            detail = exc.detail if isinstance(exc, ApiError) else "timed out"
            self._step(
                LegRiskAction.COMPLETE_ATTEMPT if purpose is OrderPurpose.COMPLETE else LegRiskAction.FLATTEN_ATTEMPT,
                gap,
                f"cannot {purpose.value} leg {leg}: {detail}",
            )
            return None
        return self._new_order(leg, purpose, attempt, inst, side, qty, order_type, price)

    # -- results, events, alerts
    def _finish(self, state: ExecutionState, *, code: str = "", message: str = "") -> None:
        ex = self.ex
        ex.state = state
        ex.error_code, ex.error_message = code, message
        if state in (
            ExecutionState.COMPLETED,
            ExecutionState.HEDGED,
            ExecutionState.FLATTENED,
            ExecutionState.UNRESOLVED,
            ExecutionState.FAILED,
        ):
            self._summarise()
        ex.finished_at = timezone.now()
        ex.save()
        if ex.pnl is not None and ex.pnl != 0:
            try:  # the daily loss and the moving-window PnL guard count every realised result
                risk.record_pnl(ex.pnl, pair_id=ex.pair_key, ref=f"execution:{ex.id}")
            except Exception:
                logger.exception("realised PnL not recorded", extra={"event": "risk_pnl_failed",
                                                                     "pairId": ex.pair_key})
        logger.info(
            "execution finished",
            extra={
                "event": "execution_finished",
                "pairId": ex.pair_key,
                "success": state in (ExecutionState.COMPLETED, ExecutionState.HEDGED),
                "error_code": code or None,
                "detail": {"executionId": ex.id, "state": state.value, "paper": ex.paper},
            },
        )

    def _summarise(self) -> None:
        """Spread from the entry fills; PnL and fees over every fill (cash in − cash out − fees)."""
        ex = self.ex
        orders = list(ex.orders.all())
        cash = fee_total = ZERO
        unpriced = []
        for o in orders:
            if o.filled_qty and o.avg_price is not None:
                cash += o.avg_price * o.filled_qty * (1 if o.side == "sell" else -1)
                fee = _fee_in_quote(o)
                if fee is None:
                    unpriced.append(f"{o.fee} {o.fee_currency} ({o.exchange} leg {o.leg})")
                else:
                    fee_total += fee
        ex.fees = fee_total
        if unpriced:
            self._alert("warning", "FEE_UNPRICED", f"{ex.pair_key} execution {ex.id}: fees {', '.join(unpriced)} "
                        "could not be priced in the quote currency; fees and PnL exclude them")
        e1, e2 = self.exposure()
        ex.pnl = cash - fee_total if e1 + e2 == 0 else None
        entries = {o.side: o for o in orders if o.purpose == OrderPurpose.ENTRY and o.avg_price is not None}
        if "buy" in entries and "sell" in entries:
            buy_price = entries["buy"].avg_price
            sell_price = entries["sell"].avg_price
            assert buy_price is not None and sell_price is not None
            ex.spread = sell_price - buy_price
            ex.spread_percent = ex.spread / buy_price * HUNDRED

    def _step(
        self,
        action: LegRiskAction,
        imbalance: Decimal,
        detail: str,
        *,
        order: ExecutionOrder | None = None,
        alert: str | None = "warning",
    ) -> None:
        LegRiskStep.objects.create(execution=self.ex, action=action, imbalance=imbalance, detail=detail, order=order)
        logger.warning(
            "leg risk step",
            extra={
                "event": "leg_risk_step",
                "pairId": self.ex.pair_key,
                "detail": {"executionId": self.ex.id, "action": action.value},
            },
        )
        if alert and action is not LegRiskAction.RECONCILED:
            self._alert(alert, "LEG_RISK", f"{self.ex.pair_key} execution {self.ex.id}: {detail}")

    def _alert(self, severity: str, code: str, message: str) -> None:
        _publish(
            "engine_alert",
            {
                "severity": severity,
                "code": code,
                "message": message,
                "pairId": self.ex.pair_key,
                "executionId": self.ex.id,
                "ts": now_ms(),
            },
        )

    def _event(self, event: str, order: ExecutionOrder, **data: Any) -> None:
        payload = {
            "exchange": order.exchange,
            "orderId": order.exchange_order_id or order.client_order_id,
            "clientOrderId": order.client_order_id,
            "symbol": order.symbol,
            "pairId": self.ex.pair_key,
            "paper": order.paper,
            "ts": now_ms(),
            **data,
        }
        _publish(event, payload)

    def _risk_intent(self, order: ExecutionOrder) -> risk.OrderIntent:
        """The gate's view of a stored order (its reservation is found by client order id)."""
        price = order.price or order.avg_price or self.ex.expected_buy_price or Decimal(1)
        return risk.OrderIntent(
            exchange=order.exchange, symbol=order.symbol, type=order.market_type, side=order.side, qty=order.qty,
            expected_price=price, executable_price=price, pair_id=self.ex.pair_key,
            purpose=_RISK_PURPOSE[OrderPurpose(order.purpose)], client_order_id=order.client_order_id,
        )

    def _risk_record(self, order: ExecutionOrder, result: OrderResult | ApiError) -> None:
        """Tell the gate how the order ended: trues up its reservation, feeds the breakers."""
        intent = self._risk_intent(order)
        if isinstance(result, ApiError):
            ok = isinstance(result, RiskRejected)  # our own refusal, not the venue failing
            final = order.state != OrderState.SENDING  # unknown outcome: reconciled later
            risk.record_result(intent, filled=order.filled_qty, avg_price=order.avg_price, ok=ok,
                               error_code=result.error_code, message=str(result.detail), final=final)
        elif result.status.is_terminal:
            risk.record_result(intent, filled=result.filled, avg_price=result.average,
                               ok=result.status is not OrderStatus.REJECTED)

    def _publish_submitted(self, order: ExecutionOrder, result: OrderResult | ApiError) -> None:
        if isinstance(result, OrderResult):
            order.exchange_order_id = result.order_id or ""
            self._event("order_submitted", order, side=order.side, qty=order.qty)


def _fee_in_quote(order: ExecutionOrder) -> Decimal | None:
    """The order's fee in its quote currency (a third asset, e.g. BNB, at its mid on the venue)."""
    base, quote = split_symbol(order.symbol)
    third = None
    if order.fee and order.fee_currency not in ("", base, quote):
        third = fees.third_asset_price(order.exchange, order.fee_currency, quote)
    return fees.fee_in_quote(order.fee, order.fee_currency, base, quote, order.avg_price, third)


def execute(
    execution_id: int, *, venue_factory: VenueFactory | None = None, lease_seconds: float | None = None
) -> Execution | None:
    """Run (or resume) one execution; returns it as it ended, or as it is when another run owns it."""
    policy = Policy.from_settings()
    execution = claim(execution_id, policy.lease_seconds if lease_seconds is None else lease_seconds)
    if execution is None:
        return Execution.objects.filter(pk=execution_id).first()
    factory = venue_factory or venue_for
    # Production venues are kept open by the worker (connections, markets, balances); a test's own
    # factory gets a private loop and venues opened for this run alone.
    runner = _Runner(execution, factory, policy, session_for(factory))
    started = time.perf_counter()
    try:
        runner.drive()
    except Exception as exc:
        # Unexpected (database down, a bug): the row stays active, so a rerun after the
        # lease reconciles it by client id; nothing is assumed sent or unsent.
        execution.error_message = f"interrupted: {type(exc).__name__}"
        Execution.objects.filter(pk=execution.pk).update(error_message=execution.error_message)
        logger.exception(
            "execution interrupted", extra={"event": "execution_interrupted", "pairId": execution.pair_key}
        )
        raise
    finally:
        runner.close()
    from arbsite import metrics

    metrics.observe("execution_latency", (time.perf_counter() - started) * 1000)
    # A risk rejection is the gate working, not a failed execution: counted apart from both.
    if execution.state in (ExecutionState.COMPLETED, ExecutionState.HEDGED):
        metrics.incr("execution_success")
    elif execution.state == ExecutionState.REJECTED:
        metrics.incr("execution_rejected")
    else:
        metrics.incr("execution_failure")
    return execution


def error_for(execution: Execution) -> ApiError:
    """The API error a rejected or failed execution answers with."""
    cls = _ERRORS.get(execution.error_code, UpstreamError)
    return cls(execution.error_message or "execution failed")


# --------------------------------------------------------------------------- API shapes


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _leg_result(execution: Execution, orders: list[ExecutionOrder], leg: int) -> dict[str, Any]:
    inst = _instrument(execution, leg)
    entry = next((o for o in orders if o.leg == leg and o.purpose == OrderPurpose.ENTRY), None)
    out: dict[str, Any] = {"exchange": inst.exchange.value, "symbol": inst.symbol, "type": inst.type.value}
    if entry is None:
        out.update({"orderId": None, "success": False, "price": None, "qty": 0.0})
        return out
    out.update(
        {
            "orderId": entry.exchange_order_id or entry.client_order_id,
            "clientOrderId": entry.client_order_id,
            "side": entry.side,
            "success": entry.state == OrderState.FILLED,
            "status": entry.state,
            "price": _num(entry.avg_price),
            "qty": float(entry.filled_qty),
            "fee": float(entry.fee),
            "paper": entry.paper,
        }
    )
    if entry.error_code or entry.error_message:
        code = entry.error_code or ErrorCode.UPSTREAM_ERROR
        out.update({"code": code, "message": entry.error_message,
                    "error": {"code": code, "message": entry.error_message}})
    return out


def execution_response(execution: Execution) -> dict[str, Any]:
    """The contract's execution result, plus `executionId`, `paper`, `fees`, `state` and leg-risk steps."""
    orders = list(execution.orders.all())
    steps = list(execution.leg_risk_steps.all())
    finished = execution.finished_at or execution.updated_at
    return {
        "executionId": execution.id,
        "pairId": execution.pair_key,
        "leg1": _leg_result(execution, orders, 1),
        "leg2": _leg_result(execution, orders, 2),
        "spread": _num(execution.spread),
        "spreadPercent": _num(execution.spread_percent),
        "pnl": _num(execution.pnl),
        "fees": _num(execution.fees),
        "paper": execution.paper,
        "state": execution.state,
        "trigger": execution.trigger,
        "direction": execution.direction or None,
        "qty": _num(execution.qty),
        "expectedNetEdge": _num(execution.expected_net_edge),
        "expectedNetEdgePercent": _num(execution.expected_net_edge_percent),
        "error": ({"code": execution.error_code, "message": execution.error_message} if execution.error_code else None),
        "orders": [
            {
                "leg": o.leg,
                "purpose": o.purpose,
                "clientOrderId": o.client_order_id,
                "orderId": o.exchange_order_id or None,
                "exchange": o.exchange,
                "symbol": o.symbol,
                "side": o.side,
                "type": o.order_type,
                "qty": float(o.qty),
                "price": _num(o.price),
                "status": o.state,
                "filledQty": float(o.filled_qty),
                "avgPrice": _num(o.avg_price),
                "fee": float(o.fee),
                "feeCurrency": o.fee_currency or None,
            }
            for o in orders
        ],
        "legRisk": [
            {
                "action": s.action,
                "imbalance": float(s.imbalance),
                "detail": s.detail,
                "ts": int(s.created_at.timestamp() * 1000),
            }
            for s in steps
        ],
        "ts": int(finished.timestamp() * 1000),
    }


def net_exposure() -> dict[str, Any]:
    """Net filled base quantity per venue/instrument and per asset, over every execution's orders.

    Hedged executions leave +q on one venue and −q on the other (the position the desk
    holds); `assets` nets venues together, so anything non-zero there is one-sided.
    """
    rows = (
        ExecutionOrder.objects.exclude(filled_qty=0)
        .values("exchange", "symbol", "market_type", "side", "paper")
        .annotate(total=Sum("filled_qty"))
    )
    venues: dict[tuple[str, str, str, bool], Decimal] = {}
    for row in rows:
        k = (row["exchange"], row["symbol"], row["market_type"], row["paper"])
        venues[k] = venues.get(k, ZERO) + _signed(row["side"], row["total"])
    assets: dict[tuple[str, bool], Decimal] = {}
    for (_, symbol, _, paper), qty in venues.items():
        base = split_symbol(symbol)[0]
        assets[(base, paper)] = assets.get((base, paper), ZERO) + qty
    unresolved = Execution.objects.filter(state=ExecutionState.UNRESOLVED).values_list("id", flat=True)
    active = Execution.objects.filter(state__in=ACTIVE_STATES).values_list("id", flat=True)
    return {
        "venues": [
            {"exchange": e, "symbol": s, "type": t, "asset": split_symbol(s)[0], "netQty": float(q), "paper": p}
            for (e, s, t, p), q in sorted(venues.items())
            if q != 0
        ],
        "assets": [{"asset": a, "netQty": float(q), "paper": p} for (a, p), q in sorted(assets.items())],
        "oneSided": [{"asset": a, "netQty": float(q), "paper": p} for (a, p), q in sorted(assets.items()) if q != 0],
        "unresolvedExecutions": list(unresolved),
        "activeExecutions": list(active),
    }
