"""The contract's symbols (`BTCUSDT` + market type) and ccxt's unified symbols, both ways."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Exchange(StrEnum):
    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"
    BITGET = "bitget"


class MarketType(StrEnum):
    SPOT = "spot"
    LINEAR = "linear"  # USDT-margined perpetual


# Longest first, so BTCUSDT splits as BTC/USDT and not BTCUSD/T.
KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USD", "EUR", "TRY", "BTC", "ETH", "BNB")


class SymbolError(ValueError):
    """The symbol cannot be read or is not listed for that market type."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """One leg's market: exchange, contract symbol and type."""

    exchange: Exchange
    symbol: str
    type: MarketType

    @property
    def unified(self) -> str:
        return to_unified(self.symbol, self.type)

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.type}:{self.symbol}"

    @classmethod
    def parse_key(cls, text: str) -> Instrument:
        """`binance:spot:BTCUSDT` -> Instrument (the form used in settings and Redis keys)."""
        try:
            exchange, market_type, symbol = text.split(":")
            return cls(Exchange(exchange), normalise_symbol(symbol), MarketType(market_type))
        except ValueError as exc:
            raise SymbolError(f"cannot read instrument {text!r}; expected exchange:type:SYMBOL") from exc


def normalise_symbol(symbol: str) -> str:
    """`btc-usdt`, `BTC/USDT`, `btcusdt` -> `BTCUSDT`."""
    cleaned = symbol.strip().upper().replace("-", "").replace("/", "").replace("_", "")
    if not cleaned.isalnum() or not 2 <= len(cleaned) <= 30:
        raise SymbolError(f"{symbol!r} is not a symbol")
    return cleaned


def split_symbol(symbol: str) -> tuple[str, str]:
    """`BTCUSDT` -> (`BTC`, `USDT`)."""
    cleaned = normalise_symbol(symbol)
    for quote in KNOWN_QUOTES:
        if cleaned.endswith(quote) and len(cleaned) > len(quote):
            return cleaned[: -len(quote)], quote
    raise SymbolError(f"{symbol!r} has no known quote currency ({', '.join(KNOWN_QUOTES)})")


def to_unified(symbol: str, market_type: MarketType | str) -> str:
    """`BTCUSDT` spot -> `BTC/USDT`; linear -> `BTC/USDT:USDT` (settled in the quote)."""
    base, quote = split_symbol(symbol)
    if MarketType(market_type) is MarketType.LINEAR:
        return f"{base}/{quote}:{quote}"
    return f"{base}/{quote}"


def from_unified(unified: str) -> tuple[str, MarketType]:
    """`BTC/USDT:USDT` -> (`BTCUSDT`, linear); `BTC/USDT` -> (`BTCUSDT`, spot)."""
    pair, _, settle = unified.partition(":")
    base, _, quote = pair.partition("/")
    if not base or not quote:
        raise SymbolError(f"{unified!r} is not a ccxt unified symbol")
    if settle and "-" in settle:
        raise SymbolError(f"{unified!r} is a dated or option contract, not a perpetual")
    return f"{base}{quote}", (MarketType.LINEAR if settle else MarketType.SPOT)
