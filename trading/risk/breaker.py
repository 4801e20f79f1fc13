"""Circuit breakers per pair and per exchange: closed -> open -> half-open -> closed.

N consecutive failures, or an error rate over the threshold within the window (with at
least `breaker_min_samples` outcomes), opens the breaker: opening orders for that scope are
refused, an `engine_alert` goes out, and after the cool-down it half-opens (the beat task,
or the gate finding the cool-down over). In half-open one outcome decides: a success closes
it, a failure opens it again for another cool-down.

`decide` is the pure state machine; `record` and `blocks` are its database side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from arbsite.errors import ErrorCode

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Counters:
    status: str  # closed | open | half_open
    consecutive_failures: int
    window_started_at: datetime
    window_total: int
    window_failures: int


@dataclass(frozen=True, slots=True)
class Policy:
    consecutive_failures: int
    error_rate_percent: Decimal
    window_seconds: int
    min_samples: int


def decide(c: Counters, ok: bool, now: datetime, policy: Policy) -> tuple[Counters, str | None]:
    """The counters after one outcome, and the reason to open (None: stays as it is or closes)."""
    started, total, failures = c.window_started_at, c.window_total, c.window_failures
    if (now - started).total_seconds() > policy.window_seconds:
        started, total, failures = now, 0, 0
    total += 1
    failures += 0 if ok else 1
    consecutive = 0 if ok else c.consecutive_failures + 1
    if c.status == "half_open":
        if ok:
            return Counters("closed", 0, now, 0, 0), None
        return Counters("open", consecutive, now, 0, 0), "the half-open trial failed"
    if c.status == "open":
        return Counters("open", consecutive, started, total, failures), None
    reason = None
    if not ok and policy.consecutive_failures and consecutive >= policy.consecutive_failures:
        reason = f"{consecutive} consecutive failures"
    elif not ok and total >= max(policy.min_samples, 1):
        rate = Decimal(failures) / Decimal(total) * HUNDRED
        if rate > policy.error_rate_percent:
            reason = f"error rate {rate:.0f}% over {total} orders in {policy.window_seconds}s"
    if reason:
        return Counters("open", consecutive, now, 0, 0), reason
    return Counters("closed", consecutive, started, total, failures), None


def _policy(scope: str) -> tuple[Policy, int]:
    from trading.risk.gate import effective_limits

    pair_id = scope.split(":", 1)[1] if scope.startswith("pair:") else None
    limits = effective_limits(pair_id)
    return (
        Policy(int(limits.breaker_consecutive_failures), Decimal(limits.breaker_error_rate_percent),
               int(limits.breaker_window_seconds), int(limits.breaker_min_samples)),
        int(limits.breaker_cooldown_seconds),
    )


def record(scope: str, ok: bool, *, reason: str = "") -> str:
    """Count one outcome for `scope`; opens (with an alert) when the policy says so. Returns the status."""
    from trading.risk_models import BreakerState, BreakerStatus

    policy, cooldown = _policy(scope)
    now = timezone.now()
    with transaction.atomic():
        row, _ = BreakerState.objects.select_for_update().get_or_create(scope=scope)
        if row.status == BreakerStatus.OPEN and row.opened_at and now - row.opened_at >= timedelta(seconds=cooldown):
            row.status = BreakerStatus.HALF_OPEN
        before = row.status
        counters, opened_because = decide(
            Counters(row.status, row.consecutive_failures, row.window_started_at, row.window_total,
                     row.window_failures),
            ok, now, policy,
        )
        row.status = counters.status
        row.consecutive_failures = counters.consecutive_failures
        row.window_started_at, row.window_total, row.window_failures = (
            counters.window_started_at, counters.window_total, counters.window_failures)
        if opened_because:
            row.opened_at = now
            row.reason = f"{opened_because} (last: {reason})" if reason else opened_because
        row.save()
    if opened_because:
        _alert_open(scope, row.reason, cooldown)
    elif before == BreakerStatus.HALF_OPEN and row.status == BreakerStatus.CLOSED:
        _alert(scope, "info", f"circuit breaker for {scope} closed after a successful trial")
    return str(row.status)


def blocks(scope: str) -> str | None:
    """Why `scope` refuses opening orders now, or None. Half-opens a breaker whose cool-down is over."""
    return blocking([scope]).get(scope)


def blocking(scopes: list[str]) -> dict[str, str]:
    """Why each of `scopes` refuses opening orders now (absent: it does not); one query for all."""
    from trading.risk_models import BreakerState, BreakerStatus

    out: dict[str, str] = {}
    for row in BreakerState.objects.filter(scope__in=scopes).exclude(status=BreakerStatus.CLOSED):
        if row.status == BreakerStatus.HALF_OPEN:
            continue
        _, cooldown = _policy(row.scope)
        if row.opened_at is not None and timezone.now() - row.opened_at >= timedelta(seconds=cooldown):
            if half_open(row.scope):
                continue
        out[row.scope] = f"circuit breaker open for {row.scope}: {row.reason}"
    return out


def half_open(scope: str) -> bool:
    """Open -> half-open (after the cool-down); returns whether this call moved it."""
    from trading.risk_models import BreakerState, BreakerStatus

    moved = BreakerState.objects.filter(scope=scope, status=BreakerStatus.OPEN).update(
        status=BreakerStatus.HALF_OPEN
    )
    if moved:
        _alert(scope, "info", f"circuit breaker for {scope} half-open: the next order is a trial")
    return bool(moved)


def half_open_due() -> list[str]:
    """Beat: half-open every breaker whose cool-down is over."""
    from trading.risk_models import BreakerState, BreakerStatus

    moved = []
    for row in BreakerState.objects.filter(status=BreakerStatus.OPEN):
        _, cooldown = _policy(row.scope)
        if row.opened_at is None or timezone.now() - row.opened_at >= timedelta(seconds=cooldown):
            if half_open(row.scope):
                moved.append(row.scope)
    return moved


def reset(scope: str) -> None:
    """An operator closes a breaker by hand."""
    from trading.risk_models import BreakerState, BreakerStatus

    BreakerState.objects.filter(scope=scope).update(status=BreakerStatus.CLOSED, consecutive_failures=0,
                                                    window_total=0, window_failures=0)


def _scope_fields(scope: str) -> dict[str, str]:
    kind, _, name = scope.partition(":")
    return {"pair_id": name} if kind == "pair" else {"exchange": name} if kind == "exchange" else {}


def _alert_open(scope: str, reason: str, cooldown: int) -> None:
    _alert(scope, "error", f"circuit breaker OPEN for {scope}: {reason}; paused, half-opens in {cooldown}s")


def _alert(scope: str, severity: str, message: str) -> None:
    from trading.risk.alerts import raise_alert

    fields = _scope_fields(scope)
    raise_alert(severity, ErrorCode.RISK_REJECTED if severity != "info" else "BREAKER", message,
                check="breaker", pair_id=fields.get("pair_id", ""), exchange=fields.get("exchange", ""))
