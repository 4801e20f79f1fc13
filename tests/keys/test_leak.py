"""The keys never come back out: not from any endpoint, websocket frame, log line, admin page,
database row, Redis value or front-end build.

Distinctive canary keys are planted through the environment (Binance, pointed at the MOCK
Binance of conftest so the key test really signs with them) and through the Settings API
(Bybit, OKX with a passphrase, Bitget). Then every URL in the URL conf is requested, the
known POST endpoints are exercised (including bodies that fail validation), the admin
pages for the key models are opened, a websocket session collects every event, and all
loggers run at DEBUG (ccxt's request lines carry the auth headers at that level).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.core import serializers
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from arbsite import events
from arbsite.asgi import application  # imported here: it re-runs django.setup(), which reconfigures logging
from arbsite.redis_client import get_redis, key
from tests.keys.conftest import BinanceSignatureStub

MARK = "LEAKCANARY"
ENV_KEY = "LEAKCANARY-KEY-7f3a9c21e4b8d605-env"
ENV_SECRET = "LEAKCANARY-SECRET-c0ffee4b1d2e3f40-env"
PUT_KEYS = {
    "bybit": {"apiKey": "LEAKCANARY-KEY-7f3a5e6d7c8b9a01-put", "secret": "LEAKCANARY-SECRET-b7a6c5d4e3f20111-put"},
    "okx": {"apiKey": "LEAKCANARY-KEY-7f3a0a1b2c3d4e5f-okx", "secret": "LEAKCANARY-SECRET-0f1e2d3c4b5a6978-okx",
            "passphrase": "LEAKCANARY-PASS-55aa55aa-okx"},
    "bitget": {"apiKey": "LEAKCANARY-KEY-7f3a99887766554-bg", "secret": "LEAKCANARY-SECRET-4433221100ffeedd-bg",
               "passphrase": "LEAKCANARY-PASS-66bb66bb-bg"},
}
CANARIES = [ENV_KEY, ENV_SECRET] + [v for keys in PUT_KEYS.values() for v in keys.values()]
ORIGIN = (b"origin", b"http://testserver")
SAMPLES = {"exchange": "binance", "name": "binance", "symbol": "BTCUSDT", "pair_id": "leak_pair",
           "pairId": "leak_pair", "plan_id": "twap_001", "planId": "twap_001"}


def assert_clean(where: str, text: str) -> None:
    assert MARK not in text, f"a planted key leaked into {where}: ...{_around(text)}..."
    for canary in CANARIES:
        assert canary not in text, where


def _around(text: str) -> str:
    at = text.find(MARK)
    return text[max(0, at - 120): at + 60]


# -- the URL conf --------------------------------------------------------------------------


def _sample(converter: str | None, name: str, ids: dict[str, Any]) -> str:
    if name in ids:
        return str(ids[name])
    if converter == "int":
        return "1"
    return SAMPLES.get(name, "sample")


def concrete_paths(ids: dict[str, Any]) -> list[str]:
    """Every route in the URL conf with sample values in its parameters (admin is visited separately)."""
    out: list[str] = []

    def fill(pattern: Any) -> str:
        text = str(pattern)
        if isinstance(pattern, RoutePattern):
            return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: _sample(m.group(1), m.group(2), ids), text)
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: _sample(None, m.group(1), ids), text)
        text = text.replace(".*", "sample").replace("/?", "/").replace("?", "")
        return re.sub(r"[\^$]", "", text).replace("(!static/|admin/|ws/)", "")

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            part = fill(p.pattern)
            if isinstance(p, URLResolver):
                if part.startswith("admin"):
                    continue
                walk(p.url_patterns, prefix + part)
            elif isinstance(p, URLPattern):
                out.append("/" + prefix + part)

    walk(get_resolver().url_patterns, "")
    return sorted(set(out))


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch, binance_stub: BinanceSignatureStub, encryption_key: str) -> None:
    binance_stub.api_key, binance_stub.secret = ENV_KEY, ENV_SECRET
    monkeypatch.setenv("BINANCE_API_KEY", ENV_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", ENV_SECRET)


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root-admin", "root@example.com", "a long admin password")


@pytest.fixture
def browser(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[dict[str, Any]]:
    """Every logger at DEBUG; the console handler's real output captured as well as caplog's records."""
    names = set(logging.root.manager.loggerDict) | {"ccxt", "ccxt.base.exchange", "django.request", "daphne"}
    caplog.set_level(logging.DEBUG)
    for name in names:
        caplog.set_level(logging.DEBUG, logger=name)
    console = [h for h in logging.root.handlers
               if type(h) is logging.StreamHandler and any(type(f).__name__ == "RedactSecretsFilter"
                                                          for f in h.filters)]
    buffer = io.StringIO()
    previous = [h.setStream(buffer) for h in console]
    yield {"caplog": caplog, "console": buffer, "console_handlers": console}
    for handler, stream in zip(console, previous, strict=True):
        if stream is not None:
            handler.setStream(stream)


def logged_text(logs: dict[str, Any]) -> str:
    parts = [logs["console"].getvalue()]
    for record in logs["caplog"].records:
        parts.append(record.getMessage())
        parts.append(record.exc_text or "")
        parts.append(repr({k: v for k, v in record.__dict__.items() if k not in ("msg", "args", "exc_info")}))
    return "\n".join(parts)


# -- the sweep -----------------------------------------------------------------------------


def exercise_everything(browser: Client, responses: list[tuple[str, str]]) -> None:
    def keep(label: str, response: Any) -> Any:
        body = response.content.decode(errors="replace") if not getattr(response, "streaming", False) else ""
        responses.append((f"{label} -> {response.status_code}", body + "\n" + str(dict(response.items()))))
        return response

    saved = keep("PUT keys", browser.put("/api/settings/api", json.dumps(PUT_KEYS), content_type="application/json"))
    assert saved.status_code == 200, saved.content
    # Bodies that fail validation must not echo the values either.
    for bad in ({"okx": {"apiKey": ENV_KEY, "secret": ENV_SECRET}},
                {"binance": {"apiKey": ENV_KEY * 20, "secret": ENV_SECRET}},
                {"binance": {"apiKey": ENV_KEY, "secret": ENV_SECRET, "extra": ENV_SECRET}},
                {"kraken": {"apiKey": ENV_KEY, "secret": ENV_SECRET}},
                [ENV_KEY, ENV_SECRET]):
        response = keep("PUT bad keys", browser.put("/api/settings/api", json.dumps(bad),
                                                    content_type="application/json"))
        assert response.status_code == 400
    tested = keep("test binance", browser.post("/api/settings/api/test", {"exchange": "binance"},
                                               content_type="application/json"))
    assert tested.status_code == 200 and tested.json()["data"]["connected"] is True, tested.content
    for exchange in ("bybit", "okx", "bitget"):  # the MOCK serves Binance only: these fail upstream
        keep(f"test {exchange}", browser.post("/api/settings/api/test", {"exchange": exchange},
                                              content_type="application/json"))
    keep("test all", browser.post("/api/settings/api/test", {}, content_type="application/json"))
    token = keep("token", browser.post("/api/auth/tokens", {"name": "leak"}, content_type="application/json"))
    token_id = token.json()["data"]["id"]
    keep("prices batch", browser.post("/api/prices/batch", {"items": [{"exchange": "binance", "symbol": "BTCUSDT"}]},
                                      content_type="application/json"))
    pair = {"leg1": {"exchange": "bybit", "symbol": "BTCUSDT", "type": "linear"},
            "leg2": {"exchange": "binance", "symbol": "BTCUSDT", "type": "spot"},
            "threshold": 0.1, "qty": 0.001, "totalAmount": 200, "direction": "auto", "enabled": True}
    created = keep("pair", browser.post("/api/monitoring/pairs", pair, content_type="application/json"))
    pair_id = created.json().get("data", {}).get("id", "leak_pair") if created.status_code < 300 else "leak_pair"
    keep("execute", browser.post(f"/api/arbitrage/execute/{pair_id}", {}, content_type="application/json"))

    ids = {"token_id": token_id, "pair_id": pair_id}
    for path in concrete_paths(ids):
        keep(f"GET {path}", browser.get(path))
        keep(f"OPTIONS {path}", browser.options(path))
    for exchange in ("binance", "bybit", "okx", "bitget"):
        keep(f"account {exchange}", browser.get(f"/api/account/{exchange}"))

    for model in ("exchangecredential", "operatortoken", "auditrecord"):
        keep(f"admin {model}", browser.get(f"/admin/exchanges/{model}/"))
        from django.apps import apps

        for obj in apps.get_model("exchanges", model).objects.all()[:20]:
            for page in ("change", "delete", "history"):
                response = keep(f"admin {model} {page}", browser.get(f"/admin/exchanges/{model}/{obj.pk}/{page}/"))
                assert response.status_code in (200, 302, 403), (model, page, response.status_code)
    admin_list = browser.get("/admin/exchanges/exchangecredential/").content.decode()
    assert "••••" in admin_list  # masked, not absent
    keep("admin index", browser.get("/admin/"))
    keep("delete keys", browser.delete("/api/settings/api/bitget"))


def stored_text() -> str:
    """Every database row (as Django serialises it) and every Redis value in our namespace."""
    from django.apps import apps

    parts = []
    for model in apps.get_models():
        parts.append(serializers.serialize("json", model._default_manager.all()))
    redis = get_redis()
    for k in redis.scan_iter(match=key("*"), count=500):
        kind = redis.type(k)
        if kind == b"string":
            parts.append(repr(redis.get(k)))
        elif kind == b"hash":
            parts.append(repr(redis.hgetall(k)))
        elif kind in (b"list",):
            parts.append(repr(redis.lrange(k, 0, -1)))
        parts.append(repr(k))
    return "\n".join(parts)


@pytest.mark.django_db(transaction=True)
async def test_planted_keys_never_come_back_out(planted: None, browser: Client, all_logs: dict[str, Any],
                                               settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    layers = copy.deepcopy(django_settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = f"arbsite-test-leak-{uuid.uuid4().hex[:10]}"
    # redis-py 8 reads with a 5 s socket timeout, the same as channels_redis's BZPOPMIN wait: a
    # socket idle for 5 s (this sweep) dies with TimeoutError. Reported; the fix belongs in settings.
    layers["default"]["CONFIG"]["hosts"] = [{"address": django_settings.REDIS_URL, "socket_timeout": 30}]
    settings.CHANNEL_LAYERS = layers
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={browser.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    ws = WebsocketCommunicator(application, "/ws/", headers=[ORIGIN, (b"cookie", cookie.encode())])
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to({"action": "subscribe", "exchanges": ["*"], "symbols": ["*"], "pairs": ["*"],
                           "plans": ["*"]})
    frames = [await ws.receive_from(timeout=5)]

    responses: list[tuple[str, str]] = []
    await sync_to_async(exercise_everything)(browser, responses)

    marker = {"severity": "info", "code": "LEAK_TEST_END", "message": "end of the leak test", "ts": events.now_ms()}
    assert await events.apublish("engine_alert", marker)
    while True:
        frame = await ws.receive_from(timeout=10)
        frames.append(frame)
        if "LEAK_TEST_END" in frame:
            break
    await ws.disconnect()

    assert len(responses) > 40  # the sweep really ran
    for label, body in responses:
        assert_clean(label, body)
    for frame in frames:
        assert_clean("a websocket frame", frame)
    logs = logged_text(all_logs)
    assert "X-MBX-APIKEY" in logs  # ccxt's signed request lines were logged (and masked)
    assert_clean("the logs", logs)
    assert_clean("the database or Redis", await sync_to_async(stored_text)())


# -- the front-end bundle --------------------------------------------------------------------


FRONTEND = Path(django_settings.BASE_DIR) / "frontend"


def scan_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert_clean(str(path), path.read_bytes().decode(errors="replace"))


def test_the_front_end_build_carries_no_keys(tmp_path: Path) -> None:
    """Build the bundle with canary keys in the environment (also as VITE_ variables) and scan it."""
    if not (FRONTEND / "node_modules").is_dir() or shutil.which("npx") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("frontend/node_modules missing: the bundle cannot be built and scanned")
        pytest.skip("frontend/node_modules missing; run `make frontend` to build and scan the bundle")
    env = {**os.environ, "BINANCE_API_KEY": ENV_KEY, "BINANCE_API_SECRET": ENV_SECRET,
           "VITE_BINANCE_API_KEY": ENV_KEY, "VITE_BINANCE_API_SECRET": ENV_SECRET}
    out = tmp_path / "dist"
    result = subprocess.run(["npx", "vite", "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "error"],
                            cwd=FRONTEND, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert any(out.rglob("*.js"))
    scan_tree(out)
    if (FRONTEND / "dist").is_dir():
        scan_tree(FRONTEND / "dist")


def test_the_front_end_source_reads_no_key_variables() -> None:
    """Nothing in the front end asks the build for a key (Vite embeds what `import.meta.env` names)."""
    pattern = re.compile(r"import\.meta\.env\.(\w+)")
    for path in (FRONTEND / "src").rglob("*.ts*"):
        for name in pattern.findall(path.read_text(errors="replace")):
            assert not re.search(r"KEY|SECRET|PASS|TOKEN", name, re.I), f"{path} reads {name}"


def test_canaries_are_distinctive() -> None:
    assert all(c.startswith(MARK) for c in CANARIES) and len(set(CANARIES)) == len(CANARIES)
