"""Arbitrage money math: spreads, VWAP fills, fees and net edge between two order books.

Pure on purpose (no Django, no I/O): the detector, the risk gate, paper fills and the
tests all call the same functions with `Decimal`s, so a number shown in the UI is the
number the engine decided on.

Conventions
- A book side is a sequence of `(price, size)` pairs, best first (bids descending, asks
  ascending). Levels with a non-positive size are ignored.
- `qty` is base-asset quantity per leg (both legs trade the same quantity).
- Fee rates are fractions (0.001 = 0.1 %), charged on each leg's quote notional.
- Spread for a direction = price we sell at − price we buy at; percent is of the buy price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any, Protocol

Level = tuple[Decimal, Decimal]

ZERO = Decimal(0)
HUNDRED = Decimal(100)


class Direction(StrEnum):
    LEG1_BUY_LEG2_SELL = "leg1_buy_leg2_sell"
    LEG1_SELL_LEG2_BUY = "leg1_sell_leg2_buy"
    AUTO = "auto"

    @property
    def flipped(self) -> Direction:
        """The same trade seen with the legs swapped."""
        if self is Direction.LEG1_BUY_LEG2_SELL:
            return Direction.LEG1_SELL_LEG2_BUY
        if self is Direction.LEG1_SELL_LEG2_BUY:
            return Direction.LEG1_BUY_LEG2_SELL
        return self

    @property
    def buy_leg(self) -> int:
        """1 or 2: the leg we buy on (not defined for AUTO)."""
        if self is Direction.AUTO:
            raise ValueError("AUTO has no buy leg until a direction is chosen")
        return 1 if self is Direction.LEG1_BUY_LEG2_SELL else 2


CONCRETE_DIRECTIONS = (Direction.LEG1_BUY_LEG2_SELL, Direction.LEG1_SELL_LEG2_BUY)


class BookLike(Protocol):
    """Anything with best-first `bids` and `asks` of `(price, size)` Decimals."""

    @property
    def bids(self) -> Sequence[Level]: ...

    @property
    def asks(self) -> Sequence[Level]: ...


@dataclass(frozen=True, slots=True)
class Book:
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    @classmethod
    def parse(cls, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]]) -> Book:
        """From wire levels (`[["68000.1", "0.5"], ...]`); strings keep full precision."""
        return cls(parse_levels(bids), parse_levels(asks))


def parse_levels(raw: Iterable[Sequence[Any]]) -> tuple[Level, ...]:
    """`[["price", "size"], ...]` -> Decimal levels; floats go through `str` (never binary)."""
    levels: list[Level] = []
    for item in raw:
        price, size = item[0], item[1]
        levels.append((_dec(price), _dec(size)))
    return tuple(levels)


def _dec(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def taker_fee_rate(market: Mapping[str, Any]) -> Decimal:
    """The taker rate of a ccxt market dict (`market["taker"]`), as a Decimal fraction."""
    taker = market.get("taker")
    if taker is None:
        raise ValueError(f"market {market.get('symbol')!r} has no taker fee")
    return _dec(taker)


# --------------------------------------------------------------------------- fills


@dataclass(frozen=True, slots=True)
class Fill:
    """Walking one book side for a quantity. `avg_price`/`worst_price` are None when nothing fills."""

    qty_filled: Decimal
    avg_price: Decimal | None
    notional: Decimal
    worst_price: Decimal | None
    complete: bool


def _usable(levels: Sequence[Level]) -> Iterable[Level]:
    return ((p, s) for p, s in levels if s > 0)


def vwap(levels: Sequence[Level], qty: Decimal) -> Fill:
    """Volume-weighted price to take `qty` from a book side (best first)."""
    if qty <= 0:
        raise ValueError(f"qty must be positive, got {qty}")
    remaining = qty
    notional = ZERO
    worst: Decimal | None = None
    for price, size in _usable(levels):
        take = size if size < remaining else remaining
        notional += price * take
        remaining -= take
        worst = price
        if remaining == 0:
            break
    filled = qty - remaining
    avg = notional / filled if filled > 0 else None
    return Fill(qty_filled=filled, avg_price=avg, notional=notional, worst_price=worst, complete=remaining == 0)


def depth(levels: Sequence[Level]) -> Decimal:
    """Total size on a book side."""
    return sum((s for _, s in _usable(levels)), ZERO)


# --------------------------------------------------------------------------- top of book


@dataclass(frozen=True, slots=True)
class TopSpread:
    direction: Direction
    buy_price: Decimal
    sell_price: Decimal
    spread: Decimal
    spread_percent: Decimal


def _best(levels: Sequence[Level]) -> Decimal | None:
    for price, _ in _usable(levels):
        return price
    return None


def _sides(leg1: BookLike, leg2: BookLike, direction: Direction) -> tuple[Sequence[Level], Sequence[Level]]:
    """(asks we buy from, bids we sell into) for a concrete direction."""
    if direction is Direction.LEG1_BUY_LEG2_SELL:
        return leg1.asks, leg2.bids
    return leg2.asks, leg1.bids


def top_of_book_spread(leg1_book: BookLike, leg2_book: BookLike, direction: Direction | str) -> TopSpread | None:
    """Best-price spread; AUTO picks the larger. None when the books cannot quote it."""
    direction = Direction(direction)
    if direction is Direction.AUTO:
        quotes = [q for d in CONCRETE_DIRECTIONS if (q := top_of_book_spread(leg1_book, leg2_book, d)) is not None]
        if not quotes:
            return None
        return max(quotes, key=lambda q: q.spread_percent)  # first wins a tie
    asks, bids = _sides(leg1_book, leg2_book, direction)
    buy, sell = _best(asks), _best(bids)
    if buy is None or sell is None or buy <= 0:
        return None
    spread = sell - buy
    return TopSpread(direction, buy, sell, spread, spread / buy * HUNDRED)


# --------------------------------------------------------------------------- executable evaluation


@dataclass(frozen=True, slots=True)
class LegQuote:
    """One leg of an evaluated trade: its side, the fill on its book and its taker fee."""

    leg: int
    side: str  # "buy" | "sell"
    fill: Fill
    fee_rate: Decimal
    fee: Decimal  # fee_rate × filled notional, in quote


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The executable trade for `qty` in one direction.

    Money fields are None when the trade is not executable (`reason` says why); the
    fills then show what the books do hold. `net_edge` is total quote PnL for `qty`
    after both taker fees; percents are of the buy notional.
    """

    direction: Direction
    qty: Decimal
    leg1: LegQuote
    leg2: LegQuote
    executable: bool
    reason: str
    buy_price: Decimal | None  # VWAP on the buy leg
    sell_price: Decimal | None  # VWAP on the sell leg
    gross_spread: Decimal | None  # sell VWAP − buy VWAP, quote per unit
    gross_spread_percent: Decimal | None
    gross_edge: Decimal | None  # sell notional − buy notional
    fees: Decimal | None
    net_edge: Decimal | None
    net_edge_percent: Decimal | None
    breakeven_qty: Decimal | None  # largest size with net edge ≥ 0 (None: even the first unit loses)

    def passes(self, threshold_percent: Decimal) -> bool:
        """Executable with a net edge of at least `threshold_percent` (the pair's threshold)."""
        return self.executable and self.net_edge_percent is not None and self.net_edge_percent >= threshold_percent

    @property
    def buy(self) -> LegQuote:
        return self.leg1 if self.leg1.side == "buy" else self.leg2

    @property
    def sell(self) -> LegQuote:
        return self.leg1 if self.leg1.side == "sell" else self.leg2


