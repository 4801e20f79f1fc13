"""Fees in the pair's quote currency, whatever asset the venue charged them in.

Venues charge in the quote (most), in the base (Binance spot buys), or in a third asset (BNB
with Binance's discount, for instance). PnL is in the quote, so a fee in a third asset is
priced at that asset's mid against the quote on the same venue; when no price can be found the
fee is reported as unpriced rather than counted as zero.
"""

from __future__ import annotations

import logging
from decimal import Decimal

logger = logging.getLogger("trading.fees")


def fee_in_quote(fee: Decimal, currency: str, base: str, quote: str, fill_price: Decimal | None,
                 third_asset_price: Decimal | None = None) -> Decimal | None:
    """`fee` (charged in `currency`) in `quote`; None when it cannot be priced."""
    if not fee:
        return Decimal(0)
    if not currency or currency == quote:
        return fee
    if currency == base:
        return fee * fill_price if fill_price is not None else None
    return fee * third_asset_price if third_asset_price is not None else None


def third_asset_price(exchange: str, asset: str, quote: str) -> Decimal | None:
    """`asset`'s mid in `quote` on `exchange` spot: the cached book, else one REST read; None if neither."""
    from arbsite.errors import ApiError
    from exchanges.prices import get_book
    from exchanges.symbols import Exchange, Instrument, MarketType

    try:
        book = get_book(Instrument(Exchange(exchange), f"{asset}{quote}", MarketType.SPOT))
        bid, ask = Decimal(str(book["bids"][0][0])), Decimal(str(book["asks"][0][0]))
    except (ApiError, ValueError, KeyError, IndexError, TypeError) as exc:
        logger.warning("fee asset not priced", extra={"event": "fee_unpriced", "exchange": exchange,
                                                      "detail": f"{asset}/{quote}: {exc}"})
        return None
    return (bid + ask) / 2
