"""The gate every order passes before it reaches a venue (the I/O side of the risk engine).

    intents = [OrderIntent(...), OrderIntent(...)]   # one per order about to be sent
    check_orders(intents)        # raises RiskRejected(reason); reserves exposure when it passes
    ... send ...
    record_result(intent, filled=..., avg_price=..., ok=...)   # trues up, feeds the breakers
    release(intent)              # an intent that passed but was never sent

`check_orders` is all-or-nothing: both legs of an arbitrage (or a TWAP slice) pass together
or neither reserves anything. Reservations (position per venue and asset, daily notional)
are taken for the full quantity inside one transaction with the usage rows locked, so no
interleaving of orders can push a position or the day's notional past its limit; the fill
then trues them down. Reducing orders (leg-risk completion, flatten) pass in reducing-only
state and skip the limits that would only stop them from reducing exposure.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from arbsite.errors import ErrorCode, RiskRejected
from trading.risk import checks
from trading.risk.checks import Check, Rejection

logger = logging.getLogger("trading.risk")

ZERO = Decimal(0)
GLOBAL = "global"
ANON_PREFIX = "anon-"


class Purpose(StrEnum):
    OPEN = "open"  # an arbitrage entry leg (auto or manual)
    COMPLETE = "complete"  # leg-risk: the lagging leg, completing the hedge
    FLATTEN = "flatten"  # leg-risk: taking the leading leg's excess back out
    TWAP = "twap"  # a TWAP slice leg

    @property
    def reducing(self) -> bool:
        return self in (Purpose.COMPLETE, Purpose.FLATTEN)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One order about to be sent.

    `type` is the market type (`spot` | `linear`), as on `Instrument`. `expected_price` is the
    price the decision was made on (top of book, the plan's reference); `executable_price` is
    what filling `qty` costs on the book now (its VWAP). `balances` are the account's free
    balances on that venue, read just before (None: unknown, which is rejected). For
    arbitrage entries, `net_edge_percent` / `threshold_percent` carry the re-validated spread.
    """

    exchange: str
    symbol: str
    type: str
    side: str
    qty: Decimal
    expected_price: Decimal
    executable_price: Decimal
    pair_id: str | None = None
    plan_id: str | None = None
    purpose: Purpose | str = Purpose.OPEN
    balances: Mapping[str, Decimal] | None = None
    fee_rate: Decimal = ZERO
    net_edge_percent: Decimal | None = None
    threshold_percent: Decimal | None = None
    client_order_id: str = ""
    checks_done: frozenset[str] = field(default_factory=frozenset)  # checks the caller already ran (books)
    book: Any = None  # the cached book the caller decided on (an OrderBook); read again when absent

    @property
    def reducing(self) -> bool:
        return Purpose(self.purpose).reducing

    @property
    def base(self) -> str:
        from exchanges.symbols import split_symbol

        return split_symbol(self.symbol)[0]

    @property
    def quote(self) -> str:
        from exchanges.symbols import split_symbol

        return split_symbol(self.symbol)[1]

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side == "buy" else -self.qty

    @property
    def notional(self) -> Decimal:
        return self.qty * self.executable_price

    @property
    def label(self) -> str:
        return f"{self.exchange} {self.type} {self.symbol}"


# --------------------------------------------------------------------------- limits and states


@dataclass(frozen=True, slots=True)
class Limits:
    """Effective limits for one pair (pair overrides on top of the global row)."""

    values: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def global_limits_row() -> Any:
    from trading.risk_models import RiskLimits, limit_defaults

    row = RiskLimits.objects.filter(pair__isnull=True).first()
    if row is None:
        row, _ = RiskLimits.objects.get_or_create(pair=None, defaults=limit_defaults())
    return row


def effective_limits(pair_id: str | None = None) -> Limits:
    """The global row's limits with the pair's own on top (one query for both rows)."""
    return limits_for([pair_id])[pair_id]


def limits_for(pair_ids: Sequence[str | None]) -> dict[str | None, Limits]:
    """Effective limits of each pair (None: the global ones), from one query for every row involved."""
    from django.db.models import Q

    from trading.risk_models import LIMIT_FIELDS, RiskLimits, limit_defaults

    own_ids = sorted({p for p in pair_ids if p})
    wanted = Q(pair__isnull=True) | Q(pair_id__in=own_ids) if own_ids else Q(pair__isnull=True)
    rows = list(RiskLimits.objects.filter(wanted))
    glob = next((r for r in rows if r.pair_id is None), None) or global_limits_row()
    defaults = limit_defaults()
    base = glob.values()
    global_values = {k: (base[k] if base[k] is not None else defaults[k]) for k in LIMIT_FIELDS}
    own = {r.pair_id: r for r in rows if r.pair_id is not None}
    out: dict[str | None, Limits] = {}
    for pair_id in pair_ids:
        values = dict(global_values)
        if pair_id and pair_id in own:
            values.update({k: v for k, v in own[pair_id].values().items() if v is not None})
        out[pair_id] = Limits(values)
    return out


