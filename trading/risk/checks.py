"""The risk checks as pure functions: Decimal in, `Rejection | None` out. No Django here.

Limits are inclusive: a value equal to its limit passes, the smallest step past it is
rejected (the daily loss is the exception: reaching the loss limit stops opening orders).
A limit of None means "no limit". Every rejection names its check and says precisely why,
because that text is what the operator reads in the API error and the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from statistics import median

ZERO = Decimal(0)
HUNDRED = Decimal(100)


class Check(StrEnum):
    KILL_SWITCH = "kill_switch"
    TRADING_STATE = "trading_state"
    BREAKER = "breaker"
    SLIPPAGE = "slippage"
    SPREAD = "spread"
    PRICE_DEVIATION = "price_deviation"
    ABNORMAL_MOVE = "abnormal_move"
    STALE_BOOK = "stale_book"
    CROSSED_BOOK = "crossed_book"
    ORDER_NOTIONAL = "order_notional"
    VENUE_POSITION = "venue_position"
    NET_POSITION = "net_position"
    CAPITAL = "capital"
    DAILY_NOTIONAL = "daily_notional"
    DAILY_LOSS = "daily_loss"
    BALANCE = "balance"
    PNL_WINDOW = "pnl_window"
    BAD_INTENT = "bad_intent"


@dataclass(frozen=True, slots=True)
class Rejection:
    check: Check
    reason: str

    def __str__(self) -> str:
        return self.reason


def _pct(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.0001')).normalize():f}%"


def _amt(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"


def trading_state(state: str, *, reducing: bool, scope: str, reason: str = "") -> Rejection | None:
    """Active lets everything through, reducing only reducing orders, halted nothing."""
    why = f" ({reason})" if reason else ""
    if state == "halted":
        return Rejection(Check.TRADING_STATE, f"{scope} is halted{why}")
    if state == "reducing" and not reducing:
        return Rejection(Check.TRADING_STATE, f"{scope} is reducing-only{why}: no new exposure")
    return None


def slippage(side: str, expected: Decimal, executable: Decimal, limit_percent: Decimal | None) -> Rejection | None:
    """Adverse move of the executable price from the expected one (buying higher, selling lower)."""
    if limit_percent is None or expected <= 0:
        return None
    adverse = (executable - expected) if side == "buy" else (expected - executable)
    percent = adverse / expected * HUNDRED
    if percent > limit_percent:
        return Rejection(
            Check.SLIPPAGE,
            f"slippage above limit: {side} executable {executable} vs expected {expected} "
            f"is {_pct(percent)} (limit {_pct(limit_percent)})",
        )
    return None


def spread(net_edge_percent: Decimal | None, threshold_percent: Decimal) -> Rejection | None:
    """Re-validation just before sending: the net edge must still be at least the threshold."""
    if net_edge_percent is None:
        return Rejection(Check.SPREAD, "spread could not be re-validated: no executable price")
    if net_edge_percent < threshold_percent:
        return Rejection(
            Check.SPREAD,
            f"spread no longer above threshold: net spread {_pct(net_edge_percent)} is below the threshold "
            f"{_pct(threshold_percent)}",
        )
    return None


def price_deviation(
    venue: str, price: Decimal, others: Mapping[str, Decimal], limit_percent: Decimal | None
) -> Rejection | None:
    """A venue's price against the median of every venue quoting the asset (itself included).

    Needs at least two other venues: with only the counter-leg, the "median" is the midpoint
    of the very spread being traded, and the threshold already judges that.
    """
    if limit_percent is None or len(others) < 2 or price <= 0:
        return None
    prices = [price, *others.values()]
    mid = Decimal(median(prices))
    if mid <= 0:
        return None
    percent = abs(price - mid) / mid * HUNDRED
    if percent > limit_percent:
        return Rejection(
            Check.PRICE_DEVIATION,
            f"price deviation: {venue} at {price} is {_pct(percent)} from the cross-venue median {mid} "
            f"(limit {_pct(limit_percent)})",
        )
    return None


def abnormal_move(
    samples: Iterable[tuple[int, Decimal]], now_ms: int, window_seconds: int | None, limit_percent: Decimal | None,
    *, label: str = "price",
) -> Rejection | None:
    """More than `limit_percent` between the latest price and any price in the last `window_seconds`."""
    if limit_percent is None or not window_seconds:
        return None
    start = now_ms - window_seconds * 1000
    recent = sorted((ts, p) for ts, p in samples if ts >= start and p > 0)
    if len(recent) < 2:
        return None
    last = recent[-1][1]
    worst = ZERO
    for _, p in recent[:-1]:
        worst = max(worst, abs(last - p) / p * HUNDRED)
    if worst > limit_percent:
        return Rejection(
            Check.ABNORMAL_MOVE,
            f"abnormal move: {label} moved {_pct(worst)} within {window_seconds}s (limit {_pct(limit_percent)})",
        )
    return None


def book(label: str, age_ms: int | None, max_age_ms: Decimal | None, crossed: bool) -> Rejection | None:
    """Stale (or missing) and crossed books are never traded on."""
    if age_ms is None:
        return Rejection(Check.STALE_BOOK, f"no order book for {label}")
    if max_age_ms is not None and age_ms > max_age_ms:
        return Rejection(Check.STALE_BOOK, f"stale order book for {label}: {age_ms} ms old (limit {max_age_ms} ms)")
    if crossed:
        return Rejection(Check.CROSSED_BOOK, f"crossed order book for {label}")
    return None


def order_notional(qty: Decimal, price: Decimal, limit: Decimal | None) -> Rejection | None:
    if limit is None:
        return None
    notional = qty * price
    if notional > limit:
        return Rejection(Check.ORDER_NOTIONAL, f"order notional {_amt(notional)} above the limit {_amt(limit)}")
    return None


def position(
    check: Check, label: str, low: Decimal, high: Decimal, delta: Decimal, price: Decimal, limit: Decimal | None
) -> Rejection | None:
    """The position can end anywhere in [low, high] (settled ± unsettled orders); `delta` widens that range.

    Passes when the worst case after the order, as quote notional, is within the limit, or
    when the order does not make the worst case any worse (reducing is always allowed).
    """
    if limit is None:
        return None
    new_low, new_high = (low, high + delta) if delta > 0 else (low + delta, high)
    worst_before = max(abs(low), abs(high))
    worst_after = max(abs(new_low), abs(new_high))
    if worst_after <= worst_before:
        return None
    notional = worst_after * price
    if notional > limit:
        extreme = new_high if abs(new_high) >= abs(new_low) else new_low
        return Rejection(
            check,
            f"max position: {label} could reach {extreme} ({_amt(notional)} notional), limit {_amt(limit)}",
        )
    return None


def capital(deployed: Decimal, adding: Decimal, total_amount: Decimal | None) -> Rejection | None:
    """Capital in use by the pair plus this order within the pair's `totalAmount`."""
    if total_amount is None:
        return None
    if deployed + adding > total_amount:
        return Rejection(
            Check.CAPITAL,
            f"capital in use {_amt(deployed)} plus {_amt(adding)} exceeds totalAmount {_amt(total_amount)}",
        )
    return None


