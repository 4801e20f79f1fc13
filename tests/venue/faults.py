"""Fault injection: what to break, where, and how many times.

A fault belongs to one exchange and optionally narrows to a REST path or a stream by substring
(case-insensitive), e.g. `path="/api/v3/depth"` or `stream="btcusdt@depth"` / `stream="orderbook.200.BTCUSDT"`.
Each fault fires `count` times (None: until cleared). Websocket faults may wait until `after`
data messages of the matching subscription have been sent, which makes "the book after exactly
K updates" reproducible.

Kinds, and where they act by default (`on` overrides where both make sense):
- `latency`     (http; ws with on="ws"): wait `ms` before answering / before each message.
- `http_status` (http): answer `status` (429, 418, 403, 500, 502, 503, ...) with the exchange's error body
                 (or `body` as given).
- `drop`        (ws; http with on="http"): close the websocket / reset the HTTP connection.
- `stall`       (ws; http with on="http"): stop sending data but keep the socket open (control replies
                 such as pongs and acks still flow) / hold the HTTP request until the client gives up.
- `gap`         (ws): skip one diff message, so the next one breaks the sequence.
- `malformed`   (ws; http with on="http"): send a frame / body that is not valid JSON.
- `reject_order` (http, order-create requests only): refuse the order after the signature check with
                 the exchange's own error for `body` (a `tests.venue.trading.REJECT_KINDS` reason,
                 default "insufficient_balance"; "rate_limit" answers the exchange's 429 instead).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = {
    "latency": "http",
    "http_status": "http",
    "drop": "ws",
    "stall": "ws",
    "gap": "ws",
    "malformed": "ws",
    "reject_order": "http",
}
REJECT_REASONS = ("insufficient_balance", "min_notional", "min_qty", "lot_size", "tick_size", "duplicate",
                  "unknown_symbol", "reduce_only", "rate_limit")
_ids = itertools.count(1)


class FaultError(ValueError):
    """A fault request that cannot be honoured (unknown kind, missing parameter)."""


@dataclass
class Fault:
    exchange: str
    kind: str
    on: str
    path: str | None = None
    stream: str | None = None
    count: int | None = 1
    after: int = 0
    ms: int = 0
    status: int = 0
    body: str | None = None
    id: int = field(default_factory=lambda: next(_ids))
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_fault(exchange: str, kind: str, **params: Any) -> Fault:
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; one of {sorted(KINDS)}")
    on = params.pop("on", None) or KINDS[kind]
    if on not in ("http", "ws"):
        raise FaultError("on must be 'http' or 'ws'")
    if kind == "http_status" and not params.get("status"):
        raise FaultError("http_status needs status=<int>")
    if kind == "latency" and int(params.get("ms", 0)) <= 0:
        raise FaultError("latency needs ms=<int > 0>")
    if kind == "reject_order":
        if on != "http":
            raise FaultError("reject_order acts on http order requests only")
        params["body"] = params.get("body") or "insufficient_balance"
        if params["body"] not in REJECT_REASONS:
            raise FaultError(f"reject_order body must be one of {REJECT_REASONS}")
    known = {"path", "stream", "count", "after", "ms", "status", "body"}
    unknown = set(params) - known
    if unknown:
        raise FaultError(f"unknown fault parameters {sorted(unknown)}")
    count = params.get("count", 1)
    return Fault(
        exchange=exchange,
        kind=kind,
        on=on,
        path=params.get("path"),
        stream=params.get("stream"),
        count=None if count is None else int(count),
        after=int(params.get("after", 0)),
        ms=int(params.get("ms", 0)),
        status=int(params.get("status", 0)),
        body=params.get("body"),
    )


class FaultBook:
    """Thread-safe: tests inject from their own thread while the server loop consumes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, exchange: str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if exchange is not None and f.exchange != exchange]

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def take_http(self, exchange: str, path: str, *, order: bool = False) -> list[Fault]:
        """The HTTP faults that fire for this request (each consumes one of its count).

        `reject_order` faults only fire on order-create requests (`order=True`).
        """
        with self._lock:
            hits = [f for f in self._faults if f.on == "http" and f.exchange == exchange and _covers(f.path, path)
                    and (order or f.kind != "reject_order")]
            return [self._consume(f) for f in hits]

    def take_ws(self, exchange: str, stream: str, sent: int, kinds: tuple[str, ...]) -> list[Fault]:
        """The websocket faults due before sending message number `sent` (0-based) of `stream`."""
        with self._lock:
            hits = [
                f
                for f in self._faults
                if f.on == "ws"
                and f.kind in kinds
                and f.exchange == exchange
                and _covers(f.stream, stream)
                and sent >= f.after
            ]
            return [self._consume(f) for f in hits]

    def _consume(self, fault: Fault) -> Fault:
        fault.fired += 1
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)
        return fault


def _covers(needle: str | None, haystack: str) -> bool:
    return needle is None or needle.lower() in haystack.lower()
