"""Risk API: limits (global and per pair), states, the kill switch, alerts. Every change is audited."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.errors import NotFound, ValidationFailed
from arbsite.pagination import positive_int
from trading.models import Pair
from trading.risk import breaker, gate
from trading.risk_models import (
    LIMIT_FIELDS,
    Alert,
    BreakerState,
    BreakerStatus,
    DailyUsage,
    KillSwitch,
    LimitChange,
    RiskLimits,
    RiskPosition,
    State,
    TradingState,
)

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
INTEGER_FIELDS = {
    "abnormal_move_window_seconds", "pnl_window_minutes", "breaker_consecutive_failures",
    "breaker_window_seconds", "breaker_min_samples", "breaker_cooldown_seconds",
}
# Fields that may be negative (a PnL floor); all others must be >= 0.
SIGNED_FIELDS = {"pnl_window_floor"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


FIELD_FOR_CAMEL = {camel(f): f for f in LIMIT_FIELDS}


def _num(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


def _limits_json(values: dict[str, Any]) -> dict[str, Any]:
    return {camel(k): _num(v) for k, v in values.items()}


def _username(request: Request) -> str:
    user = getattr(request, "user", None)
    return str(getattr(user, "username", "") or "")


def _parse_value(name: str, value: Any, *, allow_null: bool) -> Any:
    label = camel(name)
    if value is None:
        if not allow_null:
            raise ValidationFailed(f"{label}: a global limit cannot be empty")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationFailed(f"{label}: must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValidationFailed(f"{label}: must be a number") from exc
    if not number.is_finite():
        raise ValidationFailed(f"{label}: must be a finite number")
    if name not in SIGNED_FIELDS and number < 0:
        raise ValidationFailed(f"{label}: must not be negative")
    if name in INTEGER_FIELDS:
        if number != number.to_integral_value():
            raise ValidationFailed(f"{label}: must be a whole number")
        return int(number)
    return number


def apply_limits(row: RiskLimits, changes: dict[str, Any], *, user: str, source: str) -> list[str]:
    """Validate and store `changes` (camelCase keys) on `row`, auditing each changed field."""
    if not isinstance(changes, dict):
        raise ValidationFailed("limits must be an object")
    unknown = sorted(set(changes) - set(FIELD_FOR_CAMEL))
    if unknown:
        raise ValidationFailed(f"unknown limit(s): {', '.join(unknown)}")
    parsed = {FIELD_FOR_CAMEL[k]: _parse_value(FIELD_FOR_CAMEL[k], v, allow_null=row.pair_id is not None)
              for k, v in changes.items()}
    changed = []
    scope = f"pair:{row.pair_id}" if row.pair_id else "global"
    for name, value in parsed.items():
        old = getattr(row, name)
        if old == value or (old is not None and value is not None and Decimal(str(old)) == Decimal(str(value))):
            continue
        setattr(row, name, value)
        changed.append(name)
        LimitChange.objects.create(username=user, source=source, scope=scope, field=camel(name),
                                   old_value="" if old is None else str(old),
                                   new_value="" if value is None else str(value))
    if changed:
        row.updated_by = user or source
        row.save()
    return changed


def limits_body() -> dict[str, Any]:
    glob = gate.global_limits_row()
    pairs = []
    for row in RiskLimits.objects.filter(pair__isnull=False).order_by("pair_id"):
        overrides = {camel(k): _num(v) for k, v in row.values().items() if v is not None}
        pairs.append({"pairId": row.pair_id, "overrides": overrides,
                      "effective": _limits_json(dict(gate.effective_limits(row.pair_id).values)),
                      "updatedAt": int(row.updated_at.timestamp() * 1000), "updatedBy": row.updated_by})
    return {"global": _limits_json(glob.values()), "pairs": pairs,
            "updatedAt": int(glob.updated_at.timestamp() * 1000), "updatedBy": glob.updated_by}


class LimitsView(APIView):
    """`GET /api/risk/limits`; `PUT` with `{"global": {...}, "pairs": {"<pairId>": {...} | null}}`.

    Partial updates: only the named limits change. On a pair, `null` for a limit inherits the
    global value again, and `null` for the whole pair drops its overrides.
    """

    def get(self, request: Request) -> Response:
        return Response(limits_body())

    def put(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict) or not set(body) <= {"global", "pairs"} or not body:
            raise ValidationFailed('body must be {"global": {...}, "pairs": {"<pairId>": {...}}}')
        user = _username(request)
        with transaction.atomic():
            if "global" in body:
                row = RiskLimits.objects.select_for_update().get(pk=gate.global_limits_row().pk)
                apply_limits(row, body["global"], user=user, source="api")
            pairs = body.get("pairs") or {}
            if not isinstance(pairs, dict):
                raise ValidationFailed("pairs must be an object keyed by pair id")
            for pair_id, changes in pairs.items():
                pair = Pair.objects.filter(id=pair_id).first()
                if pair is None:
                    raise NotFound(f"pair {pair_id} not found")
                if changes is None:
                    if RiskLimits.objects.filter(pair=pair).delete()[0]:
                        LimitChange.objects.create(username=user, source="api", scope=f"pair:{pair_id}",
                                                   field="*", old_value="overrides", new_value="")
                    continue
                row, _ = RiskLimits.objects.select_for_update().get_or_create(pair=pair)
                apply_limits(row, changes, user=user, source="api")
        return Response(limits_body())


def _state_json(row: TradingState) -> dict[str, Any]:
    kind, _, name = row.scope.partition(":")
    return {"scope": kind, "id": name or None, "state": row.state, "reason": row.reason, "automatic": row.automatic,
            "until": int(row.until.timestamp() * 1000) if row.until else None,
            "updatedBy": row.updated_by, "updatedAt": int(row.updated_at.timestamp() * 1000)}


def _usage_json(row: DailyUsage | None) -> dict[str, Any]:
    if row is None:
        return {"notional": 0.0, "realisedPnl": 0.0, "orders": 0, "rejections": 0}
    return {"notional": float(row.notional), "realisedPnl": float(row.realised_pnl), "orders": row.orders,
            "rejections": row.rejections}


def kill_switch_json() -> dict[str, Any]:
    row = KillSwitch.load()
    return {"engaged": row.engaged, "reason": row.reason, "engagedBy": row.engaged_by,
            "engagedAt": int(row.engaged_at.timestamp() * 1000) if row.engaged_at else None,
            "clearedBy": row.cleared_by, "clearedAt": int(row.cleared_at.timestamp() * 1000) if row.cleared_at else None}


def state_body() -> dict[str, Any]:
    today = gate.utc_today()
    usage = {u.scope: u for u in DailyUsage.objects.filter(day=today)}
    glob_state = gate.trading_state()
    glob_limits = gate.effective_limits(None)
    positions = list(RiskPosition.objects.exclude(qty=0, pending_long=0, pending_short=0))
    net: dict[str, list[Decimal]] = {}
    for p in positions:
        row = net.setdefault(p.asset, [Decimal(0)] * 3)
        row[0] += p.qty
        row[1] += p.pending_long
        row[2] += p.pending_short
    return {
        "killSwitch": kill_switch_json(),
        "global": {"state": glob_state.state, "reason": glob_state.reason, "scope": glob_state.scope},
        "states": [_state_json(r) for r in TradingState.objects.exclude(state=State.ACTIVE)],
        "breakers": [
            {"scope": b.scope.partition(":")[0], "id": b.scope.partition(":")[2], "status": b.status,
             "reason": b.reason, "consecutiveFailures": b.consecutive_failures,
             "openedAt": int(b.opened_at.timestamp() * 1000) if b.opened_at else None}
            for b in BreakerState.objects.exclude(status=BreakerStatus.CLOSED)
        ],
        "exposure": {
            "venues": [{"exchange": p.exchange, "asset": p.asset, "qty": float(p.qty),
                        "pendingLong": float(p.pending_long), "pendingShort": float(p.pending_short)}
                       for p in positions],
            "net": [{"asset": a, "qty": float(q), "pendingLong": float(lo), "pendingShort": float(sh)}
                    for a, (q, lo, sh) in sorted(net.items())],
        },
        "today": {
            "day": today.isoformat(),
            **_usage_json(usage.get(gate.GLOBAL)),
            "limits": {"maxDailyNotional": _num(glob_limits.max_daily_notional),
                       "maxDailyLoss": _num(glob_limits.max_daily_loss)},
            "pairs": [{"pairId": scope.partition(":")[2], **_usage_json(u)}
                      for scope, u in sorted(usage.items()) if scope.startswith("pair:")],
        },
    }


_SCOPE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


class StateView(APIView):
    """`GET /api/risk/state`; `PUT {"scope": "global"|"pair"|"exchange", "id": ..., "state": ..., "reason": ...}`.

    Resuming is deliberate: setting a pair or exchange active also closes its breaker.
    """

    def get(self, request: Request) -> Response:
        return Response(state_body())

    def put(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        kind, ident, state = body.get("scope"), body.get("id"), body.get("state")
        if kind not in ("global", "pair", "exchange"):
            raise ValidationFailed("scope: one of global, pair, exchange")
        if state not in State.values:
            raise ValidationFailed(f"state: one of {', '.join(State.values)}")
        reason = str(body.get("reason") or "")[:500]
        if kind == "global":
            scope = gate.GLOBAL
        else:
            if not isinstance(ident, str) or not _SCOPE_ID.match(ident):
                raise ValidationFailed("id: the pair id or exchange name")
            if kind == "pair" and not Pair.objects.filter(id=ident).exists():
                raise NotFound(f"pair {ident} not found")
            if kind == "exchange" and ident not in ("binance", "bybit", "okx", "bitget"):
                raise ValidationFailed("id: one of binance, bybit, okx, bitget")
            scope = f"{kind}:{ident}"
        gate.set_state(scope, state, reason, user=_username(request), source="api")
        if state == State.ACTIVE and kind != "global":
            breaker.reset(scope)
            if kind == "exchange":
                _clear_ban(str(ident))
        return Response(state_body())


def _clear_ban(exchange: str) -> None:
    from exchanges.throttle import clear_ban

    clear_ban(exchange)


class KillSwitchView(APIView):
    """`GET /api/risk/kill-switch`; `POST {"engaged": bool, "reason": "..."}`."""

    def get(self, request: Request) -> Response:
        return Response(kill_switch_json())

    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        engaged = body.get("engaged")
        if not isinstance(engaged, bool):
            raise ValidationFailed("engaged: true or false")
        reason = str(body.get("reason") or "")[:500]
        if engaged:
            gate.engage_kill_switch(reason or "engaged from the API", user=_username(request), source="api")
        else:
            gate.clear_kill_switch(user=_username(request), source="api", reason=reason)
        return Response(kill_switch_json())


def alert_json(a: Alert) -> dict[str, Any]:
    return {"id": a.id, "severity": a.severity, "code": a.code, "message": a.message, "pairId": a.pair_id or None,
            "exchange": a.exchange or None, "check": a.risk_check or None, "detail": a.detail,
            "ts": int(a.at.timestamp() * 1000)}


class AlertListView(APIView):
    """`GET /api/risk/alerts?page=&pageSize=&severity=&pair=&check=`, newest first."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        page = positive_int(params.get("page"), "page", 1)
        size = positive_int(params.get("pageSize"), "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        qs = Alert.objects.all()
        if params.get("severity"):
            qs = qs.filter(severity=params["severity"])
        if params.get("pair"):
            qs = qs.filter(pair_id=params["pair"])
        if params.get("check"):
            qs = qs.filter(risk_check=params["check"])
        if params.get("q"):
            qs = qs.filter(Q(message__icontains=params["q"]) | Q(code__icontains=params["q"]))
        total = qs.count()
        items = [alert_json(a) for a in qs[(page - 1) * size: page * size]]
        return Response({"items": items, "page": page, "pageSize": size, "total": total,
                         "pages": (total + size - 1) // size})


class LimitChangeListView(APIView):
    """`GET /api/risk/audit?page=`: who changed which limit, state or switch, when."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        page = positive_int(params.get("page"), "page", 1)
        size = positive_int(params.get("pageSize"), "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        qs = LimitChange.objects.all()
        total = qs.count()
        items = [{"id": c.id, "user": c.username or None, "source": c.source, "scope": c.scope, "field": c.field,
                  "old": c.old_value, "new": c.new_value, "ts": int(c.at.timestamp() * 1000)}
                 for c in qs[(page - 1) * size: page * size]]
        return Response({"items": items, "page": page, "pageSize": size, "total": total,
                         "pages": (total + size - 1) // size})