def daily_notional(used: Decimal, adding: Decimal, limit: Decimal | None, *, scope: str = "desk") -> Rejection | None:
    if limit is None:
        return None
    if used + adding > limit:
        return Rejection(
            Check.DAILY_NOTIONAL,
            f"daily notional for {scope}: {_amt(used)} used + {_amt(adding)} exceeds {_amt(limit)}",
        )
    return None


def daily_loss(realised_pnl: Decimal, limit: Decimal | None, *, scope: str = "desk") -> Rejection | None:
    """Reaching the day's loss limit (a positive amount) stops opening orders until UTC midnight."""
    if limit is None:
        return None
    loss = -realised_pnl
    if loss >= limit:
        return Rejection(
            Check.DAILY_LOSS, f"daily realised loss for {scope} {_amt(loss)} has reached the limit {_amt(limit)}"
        )
    return None


def pnl_window(pnl: Decimal, floor: Decimal | None, minutes: int | None, *, scope: str) -> Rejection | None:
    """Realised PnL over the moving window below the floor pauses the pair."""
    if floor is None or not minutes:
        return None
    if pnl < floor:
        return Rejection(
            Check.PNL_WINDOW, f"PnL guard: {scope} realised {_amt(pnl)} over {minutes} min, below {_amt(floor)}"
        )
    return None


def balance(asset: str, free: Decimal | None, needed: Decimal, *, exchange: str) -> Rejection | None:
    """Checked before sending: the account must hold what the order spends."""
    if needed <= 0:
        return None
    if free is None:
        free = ZERO
    if free < needed:
        return Rejection(
            Check.BALANCE, f"insufficient balance on {exchange}: {free} {asset} free, {needed} {asset} needed"
        )
    return None


def spend(
    market_type: str, side: str, qty: Decimal, price: Decimal, fee_rate: Decimal, base: str, quote: str,
    *, leverage: Decimal = Decimal(1), reducing: bool = False,
) -> tuple[str, Decimal]:
    """(asset, amount) an order needs free: quote for spot buys and linear margin, base for spot sells."""
    notional = qty * price
    fee = notional * fee_rate
    if market_type == "spot":
        return (quote, notional + fee) if side == "buy" else (base, qty)
    if reducing:
        return quote, fee  # closing a perpetual releases margin; only the fee is paid
    return quote, notional / (leverage if leverage > 0 else Decimal(1)) + fee


def first(rejections: Sequence[Rejection | None]) -> Rejection | None:
    return next((r for r in rejections if r is not None), None)
