"""Alerts: stored, published as `engine_alert` on /ws, and optionally pushed to a webhook / Telegram.

The record is written where the alert is raised (it is what the operator reads later). The
websocket publish and the outbound HTTP calls run on a background thread with short
timeouts: delivery failures are logged and counted, never raised, and never hold up a
trading decision. Webhooks are configured by env: `ALERT_WEBHOOK_URL` (a generic JSON POST)
and `TELEGRAM_BOT_TOKEN` + `TELEGRAM_CHAT_ID`; only `ALERT_WEBHOOK_MIN_SEVERITY` and above go out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from trading.risk.checks import Rejection
    from trading.risk.gate import OrderIntent

logger = logging.getLogger("trading.risk.alerts")

SEVERITIES = ("info", "warning", "error", "critical")

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()
_recent: dict[tuple[str, ...], float] = {}
_delivery_failures = 0


def delivery_failures() -> int:
    return _delivery_failures


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="risk-alerts")
            _pool_pid = os.getpid()
        return _pool


def _setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return str(value or "")


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _deduped(key: tuple[str, ...], seconds: float) -> bool:
    """True when the same alert went out less than `seconds` ago in this process."""
    if seconds <= 0:
        return False
    now = time.monotonic()
    last = _recent.get(key)
    if last is not None and now - last < seconds:
        return True
    _recent[key] = now
    if len(_recent) > 2000:
        for k, at in list(_recent.items()):
            if now - at > 3600:
                _recent.pop(k, None)
    return False


def raise_alert(
    severity: str, code: str, message: str, *, pair_id: str = "", exchange: str = "", check: str = "",
    detail: dict[str, Any] | None = None, dedupe_seconds: float = 0, store: bool = True,
) -> int | None:
    """Store, publish and (by severity) push an alert; returns the stored id. Never raises."""
    if severity not in SEVERITIES:
        severity = "warning"
    if _deduped((severity, code, pair_id, exchange, check, message), dedupe_seconds):
        return None
    alert_id: int | None = None
    if store:
        if _in_event_loop():
            # The ORM refuses to run inside an event loop: store off the loop, like the delivery.
            _submit(_store, severity, code, message, pair_id, exchange, check, detail or {})
        else:
            alert_id = _store(severity, code, message, pair_id, exchange, check, detail or {})
    payload: dict[str, Any] = {"severity": severity, "code": str(code), "message": message}
    if pair_id:
        payload["pairId"] = pair_id
    if exchange:
        payload["exchange"] = exchange
    if check:
        payload["check"] = str(check)
    if alert_id is not None:
        payload["alertId"] = alert_id
    log = logger.warning if severity in ("warning", "info") else logger.error
    log(message, extra={"event": "engine_alert", "pairId": pair_id or None, "exchange": exchange or None,
                        "error_code": str(code), "detail": {"severity": severity, "check": str(check)}})
    _submit(_deliver, payload)
    return alert_id


def _store(severity: str, code: str, message: str, pair_id: str, exchange: str, check: str,
           detail: dict[str, Any]) -> int | None:
    try:
        from trading.risk_models import Alert

        return Alert.objects.create(severity=severity, code=str(code), message=message, pair_id=pair_id,
                                    exchange=exchange, risk_check=str(check), detail=detail).pk
    except Exception:
        logger.exception("alert not stored", extra={"event": "alert_store_failed"})
        return None
    finally:
        if threading.current_thread().name.startswith("risk-alerts"):
            from django.db import connection

            connection.close()


def _submit(fn: Any, *args: Any) -> None:
    try:
        _executor().submit(_guarded, fn, *args)
    except RuntimeError:  # interpreter shutting down
        pass


def _guarded(fn: Any, *args: Any) -> None:
    global _delivery_failures
    try:
        fn(*args)
    except Exception:
        _delivery_failures += 1
        logger.exception("alert delivery failed", extra={"event": "alert_delivery_failed"})


def _deliver(payload: dict[str, Any]) -> None:
    from arbsite import events

    payload = {**payload, "ts": events.now_ms()}
    events.publish("engine_alert", payload)  # type: ignore[arg-type]
    minimum = _setting("ALERT_WEBHOOK_MIN_SEVERITY", "error")
    rank = SEVERITIES.index(minimum) if minimum in SEVERITIES else 2
    if SEVERITIES.index(payload["severity"]) < rank:
        return
    webhook = _setting("ALERT_WEBHOOK_URL")
    if webhook:
        _post(webhook, {"event": "engine_alert", "data": payload})
    token, chat = _setting("TELEGRAM_BOT_TOKEN"), _setting("TELEGRAM_CHAT_ID")
    if token and chat:
        text = f"[{payload['severity'].upper()}] {payload['code']}: {payload['message']}"
        base = _setting("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
        _post(f"{base}/bot{token}/sendMessage", {"chat_id": chat, "text": text}, label="telegram")


def _post(url: str, body: dict[str, Any], *, label: str = "webhook") -> None:
    global _delivery_failures
    timeout = float(getattr(settings, "ALERT_WEBHOOK_TIMEOUT_SECONDS", 3.0))
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
    except Exception as exc:  # noqa: BLE001 - delivery never raises; the token is never logged
        _delivery_failures += 1
        logger.warning("alert %s delivery failed", label,
                       extra={"event": "alert_delivery_failed", "detail": {"target": label,
                                                                           "error": type(exc).__name__}})


def record_rejection(intent: OrderIntent, rejection: Rejection) -> None:
    """Every rejection is stored with its reason; the websocket hears each (pair, check) once a while."""
    from trading.risk.gate import utc_today

    try:
        from django.db.models import F

        from trading.risk_models import DailyUsage

        DailyUsage.objects.get_or_create(day=utc_today(), scope="global")
        DailyUsage.objects.filter(day=utc_today(), scope="global").update(rejections=F("rejections") + 1)
    except Exception:
        logger.exception("rejection not counted", extra={"event": "risk_count_failed"})
    window = float(getattr(settings, "RISK_REJECTION_ALERT_INTERVAL_SECONDS", 30))
    detail = {"purpose": str(intent.purpose), "symbol": intent.symbol, "type": intent.type, "side": intent.side,
              "qty": str(intent.qty), "planId": intent.plan_id or None, "clientOrderId": intent.client_order_id}
    publish_now = not _deduped(("rejection", intent.pair_id or intent.plan_id or "", intent.exchange,
                                str(rejection.check)), window)
    alert_id = _store("warning", "RISK_REJECTED", rejection.reason, intent.pair_id or "", intent.exchange,
                      str(rejection.check), detail)
    logger.info("risk rejected", extra={"event": "risk_rejected", "pairId": intent.pair_id, "exchange":
                                        intent.exchange, "symbol": intent.symbol, "error_code": "RISK_REJECTED",
                                        "detail": {"check": str(rejection.check)}})
    if publish_now:
        payload: dict[str, Any] = {"severity": "warning", "code": "RISK_REJECTED", "message": rejection.reason,
                   "exchange": intent.exchange, "symbol": intent.symbol, "check": str(rejection.check)}
        if intent.pair_id:
            payload["pairId"] = intent.pair_id
        if alert_id is not None:
            payload["alertId"] = alert_id
        _submit(_deliver, payload)


def flush(timeout: float = 5.0) -> None:
    """Wait for queued deliveries (tests, shutdown)."""
    done = threading.Event()
    _submit(done.set)
    done.wait(timeout)


def store_performance_alert(alert: Any) -> None:
    """`arbsite.monitor` alert sink: keep performance alerts in the alert history (already published)."""
    _submit(_store, alert.severity, alert.code, alert.message, "", "", "performance",
            {"metric": alert.metric, "value": alert.value, "threshold": alert.limit})
