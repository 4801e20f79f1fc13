"""`make bench`: the desk's speed figures, measured against the venue emulator on this machine.

Targets (issue 2): prices p95 <= 20 ms and <= 3x the bare endpoint at 200 req/s from cache;
tick -> price_update at a /ws client p99 <= 25 ms; detection -> both legs at the emulator p99 <= 30 ms,
skew between the legs' arrival p99 <= 5 ms (tests.bench.execution).
"""

from __future__ import annotations

import argparse
import asyncio
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    args = parser.parse_args()

    from tests.bench import detection, execution, market_data
    from tests.bench.harness import running_desk

    print(f"arbsite bench: {os.cpu_count()} cores; emulator replay; {args.rate:.0f} req/s for {args.seconds:.0f} s")
    detection.main()
    execution.main()
    with running_desk() as desk:
        print("[1] /api/prices from cache vs bare ASGI endpoint (same daphne server)")
        asyncio.run(market_data.prices_vs_bare(desk, args.rate, args.seconds))
        print("[2] tick -> price_update at a /ws client")
        asyncio.run(market_data.tick_to_client(desk, max(30.0, args.seconds)))


if __name__ == "__main__":
    main()
