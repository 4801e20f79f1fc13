"""What the Exchanges API reports: reachability, keys, and each stream's health."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from arbsite.redis_client import get_redis, key
from exchanges.connectivity import venue_label
from exchanges.order_books import StreamState, StreamStatus, now_ms, read_exchange_outcomes, read_stream_statuses
from exchanges.symbols import Exchange

HEARTBEAT_KEY_PARTS = ("marketdata", "heartbeat")
MARKETDATA_DOWN = "MARKETDATA_DOWN"


def has_trading_keys(exchange: Exchange | str) -> bool:
    """True when `exchange` has complete trading keys (env first, then stored; see exchanges.credentials)."""
    from exchanges.credentials import has_trading_keys as configured

    return configured(exchange)


def supported_exchanges() -> list[str]:
    return [str(name) for name in getattr(settings, "SUPPORTED_EXCHANGES", [e.value for e in Exchange])]


def _websocket_summary(streams: list[StreamStatus]) -> str:
    """`idle` (nothing watched), `live`, `degraded` (some live) or `down` (none live)."""
    if not streams:
        return "idle"
    live = sum(1 for s in streams if s.state is StreamState.LIVE)
    if live == len(streams):
        return "live"
    return "degraded" if live else "down"


def exchange_status(name: str, outcomes: dict[str, dict[str, Any]], streams: list[StreamStatus],
                    at_ms: int) -> dict[str, Any]:
    outcome = outcomes.get(name)
    live = [s for s in streams if s.state is StreamState.LIVE]
    reachable: bool | None
    if live:
        reachable = True
    elif outcome is not None:
        reachable = bool(outcome.get("ok"))
    elif streams:
        reachable = False if any(s.error_code for s in streams) else None
    else:
        reachable = None
    updates = [s.last_update_ms for s in streams if s.last_update_ms]
    last_error = outcomes.get(f"{name}:lastError")
    return {
        "name": name,
        "connected": bool(reachable),
        "publicOnly": not has_trading_keys(name),
        "venue": venue_label(),
        "reachable": reachable,
        "websocket": _websocket_summary(streams),
        "lastUpdateAgeMs": (at_ms - max(updates)) if updates else None,
        "streams": [
            {
                "instrument": s.instrument,
                "state": s.state.value,
                "ageMs": (at_ms - s.last_update_ms) if s.last_update_ms else None,
                "reconnects": s.reconnects,
                "error": {"code": s.error_code, "message": s.error_message} if s.error_code else None,
            }
            for s in sorted(streams, key=lambda s: s.instrument)
        ],
        "lastError": (
            {"code": last_error.get("code"), "message": last_error.get("message"), "ts": last_error.get("ts")}
            if last_error else None
        ),
    }


def marketdata_running(at_ms: int) -> bool:
    """Whether the market-data process has reported recently (its stream states are current)."""
    raw = get_redis().get(key(*HEARTBEAT_KEY_PARTS))
    if not raw:
        return False
    try:
        beat_ms = float(json.loads(raw).get("ts", 0)) * 1000
    except (ValueError, AttributeError):
        return False
    return at_ms - beat_ms < float(getattr(settings, "MARKETDATA_STALE_SECONDS", 10.0)) * 1000


def _orphaned(status: StreamStatus) -> StreamStatus:
    """A state left behind by a market-data process that stopped reporting."""
    status.state = StreamState.STALE
    status.error_code = MARKETDATA_DOWN
    status.error_message = "the market-data process is not running"
    return status


def all_exchange_statuses() -> list[dict[str, Any]]:
    outcomes = read_exchange_outcomes()
    statuses = read_stream_statuses()
    at = now_ms()
    if statuses and not marketdata_running(at):
        statuses = {k: _orphaned(s) for k, s in statuses.items()}
    out = []
    for name in supported_exchanges():
        streams = [s for k, s in statuses.items() if k.split(":", 1)[0] == name]
        out.append(exchange_status(name, outcomes, streams, at))
    return out