def pair_scope(pair_id: str) -> str:
    return f"pair:{pair_id}"


def exchange_scope(exchange: str) -> str:
    return f"exchange:{exchange}"


@dataclass(frozen=True, slots=True)
class ScopeState:
    scope: str
    state: str
    reason: str = ""


def _state_of(scope: str, row: Any) -> ScopeState:
    """A scope's state from its row (None: never paused); lifts an automatic pause that ran its course."""
    from trading.risk_models import State, TradingState

    if row is None or row.state == State.ACTIVE:
        return ScopeState(scope, State.ACTIVE)
    if row.until is not None and row.until <= timezone.now():
        # An automatic pause that has run its course (an exchange ban's retry-after).
        TradingState.objects.filter(pk=row.pk, until=row.until).update(state=State.ACTIVE, until=None)
        return ScopeState(scope, State.ACTIVE)
    return ScopeState(scope, row.state, row.reason)


_ORDER = {"active": 0, "reducing": 1, "halted": 2}


def scope_states(scopes: Sequence[str]) -> dict[str, ScopeState]:
    """Each scope's own state (one query for all of them)."""
    from trading.risk_models import TradingState

    rows = {row.scope: row for row in TradingState.objects.filter(scope__in=list(scopes))}
    return {scope: _state_of(scope, rows.get(scope)) for scope in scopes}


def _state_scopes(pair_id: str | None, exchange: str | None) -> list[str]:
    return [GLOBAL] + ([pair_scope(pair_id)] if pair_id else []) + ([exchange_scope(exchange)] if exchange else [])


def _engaged_kill_switch() -> ScopeState | None:
    from trading.risk_models import KillSwitch

    kill = KillSwitch.objects.filter(pk=1, engaged=True).first()
    return None if kill is None else ScopeState("kill switch", "halted", kill.reason)


def _most_restrictive(states: Sequence[ScopeState]) -> ScopeState:
    return max(states, key=lambda s: _ORDER.get(s.state, 0))


def trading_state(pair_id: str | None = None, exchange: str | None = None) -> ScopeState:
    """The most restrictive of kill switch, global, pair and exchange states."""
    kill = _engaged_kill_switch()
    if kill is not None:
        return kill
    return _most_restrictive(list(scope_states(_state_scopes(pair_id, exchange)).values()))


def set_state(
    scope: str, state: str, reason: str = "", *, user: str = "", source: str = "api", automatic: bool = False,
    until: datetime | None = None,
) -> bool:
    """Set a scope's state (audited); returns whether it changed."""
    from trading.risk_models import LimitChange, TradingState

    with transaction.atomic():
        row, _ = TradingState.objects.select_for_update().get_or_create(scope=scope)
        changed = row.state != state or row.reason != reason
        old = row.state
        row.state, row.reason, row.automatic, row.until = state, reason, automatic, until
        row.updated_by = user or source
        row.save()
        if changed:
            LimitChange.objects.create(
                username=user, source=source, scope=scope, field="state", old_value=old, new_value=f"{state} {reason}"
            )
    return changed


def pause(scope: str, reason: str, *, check: str, pair_id: str = "", exchange: str = "",
          state: str = "reducing", until: datetime | None = None, severity: str = "error") -> bool:
    """The engine pauses a scope by itself, with an alert that says why (once per change)."""
    from trading.risk.alerts import raise_alert

    changed = set_state(scope, state, reason, source="engine", automatic=True, until=until)
    if changed:
        raise_alert(severity, ErrorCode.RISK_REJECTED, f"{scope} paused ({state}): {reason}",
                    pair_id=pair_id, exchange=exchange, check=check)
    return changed


# --------------------------------------------------------------------------- usage


def utc_today() -> date:
    return datetime.now(UTC).date()


def _usage(scope: str, day: date | None = None, *, lock: bool = False) -> Any:
    from trading.risk_models import DailyUsage

    day = day or utc_today()
    qs = DailyUsage.objects.select_for_update() if lock else DailyUsage.objects
    row = qs.filter(day=day, scope=scope).first()
    if row is None:
        DailyUsage.objects.get_or_create(day=day, scope=scope)
        row = qs.get(day=day, scope=scope)
    return row


def _position(exchange: str, asset: str, *, lock: bool = False) -> Any:
    from trading.risk_models import RiskPosition

    qs = RiskPosition.objects.select_for_update() if lock else RiskPosition.objects
    row = qs.filter(exchange=exchange, asset=asset).first()
    if row is None:
        RiskPosition.objects.get_or_create(exchange=exchange, asset=asset)
        row = qs.get(exchange=exchange, asset=asset)
    return row


