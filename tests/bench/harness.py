"""Starts the desk's real processes against the venue emulator for benchmarks (never for tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=2) as resp:
        return bool(resp.status == 200)


@dataclass
class Desk:
    """Emulator + web (daphne) + market data, with a token for the API."""

    web_url: str
    venue_url: str
    token: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


@contextlib.contextmanager
def running_desk(instruments: str = "binance:spot:BTCUSDT,bybit:linear:BTCUSDT") -> Iterator[Desk]:
    tmp = Path(tempfile.mkdtemp(prefix="arbsite-bench-"))
    venue_port, web_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "arbsite.settings",
            "SECRET_KEY": "bench-only-secret",
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
            "CACHE_KEY_PREFIX": "arbsite-bench",
            "CHANNELS_PREFIX": "arbsite-bench:ws",
            "EXCHANGE_VENUE_URL": f"http://127.0.0.1:{venue_port}",
            "MARKETDATA_SYMBOLS": instruments,
            "LOG_LEVEL": "WARNING",
            "ARBSITE_BENCH_BARE": "1",
            "SECURE_COOKIES": "false",
        }
    )
    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp / "processes.log", "wb")

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    try:
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        token = subprocess.run(
            [
                PY,
                "manage.py",
                "shell",
                "-c",
                "from django.contrib.auth.models import User; from rest_framework.authtoken.models import Token;"
                "u,_=User.objects.get_or_create(username='bench');"
                "print(Token.objects.get_or_create(user=u)[0].key)",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip().splitlines()[-1]
        spawn(PY, "-m", "tests.venue", "--port", str(venue_port), "--on-end", "loop")
        wait_for(lambda: port_open(venue_port), 20, "emulator")
        spawn(PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port), "arbsite.asgi:application")
        spawn(PY, "manage.py", "marketdata")
        web = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: http_ok(f"{web}/_bench/bare"), 30, "web server")
        yield Desk(web_url=web, venue_url=env["EXCHANGE_VENUE_URL"], token=token, env=env, procs=procs)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        print(f"(process logs: {tmp / 'processes.log'})")
