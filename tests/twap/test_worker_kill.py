"""A real Celery worker killed (SIGKILL) in the middle of a slice, beat killed too, both restarted.

The worker and beat run as subprocesses on the test's database and Redis namespace (broker on
a test-only Redis DB), with markets from the venue emulator and a long paper latency so the
kill lands while both legs of a slice are in flight. The restarted worker reconciles that
slice by client id before taking new work; the plan completes with exactly one order per
slice and leg, and exactly the total on both legs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from tests.twap.conftest import paper_orders, venue_filled
from twap import scheduler
from twap.models import OrderState, PlanState, Slice, SliceOrder, SliceState

pytestmark = [pytest.mark.slow, pytest.mark.emulator, pytest.mark.recorded, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
CELERY = str(REPO / ".venv" / "bin" / "celery")
BROKER_DB = 14
TOTAL = Decimal("0.003")


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Processes:
    """The worker and beat subprocesses; everything started here is killed by pid at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}-{len(self.started)}.log", "wb") as log:
            proc = subprocess.Popen([CELERY, "-A", "arbsite", *args], cwd=REPO, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.started.append(proc)
        return proc

    def worker(self) -> subprocess.Popen[bytes]:
        return self.start("worker", "worker", "-Q", "twap", "-c", "1", "--pool", "solo", "-n", "twaptest@%h",
                          "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat")

    def beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat", "beat", "-l", "info", "--schedule", str(self.logs / "beat-schedule"))

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def processes(venue: Any, books: Any, tmp_path: Path, settings: Any) -> Iterator[Processes]:
    broker = f"redis://127.0.0.1:6379/{BROKER_DB}"
    redis.Redis.from_url(broker).flushdb()
    settings.MARKETDATA_STALE_SECONDS = 600.0  # the books were written once, before the workers start
    prefix = django_settings.CACHES["default"]["KEY_PREFIX"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": django_settings.REDIS_URL,
        # tests.settings names the Redis namespace after this: the subprocesses share ours.
        "PYTEST_XDIST_WORKER": prefix.removeprefix("arbsite-test-"),
        "EXCHANGE_VENUE_URL": venue.url,
        "EXCHANGE_DATA_DIR": str(django_settings.EXCHANGE_DATA_DIR),
        "MARKETDATA_STALE_SECONDS": "600",
        "PAPER_LATENCY_MS": "2500",  # long enough to kill the worker while a slice is in flight
        "PAPER_STARTING_FUNDS": json.dumps({"USDT": "100000", "BTC": "1"}),
        "PYTHONPATH": str(REPO),
        "LOG_JSON": "false",
    }
    procs = Processes(env, tmp_path)
    yield procs
    procs.stop_all()
    redis.Redis.from_url(broker).flushdb()


def test_a_worker_killed_mid_slice_leaves_no_duplicate_and_exact_quantities(make_plan: Any,
                                                                           processes: Processes) -> None:
    plan = make_plan(total_qty=TOTAL, interval_ms=1000)
    worker, beat = processes.worker(), processes.beat()
    scheduler.control(plan.plan_id, "start")
    try:
        # Slice 2's orders are stored and on their way (the paper venue is still "matching" them).
        eventually(lambda: SliceOrder.objects.filter(slice__plan=plan, slice__index=2).count() == 2, 40,
                   "slice 2 in flight")
        worker.send_signal(signal.SIGKILL)
        beat.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        beat.wait(timeout=10)
        in_flight = Slice.objects.get(plan=plan, index=2)
        assert in_flight.state == SliceState.RUNNING
        assert set(in_flight.orders.values_list("state", flat=True)) == {OrderState.SENDING}

        processes.worker()
        processes.beat()
        eventually(lambda: scheduler.get_plan(plan.plan_id).state != PlanState.RUNNING, 45, "the plan to finish")
        plan.refresh_from_db()
        assert plan.state == PlanState.COMPLETED, plan.state_reason
        legs = plan.executed_by_leg()
        assert (legs[1].executed, legs[2].executed) == (TOTAL, TOTAL)
        recovered = Slice.objects.get(plan=plan, index=2)
        assert recovered.state == SliceState.DONE and recovered.attempts == 2
        # The venues' side: one order per slice and leg, nothing twice, exactly the total filled.
        expected = {f"tw{plan.uid}s{n}l{leg}" for n in (1, 2, 3) for leg in (1, 2)}
        assert set(paper_orders("bybit")) | set(paper_orders("binance")) == expected
        assert venue_filled("bybit") == venue_filled("binance") == TOTAL
    except AssertionError:
        slices = list(Slice.objects.filter(plan=plan).values_list("index", "state", "attempts", "note"))
        print(f"slices: {slices}\n{processes.output()}", file=sys.stderr)
        raise
