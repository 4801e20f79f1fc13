"""A local Binance + Bybit + OKX venue emulator replaying recorded data, for tests and offline demos."""

from tests.venue.server import VenueEmulator

__all__ = ["VenueEmulator"]
