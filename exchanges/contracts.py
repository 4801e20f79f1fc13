"""Contract sizes at the ccxt edge: the desk counts base units, ccxt counts contracts.

ccxt's order amounts, fills and order-book sizes on a contract market are numbers of
contracts, each worth `market["contractSize"]` base units (OKX BTC-USDT-SWAP: 0.01 BTC).
Binance USD-M, Bybit linear and Bitget USDT-M have contractSize 1 in ccxt, so for them
these functions are the identity. Everything inside the desk (pairs' qty, books, spreads,
the risk gate, execution records) is in base units: convert only where ccxt is called
(`exchanges.venues`) or a ccxt book is read (`OrderBook.from_ccxt`).

Pure Decimal arithmetic, no floats: a base quantity never becomes more contracts than it
is worth (division rounds toward zero), and contracts -> base is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation
from typing import Any

ONE = Decimal(1)

# Wide enough that every product of a lot count and a contract size is exact; division
# rounds toward zero so that contracts * size never exceeds the base quantity asked for.
_CONTEXT = Context(prec=60, rounding=ROUND_DOWN)


class ContractSizeUnknown(ValueError):
    """A contract market without a usable contractSize: sizes cannot be converted safely."""


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def contract_size(market: Mapping[str, Any] | None) -> Decimal:
    """Base units per ccxt amount unit: 1 for spot (and no market), contractSize for contracts.

    A contract market whose contractSize is missing or not positive raises: guessing 1 could
    send 100x the intended size.
    """
    if not market or not market.get("contract"):
        return ONE
    size = _decimal(market.get("contractSize"))
    if size is None or not size.is_finite() or size <= 0:
        raise ContractSizeUnknown(f"{market.get('symbol')}: contract market without a contract size")
    return size


def to_contracts(base_qty: Decimal, size: Decimal) -> Decimal:
    """Base units -> contracts, rounded toward zero (never more than `base_qty` is worth)."""
    if size <= 0:
        raise ContractSizeUnknown(f"contract size must be positive, not {size}")
    if size == ONE:
        return base_qty
    return _CONTEXT.divide(base_qty, size)


def from_contracts(contracts: Decimal, size: Decimal) -> Decimal:
    """Contracts -> base units (exact)."""
    if size <= 0:
        raise ContractSizeUnknown(f"contract size must be positive, not {size}")
    if size == ONE:
        return contracts
    return _CONTEXT.multiply(contracts, size)
