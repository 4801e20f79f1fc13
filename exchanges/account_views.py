"""Settings API for trading keys, key tests, and the account (live, or paper when publicOnly).

No response built here contains a key: status answers say whether keys exist and where
they come from; error messages are scrubbed of the key values before they leave.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbsite.errors import ApiError, NotFound, ValidationFailed
from exchanges import connectivity, credentials
from exchanges.models import AuditAction, AuditRecord
from exchanges.order_books import now_ms
from exchanges.status import supported_exchanges
from exchanges.symbols import Exchange, SymbolError, from_unified
from exchanges.tokens import AUTHENTICATION_CLASSES

logger = logging.getLogger("exchanges.accounts")

MAX_KEY_LENGTH = 512


def _exchange(name: str) -> Exchange:
    if name not in supported_exchanges():
        raise NotFound(f"Unknown exchange {name!r}; expected one of {', '.join(supported_exchanges())}.")
    return Exchange(name)


class KeysSerializer(serializers.Serializer):
    # Field errors never include the submitted value (DRF's CharField messages do not).
    apiKey = serializers.CharField(max_length=MAX_KEY_LENGTH, trim_whitespace=True)
    secret = serializers.CharField(max_length=MAX_KEY_LENGTH, trim_whitespace=True)
    passphrase = serializers.CharField(max_length=MAX_KEY_LENGTH, trim_whitespace=True, required=False,
                                       allow_blank=True)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: "Unknown field." for name in unknown})
        return super().to_internal_value(data)


def key_status(exchange: Exchange) -> dict[str, Any]:
    source = credentials.key_source(exchange)
    return {
        "connected": source.complete,
        "publicOnly": not source.complete,
        "source": source.source,
        "problem": source.problem,
        "needsPassphrase": exchange in credentials.PASSPHRASE_EXCHANGES,
        "lastTest": credentials.last_test_result(exchange),
    }


class ApiKeysView(APIView):
    """`GET` whether each exchange has keys; `PUT` new keys (stored encrypted)."""

    authentication_classes = AUTHENTICATION_CLASSES

    def get(self, request: Request) -> Response:
        return Response({name: key_status(Exchange(name)) for name in supported_exchanges()})

    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict) or not request.data:
            raise ValidationFailed("Expected {exchange: {apiKey, secret[, passphrase]}} for at least one exchange.")
        unknown = sorted(set(request.data) - set(supported_exchanges()))
        if unknown:
            raise ValidationFailed(f"Unknown exchange(s): {', '.join(unknown)}.")
        validated: dict[Exchange, dict[str, str]] = {}
        errors: dict[str, Any] = {}
        for name, body in request.data.items():
            exchange = Exchange(name)
            serializer = KeysSerializer(data=body)
            if not serializer.is_valid():
                errors[name] = serializer.errors
                continue
            values = dict(serializer.validated_data)
            if exchange in credentials.PASSPHRASE_EXCHANGES and not values.get("passphrase"):
                errors[name] = {"passphrase": [f"{name} keys need the passphrase chosen when the key was created."]}
                continue
            validated[exchange] = values
        if errors:
            raise serializers.ValidationError(errors)
        if not credentials.encryption_available():
            raise credentials.EncryptionKeyMissing()
        with transaction.atomic():
            for exchange, values in validated.items():
                credentials.save_credentials(exchange, values["apiKey"], values["secret"],
                                             values.get("passphrase", ""), user=request.user)
                AuditRecord.record(AuditAction.API_KEYS_SAVED, request=request, exchange=exchange.value,
                                   detail={"fields": sorted(values),
                                           "overriddenByEnv": credentials.key_source(exchange).source == "env"})
        logger.info("api keys saved", extra={"event": "api_keys_saved",
                                             "exchange": ",".join(e.value for e in validated)})
        return Response({"success": True})


class ApiKeysDetailView(APIView):
    """`DELETE /api/settings/api/{exchange}`: forget the stored keys (env keys stay; they are config)."""

    authentication_classes = AUTHENTICATION_CLASSES

    def delete(self, request: Request, exchange: str) -> Response:
        ex = _exchange(exchange)
        if not credentials.delete_credentials(ex):
            extra = ""
            if credentials.key_source(ex).source == "env":
                extra = f" Its keys come from the environment ({credentials.env_names(ex)['apiKey']}); unset them there."
            raise NotFound(f"No stored keys for {ex.value}.{extra}")
        AuditRecord.record(AuditAction.API_KEYS_DELETED, request=request, exchange=ex.value)
        logger.info("api keys deleted", extra={"event": "api_keys_deleted", "exchange": ex.value})
        return Response({"success": True})


class TestRequestSerializer(serializers.Serializer):
    exchange = serializers.ChoiceField(choices=[e.value for e in Exchange], required=False)


def _run_test(exchange: Exchange) -> dict[str, Any]:
    """Test one exchange's configured keys; raises PUBLIC_ONLY without keys, the exchange's code when refused."""
    creds = credentials.require_live_credentials(exchange)
    try:
        result = async_to_sync(credentials.test_credentials)(exchange, creds)
    except ApiError as exc:
        message = credentials.scrub(str(exc.detail), creds)
        credentials.remember_test_result(exchange, {"connected": False, "ts": now_ms(),
                                                    "error": {"code": exc.error_code, "message": message}})
        raise type(exc)(message, code=exc.error_code) from None
    result["ts"] = now_ms()
    result["warnings"] = [credentials.scrub(w, creds) for w in result["warnings"]]
    credentials.remember_test_result(exchange, result)
    return result


class ApiKeysTestView(APIView):
    """`POST /api/settings/api/test` `{"exchange": "binance"}` -> `{"connected": true, ...}`; no body: every exchange."""

    authentication_classes = AUTHENTICATION_CLASSES

    def post(self, request: Request) -> Response:
        body = TestRequestSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        name = body.validated_data.get("exchange")
        if name:
            exchange = _exchange(name)
            try:
                result = _run_test(exchange)
            except ApiError as exc:
                AuditRecord.record(AuditAction.API_KEYS_TESTED, request=request, exchange=exchange.value,
                                   detail={"connected": False, "errorCode": exc.error_code})
                raise
            AuditRecord.record(AuditAction.API_KEYS_TESTED, request=request, exchange=exchange.value,
                               detail={"connected": True, "withdrawals": (result["permissions"] or {}).get("withdrawals")})
            return Response(result)
        results: dict[str, Any] = {}
        for ex_name in supported_exchanges():
            exchange = Exchange(ex_name)
            if not credentials.has_trading_keys(exchange):
                results[ex_name] = {"exchange": ex_name, "connected": False, "publicOnly": True}
                continue
            try:
                results[ex_name] = _run_test(exchange)
            except ApiError as exc:
                results[ex_name] = {"exchange": ex_name, "connected": False,
                                    "error": {"code": exc.error_code, "message": str(exc.detail)}}
        AuditRecord.record(AuditAction.API_KEYS_TESTED, request=request,
                           detail={"connected": {k: v["connected"] for k, v in results.items()}})
        tested = [r for r in results.values() if not r.get("publicOnly")]
        return Response({"connected": bool(tested) and all(r["connected"] for r in tested), "exchanges": results})


# --------------------------------------------------------------------------- accounts


def _num(value: Any) -> float:
    if value is None:
        return 0.0
    return float(Decimal(str(value)))


def _contract(unified: str | None) -> dict[str, Any]:
    try:
        symbol, market_type = from_unified(unified or "")
    except SymbolError:
        return {"symbol": unified, "type": None}
    return {"symbol": symbol, "type": market_type.value}


async def live_account(exchange: Exchange, creds: dict[str, str]) -> dict[str, Any]:
    """Balances and open positions as the exchange reports them; position sizes in base units.

    ccxt counts a position in contracts (an OKX BTC-USDT-SWAP contract is 0.01 BTC): `qty` is
    converted with the market's contract size exactly as the venue does (`position_qty`), so the
    account shows what a pair's qty and the paper account mean.
    """
    from exchanges.venues import position_qty

    client = connectivity.async_client(exchange, creds)
    try:
        # The process's shared markets (no request when fresh): positions are sized against them.
        await connectivity.load_markets(client, exchange)
        raw = await connectivity.call(exchange, client.fetch_balance)
        balances = []
        for asset, total in sorted((raw.get("total") or {}).items()):
            free = (raw.get("free") or {}).get(asset)
            if not _num(total) and not _num(free):
                continue
            balances.append({"asset": asset, "free": _num(free), "used": _num((raw.get("used") or {}).get(asset)),
                             "total": _num(total)})
        positions: list[dict[str, Any]] = []
        positions_error = None
        # Every supported exchange has USDT perpetuals; a spot-only key just reports why there are none.
        try:
            for pos in await connectivity.call(exchange, client.fetch_positions):
                qty = position_qty(exchange, pos, client.markets)
                if not qty:
                    continue
                positions.append({**_contract(pos.get("symbol")), "side": pos.get("side"), "qty": _num(qty),
                                  "entryPrice": _num(pos.get("entryPrice")), "markPrice": _num(pos.get("markPrice")),
                                  "unrealizedPnl": _num(pos.get("unrealizedPnl")),
                                  "leverage": _num(pos.get("leverage")), "paper": False})
        except ApiError as exc:  # a spot-only key, a market without a contract size: balances, and why no positions
            positions_error = {"code": exc.error_code, "message": credentials.scrub(str(exc.detail), creds)}
    finally:
        await client.close()
    return {"exchange": exchange.value, "mode": "live", "paper": False, "publicOnly": False,
            "venue": connectivity.venue_label(), "balances": balances, "positions": positions,
            "positionsError": positions_error, "ts": now_ms()}


async def paper_account(exchange: Exchange) -> dict[str, Any]:
    from exchanges.venues import PaperVenue

    venue = PaperVenue(exchange)
    try:
        free = await venue.fetch_balance()
        positions = await venue.fetch_positions()
    finally:
        await venue.close()
    return {
        "exchange": exchange.value, "mode": "paper", "paper": True, "publicOnly": True,
        "venue": connectivity.venue_label(),
        "note": f"Paper account: {exchange.value} has no API keys, so execution is simulated against live "
                "order books. Balances and positions are simulated.",
        "balances": [{"asset": a, "free": _num(v), "used": 0.0, "total": _num(v)} for a, v in sorted(free.items())],
        "positions": [{**{k: (_num(v) if isinstance(v, Decimal) else v) for k, v in p.items()}, "type": "linear"}
                      for p in positions],
        "positionsError": None, "ts": now_ms(),
    }


class AccountView(APIView):
    """`GET /api/account/{exchange}`: live balances and positions with keys; the paper account without."""

    authentication_classes = AUTHENTICATION_CLASSES

    def get(self, request: Request, exchange: str) -> Response:
        ex = _exchange(exchange)
        creds = credentials.credentials_for(ex)
        if creds is None:
            return Response(async_to_sync(paper_account)(ex))
        try:
            return Response(async_to_sync(live_account)(ex, creds))
        except ApiError as exc:
            raise type(exc)(credentials.scrub(str(exc.detail), creds), code=exc.error_code) from None
