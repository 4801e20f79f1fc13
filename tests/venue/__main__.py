"""Run the venue emulator alone: `python -m tests.venue --port 8765 [--speed 1] [--on-end close|loop]`.

It prints the exchanges it speaks (Binance and Bybit with trading, OKX public market data) and the
recorded books each one replays.

No Django needed: the data folder comes from --data-dir, else $EXCHANGE_DATA_DIR, else
../shared/data next to the repository. Point the desk at the printed URL with EXCHANGE_VENUE_URL;
to trade on it, set the printed test account keys as {EXCHANGE}_API_KEY / {EXCHANGE}_API_SECRET.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from tests.venue.server import ON_END_CHOICES, VenueEmulator
from tests.venue.trading import TEST_ACCOUNTS

REPO = Path(__file__).resolve().parents[2]


def data_dir_from(arg: str | None) -> Path:
    raw = arg or os.environ.get("EXCHANGE_DATA_DIR") or "../shared/data"
    path = Path(raw)
    return path if path.is_absolute() else (REPO / path).resolve()


def served_books(emulator: VenueEmulator) -> list[str]:
    """One line per exchange: what it serves and the recorded books it replays."""
    data = emulator.venue.data
    return [
        "binance (spot + USD-M, trading): books " + ", ".join(f"{m}:{s}" for m, s in sorted(data.binance_books)),
        "bybit (spot + linear, trading): books " + ", ".join(f"{c}:{s}" for c, s in sorted(data.bybit_books)),
        "okx (public market data only): books " + ", ".join(sorted(data.okx_books)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.venue", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed factor (2 = twice as fast)")
    parser.add_argument("--on-end", choices=ON_END_CHOICES, default="close", help="when a recording ends")
    parser.add_argument("--no-shift-timestamps", action="store_true", help="send recorded E/T/ts/cts unchanged")
    parser.add_argument("--data-dir", help="recorded data folder (default: $EXCHANGE_DATA_DIR or ../shared/data)")
    parser.add_argument("--funds", help="starting funds of every test account, e.g. USDT=100000,BTC=1,ETH=10")
    args = parser.parse_args(argv)
    funds = dict(item.split("=", 1) for item in args.funds.split(",")) if args.funds else None
    data_dir = data_dir_from(args.data_dir)
    if not data_dir.is_dir():
        print(f"recorded data not found at {data_dir}; pass --data-dir or set EXCHANGE_DATA_DIR", file=sys.stderr)
        return 2
    emulator = VenueEmulator(
        data_dir,
        speed=args.speed,
        shift_timestamps=not args.no_shift_timestamps,
        on_end=args.on_end,
        port=args.port,
        host=args.host,
        funds=funds,
    ).start()
    print(f"venue emulator: {emulator.url}  (EXCHANGE_VENUE_URL={emulator.url}; data {data_dir})", flush=True)
    for line in served_books(emulator):
        print(f"  {line}", flush=True)
    for exchange, accounts in TEST_ACCOUNTS.items():
        for api_key, secret in accounts.items():
            print(f"  trading account: {exchange.upper()}_API_KEY={api_key} {exchange.upper()}_API_SECRET={secret}",
                  flush=True)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