def evaluate(
    leg1_book: BookLike,
    leg2_book: BookLike,
    qty: Decimal,
    direction: Direction | str,
    fee1: Decimal,
    fee2: Decimal,
    *,
    qty_step: Decimal | None = None,
) -> Evaluation:
    """VWAP both legs for `qty`, net of taker fees; AUTO takes the larger net edge.

    `qty_step` (the market's amount step) is what `breakeven_qty` is floored to; without
    it, the finest size step found in the books is used.
    """
    if qty <= 0:
        raise ValueError(f"qty must be positive, got {qty}")
    if fee1 < 0 or fee2 < 0:
        raise ValueError("fee rates cannot be negative")
    direction = Direction(direction)
    if direction is not Direction.AUTO:
        return _evaluate_one(leg1_book, leg2_book, qty, direction, fee1, fee2, qty_step)

    first, second = (_evaluate_one(leg1_book, leg2_book, qty, d, fee1, fee2, qty_step) for d in CONCRETE_DIRECTIONS)
    if first.executable and second.executable:
        assert first.net_edge is not None and second.net_edge is not None
        return second if second.net_edge > first.net_edge else first
    if first.executable or second.executable:
        return first if first.executable else second
    return first


def _evaluate_one(
    leg1_book: BookLike,
    leg2_book: BookLike,
    qty: Decimal,
    direction: Direction,
    fee1: Decimal,
    fee2: Decimal,
    qty_step: Decimal | None,
) -> Evaluation:
    asks, bids = _sides(leg1_book, leg2_book, direction)
    buy_leg = direction.buy_leg
    sell_leg = 3 - buy_leg
    fee_buy, fee_sell = (fee1, fee2) if buy_leg == 1 else (fee2, fee1)
    buy_fill, sell_fill = vwap(asks, qty), vwap(bids, qty)

    buy_quote = LegQuote(buy_leg, "buy", buy_fill, fee_buy, fee_buy * buy_fill.notional)
    sell_quote = LegQuote(sell_leg, "sell", sell_fill, fee_sell, fee_sell * sell_fill.notional)
    leg1, leg2 = (buy_quote, sell_quote) if buy_leg == 1 else (sell_quote, buy_quote)

    reason = unfilled_reason(qty, direction, buy_fill, sell_fill)
    breakeven = breakeven_qty(asks, bids, fee_buy, fee_sell, qty_step=qty_step)
    if reason:
        return Evaluation(
            direction=direction,
            qty=qty,
            leg1=leg1,
            leg2=leg2,
            executable=False,
            reason=reason,
            buy_price=None,
            sell_price=None,
            gross_spread=None,
            gross_spread_percent=None,
            gross_edge=None,
            fees=None,
            net_edge=None,
            net_edge_percent=None,
            breakeven_qty=breakeven,
        )

    assert buy_fill.avg_price is not None and sell_fill.avg_price is not None
    gross_edge = sell_fill.notional - buy_fill.notional
    fees = buy_quote.fee + sell_quote.fee
    net = gross_edge - fees
    gross_spread = sell_fill.avg_price - buy_fill.avg_price
    return Evaluation(
        direction=direction,
        qty=qty,
        leg1=leg1,
        leg2=leg2,
        executable=True,
        reason="",
        buy_price=buy_fill.avg_price,
        sell_price=sell_fill.avg_price,
        gross_spread=gross_spread,
        gross_spread_percent=gross_edge / buy_fill.notional * HUNDRED,
        gross_edge=gross_edge,
        fees=fees,
        net_edge=net,
        net_edge_percent=net / buy_fill.notional * HUNDRED,
        breakeven_qty=breakeven,
    )


