"""A pair's legs checked against the exchanges' own markets before it is stored.

A pair that cannot trade (unlisted symbol, qty below the lot minimum or off the lot step,
notional under the exchange minimum) would only fail later, at execution time, in front of
an opportunity. So POST/PUT load each exchange's markets through `exchanges.connectivity`
and refuse such pairs with per-field messages. When an exchange cannot be reached the
request fails with EXCHANGE_UNAVAILABLE: an unvalidated pair is never stored.

Reference prices (for min notional and `totalAmount`) come from the market-data cache, else
from a small REST order book; when neither is available those two checks are skipped and a
note says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt
from asgiref.sync import async_to_sync

from arbsite.errors import ApiError, ValidationFailed
from exchanges import connectivity
from exchanges.contracts import ContractSizeUnknown, contract_size, to_contracts
from exchanges.symbols import Exchange, Instrument

logger = logging.getLogger("trading.pairs")

# ccxt precision modes (ccxt.base.decimal_to_precision).
_DECIMAL_PLACES = 2
_TICK_SIZE = 4
REFERENCE_BOOK_LIMIT = 5

AmountToPrecision = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class LegCheck:
    """What the exchange says about one leg; `errors` maps a body field to messages."""

    leg: str  # "leg1" | "leg2"
    instrument: Instrument
    market: Mapping[str, Any] | None
    reference_price: Decimal | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def taker_fee(self) -> Decimal | None:
        taker = (self.market or {}).get("taker")
        return (
            Decimal(repr(taker)) if isinstance(taker, float) else (Decimal(str(taker)) if taker is not None else None)
        )


@dataclass(frozen=True, slots=True)
class PairCheck:
    legs: tuple[LegCheck, ...]
    errors: dict[str, Any]  # the envelope's `error.fields` shape: {"leg1": {"symbol": [...]}, "qty": [...]}
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def amount_step(market: Mapping[str, Any], precision_mode: int) -> Decimal | None:
    precision = (market.get("precision") or {}).get("amount")
    if precision is None:
        return None
    if precision_mode == _DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(precision))
    if precision_mode == _TICK_SIZE:
        return _dec(precision)
    return None


def contracts_for(market: Mapping[str, Any], qty: Decimal) -> Decimal:
    """Base qty -> the market's amount unit (contracts on OKX-style swaps), as execution will send it.

    The one conversion of `exchanges.contracts`; raises ContractSizeUnknown for a contract market
    without a usable contract size (`leg_market` refuses such a leg before it gets here).
    """
    return to_contracts(qty, contract_size(market))


def leg_market(markets: dict[str, Any], instrument: Instrument) -> Mapping[str, Any]:
    """The leg's ccxt market; NOT_FOUND when unlisted.

    A contract market without a contract size is refused like an unlisted one: its orders could
    not be sized (execution refuses it too), and guessing 1 could trade 100x the pair's qty.
    """
    market = connectivity.market_for(markets, instrument)
    try:
        contract_size(market)
    except ContractSizeUnknown as exc:
        raise ValidationFailed(f"{instrument.symbol} ({instrument.type}) on {instrument.exchange} cannot be "
                               f"traded: {exc}") from exc
    return market


def check_leg_market(
    leg: str,
    instrument: Instrument,
    market: Mapping[str, Any],
    qty: Decimal,
    amount_to_precision: AmountToPrecision,
    precision_mode: int,
    reference_price: Decimal | None,
) -> tuple[dict[str, list[str]], list[str]]:
    """Lot minimum/maximum, lot step and min notional for one leg; pure given the market.

    ccxt's lot limits and precision are in the market's amount unit, so `qty` (base units) is
    compared as contracts on contract markets (`contracts_for`).
    """
    errors: dict[str, list[str]] = {}
    notes: list[str] = []
    name = f"{leg} ({instrument.exchange} {instrument.symbol} {instrument.type})"

    def fail(field_name: str, message: str) -> None:
        errors.setdefault(field_name, []).append(f"{name}: {message}")

    if market.get("active") is False:
        fail("symbol", "the market is not trading")

    amount = contracts_for(market, qty)
    unit = "contracts" if amount != qty else market.get("base") or "base units"
    limits = market.get("limits") or {}
    min_amount = _dec((limits.get("amount") or {}).get("min"))
    max_amount = _dec((limits.get("amount") or {}).get("max"))
    if min_amount is not None and amount < min_amount:
        fail("qty", f"{amount.normalize():f} {unit} is below the minimum order size {min_amount.normalize():f}")
    if max_amount is not None and max_amount > 0 and amount > max_amount:
        fail("qty", f"{amount.normalize():f} {unit} is above the maximum order size {max_amount.normalize():f}")

    # The exchange's own rounding (ccxt truncates amounts): a qty it would change is refused,
    # not silently rounded, so the stored qty is exactly what will be sent.
    step = amount_step(market, precision_mode)
    step_text = f" (step {step.normalize():f})" if step else ""
    try:
        precise = Decimal(amount_to_precision(str(market["symbol"]), format(amount, "f")))
    except ccxt.InvalidOrder:
        precise = Decimal(0)
    if precise != amount:
        if precise > 0:
            fail(
                "qty",
                f"{amount.normalize():f} is not a multiple of the lot step{step_text}; "
                f"the exchange would trade {precise.normalize():f}",
            )
        elif "qty" not in errors:
            fail("qty", f"{amount.normalize():f} is smaller than one lot step{step_text}")

    min_cost = _dec((limits.get("cost") or {}).get("min"))
    if min_cost is not None and min_cost > 0:
        if reference_price is None:
            notes.append(f"{name}: minimum notional {min_cost.normalize():f} not checked (no reference price)")
        elif qty * reference_price < min_cost:
            fail(
                "qty",
                f"notional {(qty * reference_price).quantize(Decimal('0.01'))} at the reference price "
                f"{reference_price.normalize():f} is below the exchange minimum {min_cost.normalize():f}",
            )
    return errors, notes


def cached_reference_price(instrument: Instrument) -> Decimal | None:
    """Mid of the market-data process's cached book (its format is the Prices contract)."""
    try:
        from exchanges.order_books import read_book_raw

        data = read_book_raw(instrument)
    except Exception:
        logger.debug("cached book unreadable", exc_info=True)
        return None
    if not isinstance(data, dict):
        return None
    return _mid(data.get("bids"), data.get("asks"))


