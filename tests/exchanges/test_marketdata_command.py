"""`manage.py marketdata` as a real process: with no exchange reachable it keeps running,
reports EXCHANGE_UNAVAILABLE with a heartbeat, writes no prices, and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from arbsite.redis_client import get_redis, key
from exchanges.order_books import read_book, read_stream_statuses
from exchanges.symbols import Instrument

ROOT = Path(__file__).resolve().parents[2]


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)  # polling a real process with a deadline, not waiting a fixed time
    raise AssertionError(f"condition not met within {timeout}s")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_it_runs_without_exchanges_and_stops_on_sigterm() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "EXCHANGE_VENUE_URL": f"http://127.0.0.1:{closed_port()}",
        "MARKETDATA_SYMBOLS": "binance:spot:BTCUSDT",
        "EXCHANGE_TIMEOUT_MS": "2000",
    }
    env.pop("DATABASE_URL", None)  # the command needs no database
    proc = subprocess.Popen([sys.executable, "manage.py", "marketdata"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def beat() -> dict[str, Any] | None:
            raw = get_redis().get(key("marketdata", "heartbeat"))
            return json.loads(raw) if raw else None

        data = wait_for(beat)
        assert data["pid"] == proc.pid
        status = wait_for(lambda: read_stream_statuses().get("binance:spot:BTCUSDT"))
        wait_for(lambda: read_stream_statuses()["binance:spot:BTCUSDT"].error_code == "EXCHANGE_UNAVAILABLE")
        assert status is not None
        assert read_book(Instrument.parse_key("binance:spot:BTCUSDT")) is None
        assert proc.poll() is None  # still running, retrying with backoff
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