def position_range(row: Any) -> tuple[Decimal, Decimal]:
    """Where the position may end once every unsettled order reports: [low, high]."""
    return row.qty - row.pending_short, row.qty + row.pending_long


def _apply(row: Any, signed_qty: Decimal, *, sign: int = 1) -> None:
    """Add (sign=1) or remove (sign=-1) an unsettled order's quantity on its side."""
    if signed_qty > 0:
        row.pending_long += sign * signed_qty
    else:
        row.pending_short += sign * -signed_qty


def capital_in_use(pair_id: str) -> Decimal:
    """Quote deployed by the pair's completed (or hedged) executions: the same measure execution used."""
    from trading.execution_models import Execution, ExecutionState

    return (
        Execution.objects.filter(pair_key=pair_id, state__in=[ExecutionState.COMPLETED, ExecutionState.HEDGED])
        .aggregate(total=Sum(F("qty") * F("expected_buy_price")))["total"]
        or ZERO
    )


def window_pnl(pair_id: str, minutes: int) -> Decimal:
    from trading.risk_models import PnlRecord

    since = timezone.now() - timedelta(minutes=minutes)
    return PnlRecord.objects.filter(pair_id=pair_id, at__gte=since).aggregate(t=Sum("amount"))["t"] or ZERO


# --------------------------------------------------------------------------- market inputs


def _book_for(intent: OrderIntent) -> Any:
    if intent.book is not None:
        return intent.book
    from exchanges.order_books import read_book
    from exchanges.symbols import Exchange, Instrument, MarketType

    return read_book(Instrument(Exchange(intent.exchange), intent.symbol, MarketType(intent.type)))


def _mid(book: Any) -> Decimal | None:
    if book is None or book.best_bid is None or book.best_ask is None:
        return None
    return (book.best_bid + book.best_ask) / 2


def venue_mids(symbol: str, max_age_ms: Decimal | None) -> dict[tuple[str, str], Decimal]:
    """Fresh, uncrossed mids of `symbol` on every venue and market type the cache holds (one read)."""
    import json

    from arbsite.redis_client import get_redis
    from exchanges.order_books import OrderBook, book_key
    from exchanges.symbols import Exchange, Instrument, MarketType

    instruments = [Instrument(ex, symbol, mt) for ex in Exchange for mt in MarketType]
    try:
        raws = get_redis().mget([book_key(i) for i in instruments])
    except Exception:  # noqa: BLE001 - no cache: no comparison, the book check already failed
        return {}
    out: dict[tuple[str, str], Decimal] = {}
    for inst, raw in zip(instruments, raws, strict=True):
        if not raw:
            continue
        try:
            data = json.loads(raw)
            # Only the top of the book matters here: skip turning the depth into decimals.
            book = OrderBook.from_contract({**data, "bids": data.get("bids", [])[:1], "asks": data.get("asks", [])[:1]})
        except (ValueError, KeyError, TypeError):
            continue
        if max_age_ms is not None and book.age_ms() > max_age_ms:
            continue
        mid = _mid(book)
        if mid is not None and not book.is_crossed:
            out[(inst.exchange.value, inst.type.value)] = mid
    return out


def other_venue_mids(intent: OrderIntent, max_age_ms: Decimal | None,
                     mids: Mapping[tuple[str, str], Decimal] | None = None) -> dict[str, Decimal]:
    """Fresh mids of the same symbol on every other venue and market type the cache holds."""
    mids = venue_mids(intent.symbol, max_age_ms) if mids is None else mids
    return {f"{exchange} {kind}": mid for (exchange, kind), mid in mids.items()
            if not (exchange == intent.exchange and kind == intent.type)}


# --------------------------------------------------------------------------- the gate


_kill_hooks: list[Callable[[str], None]] = []


def on_kill(fn: Callable[[str], None]) -> None:
    """Register `fn(reason)` to run when the kill switch is engaged (TWAP pauses its plans)."""
    if fn not in _kill_hooks:
        _kill_hooks.append(fn)


def _reject(intent: OrderIntent, rejection: Rejection) -> RiskRejected:
    from trading.risk.alerts import record_rejection

    record_rejection(intent, rejection)
    error = RiskRejected(rejection.reason)
    error.risk_check = str(rejection.check)  # type: ignore[attr-defined]  # recorded and alerted already
    return error