def unfilled_reason(qty: Decimal, direction: Direction, buy: Fill, sell: Fill) -> str:
    """Why `qty` cannot be traded in `direction` on these fills ("" when both fill): the
    `Evaluation.reason`, leg 1 first. Shared with detection, which says why without evaluating."""
    buy_leg = direction.buy_leg
    legs = sorted(((buy_leg, buy, "asks"), (3 - buy_leg, sell, "bids")), key=lambda x: x[0])
    problems = []
    for leg, fill, side_name in legs:
        if fill.qty_filled == 0:
            problems.append(f"empty book on leg {leg} ({side_name})")
        elif not fill.complete:
            problems.append(f"insufficient depth on leg {leg} ({side_name}): {fill.qty_filled} available of {qty}")
    return "; ".join(problems)


# --------------------------------------------------------------------------- break-even size


def _size_step(*sides: Sequence[Level]) -> Decimal:
    """The finest size quantum in the books (e.g. 0.00001 for sizes quoted to 5 dp)."""
    exponent = 0
    for levels in sides:
        for _, size in _usable(levels):
            exp = size.normalize().as_tuple().exponent
            if isinstance(exp, int):
                exponent = min(exponent, exp)
    return Decimal(1).scaleb(exponent)


def breakeven_qty(
    asks: Sequence[Level],
    bids: Sequence[Level],
    fee_buy: Decimal,
    fee_sell: Decimal,
    *,
    qty_step: Decimal | None = None,
) -> Decimal | None:
    """Largest size (a multiple of the step) whose net edge is still ≥ 0.

    Net edge N(q) = (1 − fee_sell)·S(q) − (1 + fee_buy)·B(q) with S, B the sell and buy
    notionals. Both are piecewise linear in q with breakpoints at the levels, and the
    marginal (1 − fs)·bid(q) − (1 + fb)·ask(q) only falls as q grows, so N is concave:
    walk the merged breakpoints until N would go negative and solve that segment exactly.
    Capped at the shallower side's depth. None when the first unit already loses.
    """
    step = qty_step if qty_step is not None and qty_step > 0 else _size_step(asks, bids)
    buy_mult = 1 + fee_buy
    sell_mult = 1 - fee_sell
    ask_levels = list(_usable(asks))
    bid_levels = list(_usable(bids))
    if not ask_levels or not bid_levels:
        return None

    q = ZERO
    net = ZERO
    ai = bi = 0
    ask_left, bid_left = ask_levels[0][1], bid_levels[0][1]
    result: Decimal | None = None
    while ai < len(ask_levels) and bi < len(bid_levels):
        marginal = sell_mult * bid_levels[bi][0] - buy_mult * ask_levels[ai][0]
        length = min(ask_left, bid_left)
        end_net = net + marginal * length
        if end_net < 0:
            # marginal < 0 here (net ≥ 0 at the start of the segment): root inside.
            result = q + net / -marginal
            break
        q += length
        net = end_net
        ask_left -= length
        bid_left -= length
        if ask_left == 0:
            ai += 1
            if ai < len(ask_levels):
                ask_left = ask_levels[ai][1]
        if bid_left == 0:
            bi += 1
            if bi < len(bid_levels):
                bid_left = bid_levels[bi][1]
    else:
        result = q

    floored = (result / step).to_integral_value(rounding=ROUND_FLOOR) * step
    return floored if floored > 0 else None


def net_edge_at(
    asks: Sequence[Level], bids: Sequence[Level], qty: Decimal, fee_buy: Decimal, fee_sell: Decimal
) -> Decimal | None:
    """Net quote PnL of buying `qty` on `asks` and selling it on `bids`; None beyond depth."""
    buy, sell = vwap(asks, qty), vwap(bids, qty)
    if not (buy.complete and sell.complete):
        return None
    return (1 - fee_sell) * sell.notional - (1 + fee_buy) * buy.notional
