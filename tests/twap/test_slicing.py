"""The pure TWAP arithmetic: schedule with the remainder on the last slice, catch-up quantities, gap rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twap import slicing

D = Decimal


@pytest.mark.parametrize(
    ("total", "slice_qty", "expected"),
    [
        ("0.01", "0.001", ["0.001"] * 10),
        ("0.0105", "0.001", ["0.001"] * 9 + ["0.0015"]),
        ("0.001", "0.001", ["0.001"]),
        ("0.0019", "0.001", ["0.0019"]),
        ("1", "0.3", ["0.3", "0.3", "0.4"]),
    ],
)
def test_it_puts_the_remainder_on_the_last_slice(total: str, slice_qty: str, expected: list[str]) -> None:
    assert slicing.slice_schedule(D(total), D(slice_qty)) == [D(x) for x in expected]


def test_it_refuses_a_total_below_one_slice() -> None:
    with pytest.raises(ValueError):
        slicing.slice_schedule(D("0.0005"), D("0.001"))
    with pytest.raises(ValueError):
        slicing.slice_schedule(D("1"), D("0"))


@given(
    st.decimals(min_value=D("0.001"), max_value=D("5"), places=3),
    st.decimals(min_value=D("0.001"), max_value=D("1"), places=3),
)
def test_it_sums_to_the_total_with_no_slice_smaller_than_asked(total: Decimal, slice_qty: Decimal) -> None:
    if total < slice_qty:
        return
    schedule = slicing.slice_schedule(total, slice_qty)
    assert sum(schedule) == total
    assert all(q >= slice_qty for q in schedule)
    assert all(q == slice_qty for q in schedule[:-1])
    assert schedule[-1] < 2 * slice_qty
    assert slicing.cumulative_target(schedule, len(schedule)) == total
    assert slicing.cumulative_target(schedule, len(schedule) + 3) == total  # catch-up slices aim at the total


def test_it_catches_a_lagging_leg_up_and_never_sends_past_the_schedule() -> None:
    schedule = slicing.slice_schedule(D("0.01"), D("0.001"))
    target = slicing.cumulative_target(schedule, 3)
    assert target == D("0.003")
    assert slicing.leg_quantity(target, D("0.001")) == D("0.002")  # missed slice 2: catches up
    assert slicing.leg_quantity(target, D("0.002")) == D("0.001")
    assert slicing.leg_quantity(target, D("0.003")) == 0
    assert slicing.leg_quantity(target, D("0.004")) == 0


@pytest.mark.parametrize(
    ("target", "e1", "e2", "pause"),
    [
        ("0.003", "0.003", "0.003", False),
        ("0.003", "0.003", "0.002", False),  # one slice behind: the next slice catches up
        ("0.003", "0.002", "0.002", False),  # both missed one slice
        ("0.003", "0.003", "0.0015", True),  # apart by more than a slice
        ("0.003", "0.0015", "0.0015", True),  # both more than a slice behind
        ("0.003", "0.003", "0.001", True),
    ],
)
def test_it_pauses_only_beyond_one_slice(target: str, e1: str, e2: str, pause: bool) -> None:
    verdict = slicing.judge_gap(D(target), D(e1), D(e2), D("0.001"))
    assert verdict.pause is pause
    assert bool(verdict.reason) is pause


def test_adverse_spread_and_cadence() -> None:
    assert slicing.adverse_spread_percent(D("101"), D("100")) == D("100") / D("101")
    assert slicing.adverse_spread_percent(D("100"), D("101")) < 0
    assert slicing.next_due_ms(1_000, 500, 1_200) == 1_500
    assert slicing.next_due_ms(1_000, 500, 9_000) == 9_000  # late: no extra wait