class GateReads:
    """What one gate call reads once for all of its orders: limits, states, breakers, mids, PnL.

    Built from the pairs and exchanges involved, so a caller can `preload()` the database side
    while its venue I/O is in flight (execution does, on the way to an order) and hand it to
    `check_orders`; otherwise `check_orders` builds one from its intents and reads lazily.
    """

    def __init__(self, pair_ids: Sequence[str | None], exchanges: Sequence[str]) -> None:
        self.pair_ids = sorted({p for p in pair_ids if p})
        self.exchanges = sorted(set(exchanges))
        self._limits: dict[str | None, Limits] = {}
        self._states: dict[str, ScopeState] | None = None
        self._kill: ScopeState | None = None
        self._blocked: dict[str, str] | None = None
        self._mids: dict[tuple[str, Decimal | None], dict[tuple[str, str], Decimal]] = {}
        self._window: dict[tuple[str, int], Decimal] = {}

    @classmethod
    def for_intents(cls, intents: Sequence[OrderIntent]) -> GateReads:
        return cls([i.pair_id for i in intents], [i.exchange for i in intents])

    def covers(self, intents: Sequence[OrderIntent]) -> bool:
        return all((not i.pair_id or i.pair_id in self.pair_ids) and i.exchange in self.exchanges for i in intents)

    def preload(self) -> GateReads:
        """Read the database side now (kill switch, states, breakers, limits)."""
        self.limits(None)
        self._load_states()
        self._load_breakers()
        return self

    def limits(self, pair_id: str | None) -> Limits:
        if pair_id not in self._limits:
            # Every pair involved and the global row at once: the reservation needs both.
            self._limits.update(limits_for([None, pair_id, *self.pair_ids]))
        return self._limits[pair_id]

    def _load_states(self) -> dict[str, ScopeState]:
        if self._states is None:
            self._kill = _engaged_kill_switch()
            scopes = sorted({GLOBAL, *map(pair_scope, self.pair_ids), *map(exchange_scope, self.exchanges)})
            self._states = {} if self._kill is not None else scope_states(scopes)
        return self._states

    def _load_breakers(self) -> dict[str, str]:
        if self._blocked is None:
            from trading.risk import breaker

            self._blocked = breaker.blocking([*map(exchange_scope, self.exchanges), *map(pair_scope, self.pair_ids)])
        return self._blocked

    def state(self, pair_id: str | None, exchange: str) -> ScopeState:
        states = self._load_states()
        if self._kill is not None:
            return self._kill
        return _most_restrictive([states[s] for s in _state_scopes(pair_id, exchange)])

    def breaker(self, scope: str) -> str | None:
        return self._load_breakers().get(scope)

    def mids(self, symbol: str, max_age_ms: Decimal | None) -> dict[tuple[str, str], Decimal]:
        if (symbol, max_age_ms) not in self._mids:
            self._mids[(symbol, max_age_ms)] = venue_mids(symbol, max_age_ms)
        return self._mids[(symbol, max_age_ms)]

    def window_pnl(self, pair_id: str, minutes: int) -> Decimal:
        if (pair_id, minutes) not in self._window:
            self._window[(pair_id, minutes)] = window_pnl(pair_id, minutes)
        return self._window[(pair_id, minutes)]


def _breaker_scopes(intent: OrderIntent) -> list[str]:
    return [exchange_scope(intent.exchange)] + ([pair_scope(intent.pair_id)] if intent.pair_id else [])


def _market_checks(intent: OrderIntent, limits: Limits, reads: GateReads) -> list[Rejection | None]:
    """Checks that read the market: books, slippage, spread, deviation, abnormal move."""
    from trading.risk import prices

    out: list[Rejection | None] = []
    max_age_ms = limits.max_book_age_seconds * 1000 if limits.max_book_age_seconds is not None else None
    book = _book_for(intent)
    if "book" not in intent.checks_done:
        out.append(checks.book(intent.label, book.age_ms() if book is not None else None, max_age_ms,
                               bool(book is not None and book.is_crossed)))
    if intent.reducing:
        return out
    out.append(checks.slippage(intent.side, intent.expected_price, intent.executable_price,
                               limits.max_slippage_percent))
    if intent.threshold_percent is not None:
        out.append(checks.spread(intent.net_edge_percent, intent.threshold_percent))
    mid = _mid(book)
    if mid is not None:
        out.append(checks.price_deviation(f"{intent.exchange} {intent.type}", mid,
                                          other_venue_mids(intent, max_age_ms, reads.mids(intent.symbol, max_age_ms)),
                                          limits.max_price_deviation_percent))
        samples = prices.samples(intent.exchange, intent.type, intent.symbol, extra=(book.received_ts, mid))
        out.append(checks.abnormal_move(samples, checks_now_ms(), limits.abnormal_move_window_seconds,
                                        limits.abnormal_move_percent, label=intent.label))
    return out


def checks_now_ms() -> int:
    from exchanges.order_books import now_ms

    return now_ms()


