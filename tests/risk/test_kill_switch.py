"""The kill switch: halts everything, cancels what is open, and survives a restart until cleared."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from arbsite.errors import RiskRejected
from tests.risk.conftest import intent
from trading.risk import check_order, clear_kill_switch, engage_kill_switch, trading_state

ROOT = Path(__file__).resolve().parents[2]


def state_in_a_new_process() -> str:
    """Ask a fresh interpreter (a restarted worker) what the gate's state is."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    code = ("import django; django.setup(); from trading.risk import trading_state; "
            "s = trading_state('any'); print(s.state, '|', s.reason)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.risk.urls")
def test_it_persists_across_a_restart_until_an_operator_clears_it(books: Any, api: Any, published: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from trading.risk_models import LimitChange

    queued: list[bool] = []
    monkeypatch.setattr("trading.risk_tasks.enqueue_cancel_open_orders", lambda: queued.append(True))
    response = api.post("/api/risk/kill-switch", {"engaged": True, "reason": "exchange incident"}, format="json")
    assert response.status_code == 200 and response.json()["data"]["engaged"] is True
    assert queued == [True]  # open orders are cancelled by the execution queue
    assert next(a for a in published.alerts() if a["severity"] == "critical")["message"].startswith(
        "KILL SWITCH engaged by olivia")

    assert state_in_a_new_process() == "halted | exchange incident"
    with pytest.raises(RiskRejected, match="kill switch is halted"):
        check_order(intent(purpose="flatten"))

    response = api.post("/api/risk/kill-switch", {"engaged": False}, format="json")
    assert response.json()["data"]["engaged"] is False and response.json()["data"]["clearedBy"] == "olivia"
    assert state_in_a_new_process().startswith("active")
    check_order(intent())
    assert LimitChange.objects.filter(scope="kill_switch").count() == 2


@pytest.mark.django_db
def test_it_cancels_working_orders(monkeypatch: pytest.MonkeyPatch, pair: Any) -> None:
    from trading.execution_models import Execution, ExecutionOrder, OrderState
    from trading.risk_tasks import cancel_open_orders

    cancelled: list[str] = []

    class CancelRecorderVenue:  # stub venue, records cancels
        async def cancel_order(self, instrument: Any, client_order_id: str) -> None:
            cancelled.append(client_order_id)

        async def close(self) -> None:
            return None

    monkeypatch.setattr("exchanges.venues.venue_for", lambda exchange: CancelRecorderVenue())
    ex = Execution.objects.create(pair=pair, pair_key=pair.id, leg1_exchange="bybit", leg1_symbol="BTCUSDT",
                                  leg1_type="linear", leg2_exchange="binance", leg2_symbol="BTCUSDT", leg2_type="spot")
    for n, state in enumerate([OrderState.OPEN, OrderState.FILLED]):
        ExecutionOrder.objects.create(execution=ex, leg=1, purpose="entry", attempt=n, client_order_id=f"k{n}",
                                      exchange="bybit", symbol="BTCUSDT", market_type="linear", side="buy",
                                      order_type="limit", qty=D("0.01"), state=state)
    assert cancel_open_orders() == 1 and cancelled == ["k0"]


@pytest.mark.django_db
def test_kill_hooks_run_and_clearing_is_audited(books: Any) -> None:
    from trading.risk import on_kill

    heard: list[str] = []
    on_kill(heard.append)
    engage_kill_switch("drill", user="olivia")
    assert heard == ["drill"] and trading_state().state == "halted"
    clear_kill_switch(user="olivia")
    assert trading_state().state == "active"
    from trading.risk import gate

    gate._kill_hooks.remove(heard.append)
