"""Circuit breakers: the pure state machine, and open -> half-open -> closed through the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from arbsite.errors import RiskRejected
from tests.risk.conftest import intent
from trading.risk import breaker, check_order, record_result
from trading.risk.breaker import Counters, Policy, decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = Policy(consecutive_failures=3, error_rate_percent=D("50"), window_seconds=60, min_samples=10)


def run(outcomes: list[bool], start: Counters | None = None) -> tuple[Counters, list[str | None]]:
    c = start or Counters("closed", 0, T0, 0, 0)
    reasons = []
    for n, ok in enumerate(outcomes):
        c, reason = decide(c, ok, T0 + timedelta(seconds=n), POLICY)
        reasons.append(reason)
    return c, reasons


def test_it_opens_on_the_nth_consecutive_failure() -> None:
    c, reasons = run([False, False])
    assert c.status == "closed"
    c, reasons = run([False, False, False])
    assert c.status == "open" and reasons[-1] == "3 consecutive failures"


def test_a_success_resets_the_consecutive_count() -> None:
    c, _ = run([False, False, True, False, False])
    assert c.status == "closed"


def test_it_opens_on_the_error_rate_over_the_window() -> None:
    # 10 outcomes, alternating: never 3 in a row, 50 % is not over 50 %.
    c, _ = run([False, True] * 5)
    assert c.status == "closed"
    c, reasons = run([False, True] * 4 + [True, False, False])  # 11 outcomes, 6 failures: 54 %
    assert c.status == "open" and "error rate" in str(reasons[-1])


def test_the_window_forgets_old_outcomes() -> None:
    c = Counters("closed", 0, T0, 9, 4)
    c, reason = decide(c, False, T0 + timedelta(seconds=61), POLICY)
    assert (c.window_total, c.window_failures, reason) == (1, 1, None)


def test_half_open_closes_on_success_and_reopens_on_failure() -> None:
    half = Counters("half_open", 3, T0, 0, 0)
    assert decide(half, True, T0, POLICY)[0].status == "closed"
    reopened, reason = decide(half, False, T0, POLICY)
    assert reopened.status == "open" and reason == "the half-open trial failed"


@pytest.mark.django_db
def test_the_full_cycle_through_the_gate(books: Any, pair: Any, published: Any) -> None:
    from django.utils import timezone

    from trading.risk.gate import global_limits_row
    from trading.risk_models import BreakerState

    row = global_limits_row()
    row.breaker_consecutive_failures, row.breaker_cooldown_seconds = 3, 60
    row.save()
    i = intent(pair_id=pair.id)
    for _ in range(3):
        check_order(i)
        record_result(i, filled=D(0), avg_price=None, ok=False, error_code="EXCHANGE_UNAVAILABLE", message="down")
    state = BreakerState.objects.get(scope="exchange:binance")
    assert state.status == "open" and "3 consecutive failures" in state.reason
    alerts = [a for a in published.alerts() if a.get("check") == "breaker"]
    assert {a.get("exchange") or a.get("pairId") for a in alerts if "OPEN" in a["message"]} == {"binance", pair.id}
    with pytest.raises(RiskRejected, match="circuit breaker open for"):
        check_order(i)
    check_order(intent(pair_id=pair.id, purpose="flatten", side="sell"))  # reducing still allowed

    # Cool-down over: the beat half-opens it; one trial goes through; its failure re-opens.
    BreakerState.objects.update(opened_at=timezone.now() - timedelta(seconds=61))
    assert sorted(breaker.half_open_due()) == ["exchange:binance", f"pair:{pair.id}"]
    check_order(i)
    record_result(i, filled=D(0), avg_price=None, ok=False, error_code="UPSTREAM_ERROR")
    assert BreakerState.objects.get(scope="exchange:binance").status == "open"

    # Again after the cool-down (found by the gate itself this time): a success closes both.
    BreakerState.objects.update(opened_at=timezone.now() - timedelta(seconds=61))
    check_order(i)
    record_result(i, filled=i.qty, avg_price=i.executable_price, ok=True)
    assert set(BreakerState.objects.values_list("status", flat=True)) == {"closed"}
    assert any("closed after a successful trial" in a["message"] for a in published.alerts())
