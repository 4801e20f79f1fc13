"""Alerts: stored, on the websocket, and pushed to a webhook / Telegram without ever blocking trading."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.risk.conftest import intent
from trading.risk import check_order
from trading.risk.alerts import delivery_failures, flush, raise_alert

pytestmark = pytest.mark.django_db


class WebhookReceiver:
    """A local HTTP endpoint standing in for the webhook and Telegram (test double)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((self.path, body))
                receiver.release.wait(10)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.stop()


def test_an_error_alert_is_stored_published_and_pushed(receiver: WebhookReceiver, settings: Any,
                                                       published: Any) -> None:
    from trading.risk_models import Alert

    settings.ALERT_WEBHOOK_URL = f"{receiver.url}/hook"
    settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_CHAT_ID = "123:MOCK", "42"
    settings.TELEGRAM_API_URL = receiver.url
    alert_id = raise_alert("error", "RISK_REJECTED", "pair:x paused: breaker", pair_id="x", check="breaker")
    assert alert_id is not None
    flush()
    stored = Alert.objects.get(pk=alert_id)
    assert (stored.severity, stored.pair_id, stored.risk_check) == ("error", "x", "breaker")
    [event] = published.alerts()
    assert event["message"] == "pair:x paused: breaker" and event["pairId"] == "x" and event["alertId"] == alert_id
    paths = dict(receiver.received)
    assert paths["/hook"]["event"] == "engine_alert" and paths["/hook"]["data"]["severity"] == "error"
    assert paths["/bot123:MOCK/sendMessage"] == {"chat_id": "42", "text": "[ERROR] RISK_REJECTED: pair:x paused: "
                                                                            "breaker"}


def test_warnings_stay_off_the_webhook(receiver: WebhookReceiver, settings: Any) -> None:
    settings.ALERT_WEBHOOK_URL = f"{receiver.url}/hook"
    raise_alert("warning", "RISK_REJECTED", "slippage above limit")
    flush()
    assert receiver.received == []


def test_a_dead_webhook_is_logged_not_raised(settings: Any) -> None:
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/unreachable"
    before = delivery_failures()
    assert raise_alert("critical", "RISK_REJECTED", "kill") is not None
    flush()
    assert delivery_failures() == before + 1


def test_a_hanging_webhook_never_holds_up_a_trading_decision(receiver: WebhookReceiver, settings: Any,
                                                             books: Any) -> None:
    from tests.risk.helpers import eventually_sync

    settings.ALERT_WEBHOOK_URL = f"{receiver.url}/hook"
    receiver.release.clear()  # the webhook accepts and then hangs
    raise_alert("critical", "RISK_REJECTED", "first")
    eventually_sync(lambda: receiver.received)
    # The delivery is stuck inside the webhook call right now; the gate still decides.
    check_order(intent())
    raise_alert("critical", "RISK_REJECTED", "second")
    assert len(receiver.received) == 1
    receiver.release.set()
    flush()
    assert [b["data"]["message"] for _, b in receiver.received] == ["first", "second"]