def _mid(bids: Any, asks: Any) -> Decimal | None:
    def best(levels: Any) -> Decimal | None:
        try:
            price = _dec(levels[0][0]) if levels else None
        except (TypeError, IndexError, KeyError):
            return None
        return price if price is not None and price > 0 else None

    bid, ask = best(bids), best(asks)
    if bid is not None and ask is not None:
        return (bid + ask) / 2
    return bid or ask


async def _fetch_reference_price(client: Any, exchange: Exchange, market: Mapping[str, Any]) -> Decimal | None:
    try:
        book = await connectivity.call(exchange, client.fetch_order_book, market["symbol"], REFERENCE_BOOK_LIMIT)
    except ApiError as exc:
        logger.info(
            "reference book unavailable",
            extra={"event": "pair_reference_price_missing", "exchange": exchange.value, "error_code": exc.error_code},
        )
        return None
    return _mid(book.get("bids"), book.get("asks"))


async def _check_exchange(exchange: Exchange, legs: list[tuple[str, Instrument]], qty: Decimal) -> list[LegCheck]:
    """Every leg on one exchange, through one client (markets are loaded once per process)."""
    client = connectivity.async_client(exchange)
    try:
        markets = await connectivity.load_markets(client, exchange)
        out: list[LegCheck] = []
        for leg, instrument in legs:
            try:
                market = leg_market(markets, instrument)
            except ApiError as exc:
                out.append(LegCheck(leg, instrument, None, errors={"symbol": [str(exc.detail)]}))
                continue
            price = cached_reference_price(instrument)
            if price is None:
                price = await _fetch_reference_price(client, exchange, market)
            errors, notes = check_leg_market(
                leg, instrument, market, qty, client.amount_to_precision, client.precisionMode, price
            )
            out.append(LegCheck(leg, instrument, market, price, errors, notes))
        return out
    finally:
        await client.close()


async def _check_all(leg1: Instrument, leg2: Instrument, qty: Decimal) -> list[LegCheck]:
    by_exchange: dict[Exchange, list[tuple[str, Instrument]]] = {}
    for leg, instrument in (("leg1", leg1), ("leg2", leg2)):
        by_exchange.setdefault(instrument.exchange, []).append((leg, instrument))
    # One task per exchange: legs on the same exchange share a client (and its markets lock).
    results = await asyncio.gather(
        *(_check_exchange(exchange, legs, qty) for exchange, legs in by_exchange.items()),
        return_exceptions=True,
    )
    checks: list[LegCheck] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        checks.extend(result)
    return sorted(checks, key=lambda c: c.leg)


def check_pair(leg1: Instrument, leg2: Instrument, qty: Decimal, total_amount: Decimal) -> PairCheck:
    """Market checks for a pair body that already passed the offline checks.

    Raises the connectivity ApiError (EXCHANGE_UNAVAILABLE, RATE_LIMITED, ...) when an
    exchange cannot answer.
    """
    checks = async_to_sync(_check_all)(leg1, leg2, qty)
    return combine(checks, qty, total_amount)


def combine(checks: list[LegCheck], qty: Decimal, total_amount: Decimal) -> PairCheck:
    """Fold per-leg results into body-shaped field errors, plus the `totalAmount` check."""
    errors: dict[str, Any] = {}
    notes: list[str] = []
    for check in checks:
        notes.extend(check.notes)
        for field_name, messages in check.errors.items():
            if field_name == "symbol":
                errors.setdefault(check.leg, {}).setdefault("symbol", []).extend(messages)
            else:
                errors.setdefault(field_name, []).extend(messages)
    prices = [c.reference_price for c in checks if c.reference_price is not None]
    if prices:
        notional = qty * max(prices)
        if total_amount < notional:
            errors.setdefault("totalAmount", []).append(
                f"{total_amount.normalize():f} is below one execution's notional "
                f"({notional.quantize(Decimal('0.01'))} = qty × {max(prices).normalize():f})"
            )
    elif checks:
        notes.append("totalAmount not checked against one execution's notional (no reference price)")
    return PairCheck(legs=tuple(checks), errors=errors, notes=notes)