def _state_checks(intent: OrderIntent, reads: GateReads) -> Rejection | None:
    state = reads.state(intent.pair_id, intent.exchange)
    rejection = checks.trading_state(state.state, reducing=intent.reducing, scope=state.scope, reason=state.reason)
    if rejection is not None:
        return rejection
    if intent.reducing:
        return None
    for scope in _breaker_scopes(intent):
        blocked = reads.breaker(scope)
        if blocked is not None:
            return Rejection(Check.BREAKER, blocked)
    return None


def fetch_balances(exchange: str) -> Mapping[str, Decimal] | None:
    """Free balances read from the venue now (live or paper), for callers that did not pass them."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return None  # cannot block a running loop: the caller must pass `balances`
    from exchanges.venues import venue_for

    async def read() -> dict[str, Decimal]:
        venue = venue_for(exchange)
        try:
            return await asyncio.wait_for(venue.fetch_balance(), timeout=10)
        finally:
            await venue.close()

    try:
        return asyncio.run(read())
    except Exception as exc:  # noqa: BLE001 - unknown balance: refused below, with the reason logged
        logger.warning("balance not read", extra={"event": "risk_balance_unknown", "exchange": exchange,
                                                  "detail": type(exc).__name__})
        return None


def _balance_check(intent: OrderIntent) -> Rejection | None:
    if intent.balances is None:
        return Rejection(Check.BALANCE, f"balance on {intent.exchange} unknown: not sent")
    leverage = Decimal(str(getattr(settings, "RISK_LINEAR_LEVERAGE", "1")))
    asset, needed = checks.spend(intent.type, intent.side, intent.qty, intent.executable_price, intent.fee_rate,
                                 intent.base, intent.quote, leverage=leverage, reducing=intent.reducing)
    return checks.balance(asset, intent.balances.get(asset), needed, exchange=intent.exchange)


def check_orders(intents: Sequence[OrderIntent], reads: GateReads | None = None) -> None:
    """Pass every intent or raise `RiskRejected` with the first reason; reserves exposure on success.

    What every intent needs (limits, states, breakers, other venues' mids) is read once per call,
    or taken from `reads` when the caller preloaded them for these pairs and exchanges.
    """
    if not intents:
        return
    # Balances of one venue are shared by the orders going to it in this batch.
    spent: dict[tuple[str, str], Decimal] = {}
    read: dict[str, Mapping[str, Decimal] | None] = {}
    if reads is None or not reads.covers(intents):
        reads = GateReads.for_intents(intents)
    for n, intent in enumerate(intents):
        if intent.balances is None:
            if intent.exchange not in read:
                read[intent.exchange] = fetch_balances(intent.exchange)
            intent = replace(intent, balances=read[intent.exchange])
            intents = [*intents[:n], intent, *intents[n + 1:]]
        if intent.qty <= 0 or intent.executable_price <= 0 or intent.expected_price <= 0:
            raise _reject(intent, Rejection(Check.BAD_INTENT, f"invalid order for {intent.label}: "
                                            f"qty {intent.qty}, price {intent.executable_price}"))
        rejection = _state_checks(intent, reads)
        if rejection is not None:
            raise _reject(intent, rejection)
        limits = reads.limits(intent.pair_id)
        rejection = checks.first(_market_checks(intent, limits, reads))
        if rejection is None:
            rejection = _balance_check(_minus_spent(intent, spent))
        if rejection is not None:
            raise _reject(intent, rejection)
    try:
        with transaction.atomic():
            _reserve(intents, reads)
    except _Refused as refused:
        raise _reject(refused.intent, refused.rejection) from None


class _Refused(Exception):
    def __init__(self, intent: OrderIntent, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.intent, self.rejection = intent, rejection


def _minus_spent(intent: OrderIntent, spent: dict[tuple[str, str], Decimal]) -> OrderIntent:
    if intent.balances is None:
        return intent
    leverage = Decimal(str(getattr(settings, "RISK_LINEAR_LEVERAGE", "1")))
    asset, needed = checks.spend(intent.type, intent.side, intent.qty, intent.executable_price, intent.fee_rate,
                                 intent.base, intent.quote, leverage=leverage, reducing=intent.reducing)
    k = (intent.exchange, asset)
    already = spent.get(k, ZERO)
    spent[k] = already + needed
    if not already:
        return intent
    balances = dict(intent.balances)
    balances[asset] = balances.get(asset, ZERO) - already
    return replace(intent, balances=balances)


def check_order(intent: OrderIntent) -> None:
    """One order through the gate (see `check_orders`)."""
    check_orders([intent])


def _already_reserved(intents: Sequence[OrderIntent]) -> set[str]:
    from trading.risk_models import RiskReservation

    ids = [i.client_order_id for i in intents if i.client_order_id]
    if not ids:
        return set()
    return set(RiskReservation.objects.filter(client_order_id__in=ids).values_list("client_order_id", flat=True))


def _locked_usage(scopes: Sequence[str], day: date) -> dict[str, Any]:
    """Today's usage rows of `scopes`, locked (created first when the day is new)."""
    from trading.risk_models import DailyUsage

    def locked() -> dict[str, Any]:
        return {row.scope: row for row in DailyUsage.objects.select_for_update()
                .filter(day=day, scope__in=list(scopes)).order_by("scope")}

    rows = locked()
    if len(rows) < len(scopes):
        for scope in scopes:
            if scope not in rows:
                DailyUsage.objects.get_or_create(day=day, scope=scope)
        rows = locked()
    return rows


def _locked_positions(intents: Sequence[OrderIntent]) -> dict[tuple[str, str], Any]:
    """Every venue's position row of the assets involved, locked (the net range spans them all)."""
    from trading.risk_models import RiskPosition

    assets = sorted({i.base for i in intents})

    def locked() -> dict[tuple[str, str], Any]:
        return {(p.exchange, p.asset): p for p in RiskPosition.objects.select_for_update()
                .filter(asset__in=assets).order_by("asset", "exchange")}

    rows = locked()
    missing = sorted({(i.exchange, i.base) for i in intents} - set(rows))
    if missing:
        for exchange, asset in missing:
            RiskPosition.objects.get_or_create(exchange=exchange, asset=asset)
        rows = locked()
    return rows


def _reserve(intents: Sequence[OrderIntent], reads: GateReads) -> None:
    """Limits that count: checked with the rows locked, then reserved for the full quantity."""
    from trading.risk_models import RiskReservation

    day = utc_today()
    # A rerun of the same orders (same client ids) passed and reserved before: not again.
    done = _already_reserved(intents)
    intents = [i for i in intents if not (i.client_order_id and i.client_order_id in done)]
    if not intents:
        return
    # Lock in a fixed order (usage by scope, then positions by key) so batches never deadlock.
    usage = _locked_usage(sorted({GLOBAL, *(pair_scope(i.pair_id) for i in intents if i.pair_id)}), day)
    positions = _locked_positions(intents)
    nets: dict[str, list[Decimal]] = {}
    for p in positions.values():
        low, high = position_range(p)
        net = nets.setdefault(p.asset, [ZERO, ZERO])
        net[0] += low
        net[1] += high
    added: dict[str, Decimal] = {}
    counted: dict[str, int] = {}
    reservations = []
    for intent in intents:
        limits = reads.limits(intent.pair_id)
        pos = positions[(intent.exchange, intent.base)]
        rejections: list[Rejection | None] = [
            checks.position(Check.VENUE_POSITION, f"{intent.exchange} {intent.base}", *position_range(pos),
                            intent.signed_qty, intent.executable_price, limits.max_position_notional_per_venue),
            checks.position(Check.NET_POSITION, f"net {intent.base}", nets[intent.base][0], nets[intent.base][1],
                            intent.signed_qty,
                            intent.executable_price, limits.max_net_position_notional),
        ]
        if not intent.reducing:
            glob = reads.limits(None)
            rejections += [
                checks.order_notional(intent.qty, intent.executable_price, limits.max_order_notional),
                checks.daily_loss(usage[GLOBAL].realised_pnl, glob.max_daily_loss),
                checks.daily_notional(usage[GLOBAL].notional + added.get(GLOBAL, ZERO), intent.notional,
                                      glob.max_daily_notional),
            ]
            if intent.pair_id:
                ps = pair_scope(intent.pair_id)
                rejections += [
                    checks.daily_loss(usage[ps].realised_pnl, limits.max_daily_loss, scope=intent.pair_id),
                    checks.daily_notional(usage[ps].notional + added.get(ps, ZERO), intent.notional,
                                          limits.max_daily_notional, scope=intent.pair_id),
                    checks.pnl_window(reads.window_pnl(intent.pair_id, limits.pnl_window_minutes),
                                      limits.pnl_window_floor, limits.pnl_window_minutes, scope=intent.pair_id),
                ]
                if intent.side == "buy" and intent.purpose == Purpose.OPEN:
                    rejections.append(_capital_check(intent))
        rejection = checks.first(rejections)
        if rejection is not None:
            raise _Refused(intent, rejection)  # rolls the batch back; reported outside the transaction
        # Reserve: the full quantity is pending on its side until the order reports.
        _apply(pos, intent.signed_qty)
        nets[intent.base][0 if intent.signed_qty < 0 else 1] += intent.signed_qty
        for scope in _scopes(intent):
            if not intent.reducing:
                added[scope] = added.get(scope, ZERO) + intent.notional
            counted[scope] = counted.get(scope, 0) + 1
        # Every reservation is a row (an anonymous id when the caller gave none), so an order that
        # never reports is released by the expiry sweep instead of holding its limit forever.
        reservations.append(RiskReservation(
            client_order_id=intent.client_order_id or f"{ANON_PREFIX}{uuid.uuid4().hex[:24]}",
            exchange=intent.exchange, asset=intent.base,
            signed_qty=intent.signed_qty, notional=ZERO if intent.reducing else intent.notional,
            pair_id=intent.pair_id or "", plan_id=intent.plan_id or "", purpose=str(intent.purpose),
        ))
    RiskReservation.objects.bulk_create(reservations)
    # Plain updates: cheaper to build than one bulk_update (measured), and increments stay atomic.
    for k in sorted({(i.exchange, i.base) for i in intents}):
        positions[k].save(update_fields=["pending_long", "pending_short", "updated_at"])
    for scope, n in sorted(counted.items()):
        type(usage[scope]).objects.filter(pk=usage[scope].pk).update(
            notional=F("notional") + added.get(scope, ZERO), orders=F("orders") + n
        )


def _scopes(intent: OrderIntent) -> list[str]:
    return [GLOBAL] + ([pair_scope(intent.pair_id)] if intent.pair_id else [])


def _capital_check(intent: OrderIntent) -> Rejection | None:
    from trading.models import Pair

    assert intent.pair_id is not None
    total = Pair.objects.filter(id=intent.pair_id).values_list("total_amount", flat=True).first()
    return checks.capital(capital_in_use(intent.pair_id), intent.notional, total)


# --------------------------------------------------------------------------- after sending


def _true_up(intent: OrderIntent, filled: Decimal, avg_price: Decimal | None) -> None:
    """Move the reservation (full qty at the executable price) to what actually filled; once per order."""
    from trading.risk_models import RiskReservation

    with transaction.atomic():
        if intent.client_order_id:
            row = RiskReservation.objects.select_for_update().filter(client_order_id=intent.client_order_id).first()
        else:  # no id: the oldest open reservation of the same shape
            row = (RiskReservation.objects.select_for_update()
                   .filter(client_order_id__startswith=ANON_PREFIX, settled_at__isnull=True, exchange=intent.exchange,
                           asset=intent.base, signed_qty=intent.signed_qty, pair_id=intent.pair_id or "",
                           plan_id=intent.plan_id or "").order_by("created_at").first())
        if row is None or row.settled_at is not None:
            return  # never reserved here (or already trued up): nothing to move
        signed, reserved_notional = row.signed_qty, row.notional
        row.settled_at, row.filled_qty = timezone.now(), filled
        row.save(update_fields=["settled_at", "filled_qty"])
        sign = 1 if signed > 0 else -1
        notional_delta = (filled * (avg_price or intent.executable_price) - reserved_notional
                          if reserved_notional else ZERO)
        pos = _position(intent.exchange, intent.base, lock=True)
        _apply(pos, signed, sign=-1)  # no longer pending...
        pos.qty += filled * sign  # ...and what filled is held
        pos.save(update_fields=["qty", "pending_long", "pending_short", "updated_at"])
        if notional_delta:
            for scope in _scopes(intent):
                row = _usage(scope, lock=True)
                type(row).objects.filter(pk=row.pk).update(notional=F("notional") + notional_delta)


def expire_reservations(max_age_seconds: float | None = None) -> int:
    """Beat: release reservations whose order never reported (a crashed caller), with an alert."""
    from datetime import timedelta as td

    from trading.risk.alerts import raise_alert
    from trading.risk_models import RiskReservation

    age = float(getattr(settings, "RISK_RESERVATION_TTL_SECONDS", 900)) if max_age_seconds is None else max_age_seconds
    cutoff = timezone.now() - td(seconds=age)
    expired = 0
    for row in RiskReservation.objects.filter(settled_at__isnull=True, created_at__lt=cutoff):
        with transaction.atomic():
            locked = RiskReservation.objects.select_for_update().filter(pk=row.pk, settled_at__isnull=True).first()
            if locked is None:
                continue
            locked.settled_at = timezone.now()
            locked.save(update_fields=["settled_at"])
            pos = _position(locked.exchange, locked.asset, lock=True)
            _apply(pos, locked.signed_qty, sign=-1)
            pos.save(update_fields=["pending_long", "pending_short", "updated_at"])
        expired += 1
        raise_alert("warning", "RISK_RESERVATION_EXPIRED",
                    f"order {locked.client_order_id} ({locked.signed_qty} {locked.asset} on {locked.exchange}) never "
                    f"reported a result within {age:.0f}s; its reservation was released",
                    pair_id=locked.pair_id, exchange=locked.exchange, check="reservation")
    return expired


def release(intent: OrderIntent) -> None:
    """An intent that passed the gate but was never sent: give its reservation back."""
    _true_up(intent, ZERO, None)


def record_result(
    intent: OrderIntent, *, filled: Decimal, avg_price: Decimal | None, ok: bool, error_code: str = "",
    message: str = "", final: bool = True,
) -> None:
    """After the venue answered: true up the reservation (when `final`) and feed the breakers.

    `ok` is False only for venue-side failures (errors, timeouts, rejections); an IOC order
    that simply did not fill at its limit is `ok`. `final=False` (outcome still unknown, the
    order is reconciled later) counts the outcome but keeps the reservation.
    """
    from trading.risk import breaker

    if final:
        try:
            _true_up(intent, filled, avg_price)
        except Exception:  # the send already happened; bookkeeping must not break the caller
            logger.exception("risk true-up failed",
                             extra={"event": "risk_true_up_failed", "exchange": intent.exchange})
    scopes = [exchange_scope(intent.exchange)] + ([pair_scope(intent.pair_id)] if intent.pair_id else [])
    for scope in scopes:
        try:
            breaker.record(scope, ok, reason=f"{error_code or 'error'}: {message}".strip(": "))
        except Exception:
            logger.exception("breaker bookkeeping failed", extra={"event": "breaker_record_failed"})


def record_pnl(amount: Decimal, *, pair_id: str | None = None, plan_id: str | None = None, ref: str = "") -> None:
    """A realised PnL: daily loss and the moving-window guard (which pauses the pair when below)."""
    from trading.risk_models import PnlRecord

    if ref and PnlRecord.objects.filter(ref=ref).exists():
        return  # already counted (a rerun finishing the same execution)
    PnlRecord.objects.create(pair_id=pair_id or "", plan_id=plan_id or "", amount=amount, ref=ref)
    scopes = [GLOBAL] + ([pair_scope(pair_id)] if pair_id else [])
    for scope in scopes:
        row = _usage(scope)
        type(row).objects.filter(pk=row.pk).update(realised_pnl=F("realised_pnl") + amount)
    limits = effective_limits(pair_id)
    if pair_id:
        rejection = checks.pnl_window(window_pnl(pair_id, limits.pnl_window_minutes), limits.pnl_window_floor,
                                      limits.pnl_window_minutes, scope=pair_id)
        if rejection is not None:
            pause(pair_scope(pair_id), rejection.reason, check=Check.PNL_WINDOW, pair_id=pair_id)
    glob = effective_limits(None)
    loss = checks.daily_loss(_usage(GLOBAL).realised_pnl, glob.max_daily_loss)
    if loss is not None and amount < 0:
        # Reducing-only for the rest of the UTC day; the midnight reset lifts it (reason starts "daily").
        pause(GLOBAL, loss.reason, check=Check.DAILY_LOSS, pair_id=pair_id or "")


# --------------------------------------------------------------------------- kill switch


def engage_kill_switch(reason: str, *, user: str = "", source: str = "api") -> Any:
    """Halt everything (persisted), cancel what is open, tell everyone."""
    from trading.risk.alerts import raise_alert
    from trading.risk_models import KillSwitch, LimitChange

    with transaction.atomic():
        row = KillSwitch.objects.select_for_update().get_or_create(pk=1)[0]
        was = row.engaged
        row.engaged, row.reason = True, reason or "kill switch engaged"
        row.engaged_by, row.engaged_at = user or source, timezone.now()
        row.save()
        LimitChange.objects.create(username=user, source=source, scope="kill_switch", field="engaged",
                                   old_value=str(was), new_value=f"True {row.reason}")
    raise_alert("critical", ErrorCode.RISK_REJECTED, f"KILL SWITCH engaged by {user or source}: {row.reason}",
                check=Check.KILL_SWITCH)
    for hook in list(_kill_hooks):
        try:
            hook(row.reason)
        except Exception:
            logger.exception("kill hook failed", extra={"event": "kill_hook_failed"})
    from trading.risk_tasks import enqueue_cancel_open_orders

    transaction.on_commit(enqueue_cancel_open_orders)
    return row


def clear_kill_switch(*, user: str, source: str = "api", reason: str = "") -> Any:
    """Only an operator resumes; pauses set meanwhile stay until cleared on their own."""
    from trading.risk.alerts import raise_alert
    from trading.risk_models import KillSwitch, LimitChange

    with transaction.atomic():
        row = KillSwitch.objects.select_for_update().get_or_create(pk=1)[0]
        was = row.engaged
        row.engaged = False
        row.cleared_by, row.cleared_at = user or source, timezone.now()
        if reason:
            row.reason = reason
        row.save()
        LimitChange.objects.create(username=user, source=source, scope="kill_switch", field="engaged",
                                   old_value=str(was), new_value="False")
    if was:
        raise_alert("warning", "KILL_SWITCH_CLEARED", f"kill switch cleared by {user or source}; trading may resume",
                    check=Check.KILL_SWITCH)
    return row
