"""TWAP arithmetic, pure: the slice schedule, each leg's quantity for a slice, and the gap rules.

No Django here: `Decimal` in, small values out, so the rules are tested with tables and
property tests.

- The schedule is `floor(total / slice)` slices of `slice`; the remainder rides on the last
  one (so no slice is ever smaller than `slice`, which validation holds above each venue's
  minimum).
- A leg's quantity for slice k is what brings it to the cumulative schedule through k:
  `target(k) - executed(leg)`. A leg that filled short in an earlier slice is therefore
  caught up by the next one, and a leg is never sent past the schedule.
- After a slice, a leg that lags the schedule (or the other leg) by more than one slice
  pauses the plan: catching up is for one missed slice, not for a venue that keeps failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

ZERO = Decimal(0)


def slice_schedule(total_qty: Decimal, slice_qty: Decimal) -> list[Decimal]:
    """Quantities per slice: `slice_qty` each, the remainder added to the last; sums to `total_qty`."""
    if slice_qty <= 0:
        raise ValueError("slice quantity must be positive")
    if total_qty < slice_qty:
        raise ValueError("total quantity must be at least one slice")
    count = int((total_qty / slice_qty).to_integral_value(rounding=ROUND_FLOOR))
    schedule = [slice_qty] * count
    schedule[-1] = total_qty - slice_qty * (count - 1)
    return schedule


def cumulative_target(schedule: list[Decimal], index: int) -> Decimal:
    """What each leg should have executed once slice `index` (1-based) is done."""
    if index < 1:
        return ZERO
    return sum(schedule[: min(index, len(schedule))], ZERO)


def leg_quantity(target: Decimal, executed: Decimal) -> Decimal:
    """The order a leg sends in a slice: up to the schedule, never past it."""
    return max(target - executed, ZERO)


@dataclass(frozen=True, slots=True)
class GapVerdict:
    """What to do after a slice: carry on (the next slice catches up), or pause with a reason."""

    pause: bool
    lag1: Decimal
    lag2: Decimal
    gap: Decimal
    reason: str = ""


def judge_gap(target: Decimal, executed1: Decimal, executed2: Decimal, slice_qty: Decimal) -> GapVerdict:
    """After a slice whose cumulative target is `target`: pause when anything is over one slice behind.

    `slice_qty` is the largest slice (the last one may carry a remainder). A lag of at most
    one slice is caught up by the next slice; more than that means a leg failed twice (or
    both legs keep failing) and a human should look before the plan sends bigger orders.
    """
    lag1, lag2 = target - executed1, target - executed2
    gap = abs(executed1 - executed2)
    if gap > slice_qty:
        return GapVerdict(True, lag1, lag2, gap, f"legs are {gap} apart, more than one slice ({slice_qty})")
    worst = max(lag1, lag2)
    if worst > slice_qty:
        leg = 1 if lag1 >= lag2 else 2
        return GapVerdict(True, lag1, lag2, gap, f"leg {leg} is {worst} behind schedule, more than one slice ({slice_qty})")
    return GapVerdict(False, lag1, lag2, gap)


def adverse_spread_percent(buy_price: Decimal, sell_price: Decimal) -> Decimal:
    """How much dearer we buy than we sell, in percent of the buy price (negative when favourable)."""
    if buy_price <= 0:
        raise ValueError("buy price must be positive")
    return (buy_price - sell_price) / buy_price * 100


def next_due_ms(previous_due_ms: int, interval_ms: int, now_ms: int) -> int:
    """Keep the plan's cadence; a slice that ran late does not make the next one wait longer."""
    return max(previous_due_ms + interval_ms, now_ms)
