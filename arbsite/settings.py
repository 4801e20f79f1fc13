"""Django settings, read from the environment (see .env.example for every variable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    # `make run` writes a random one into .env; never fall back to a guessable key.
    raise environ.ImproperlyConfigured("SECRET_KEY is not set (make run writes one into .env)")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    "arbsite",
    "exchanges",
    "trading",
    "twap",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "arbsite.static_files.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "arbsite.logging.RequestLogMiddleware",
]

ROOT_URLCONF = "arbsite.urls"
ASGI_APPLICATION = "arbsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite for a single machine; Postgres (or anything django-environ parses) when set.
# An empty DATABASE_URL (as .env.example ships it) means unset.
DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, workers, beat and market data share one file: wait for locks, write-ahead log.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL"}
    )
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="arbsite"),
        "TIMEOUT": 300,
    }
}

CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # channels_redis blocks up to 5 s on reads; the socket must wait longer than that.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": env.str("CHANNELS_PREFIX", default="arbsite:ws"),
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.exists() else []

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Encrypts exchange keys saved through the Settings API (AES-256-GCM). Comma-separated for
# rotation: the first encrypts, all decrypt. Without it the API refuses to store keys.
CREDENTIALS_ENCRYPTION_KEY = env.str("CREDENTIALS_ENCRYPTION_KEY", default="")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token auth first, so unauthenticated requests get 401 (with WWW-Authenticate), not 403.
        "exchanges.authentication.OperatorTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["arbsite.renderers.EnvelopeRenderer"],
    "EXCEPTION_HANDLER": "arbsite.errors.envelope_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Celery: configured from Django settings with the CELERY_ namespace, JSON only.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ROUTES = {
    "trading.execute_arbitrage": {"queue": "execution"},
    "trading.recover_stale_executions": {"queue": "execution"},
    "twap.*": {"queue": "twap"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "recover-stale-executions": {"task": "trading.recover_stale_executions", "schedule": 30.0},
    # Risk: daily usage resets at UTC midnight; breakers half-open after their cool-down.
    "risk-daily-reset": {"task": "trading.risk_daily_reset", "schedule": crontab(minute=0, hour=0)},
    "risk-breakers": {"task": "trading.risk_half_open_breakers", "schedule": 15.0},
    "risk-reservations": {"task": "trading.risk_expire_reservations", "schedule": 60.0},
    # Performance monitor: SPEC acceptance figures over the last PERF_WINDOW_SECONDS.
    "performance-monitor": {"task": "arbsite.check_performance", "schedule": 30.0, "options": {"expires": 25}},
    # TWAP slices are due rows in the database; beat claims and dispatches them.
    "twap-dispatch": {"task": "twap.dispatch_due_slices", "schedule": 1.0},
    # Safety net for event-driven detection, and the REST fallback when a stream is stale.
    "poll-pairs": {"task": "trading.poll_pairs", "schedule": env.float("POLL_PAIRS_SECONDS", default=2.0)},
}

# Exchanges and market data.
SUPPORTED_EXCHANGES = ("binance", "bybit", "okx", "bitget")
# Points every emulated exchange's REST and websocket URLs at the local venue emulator.
# Tests and offline demos only: the API and UI label data from it as "emulator".
EXCHANGE_VENUE_URL = env.str("EXCHANGE_VENUE_URL", default="")
EXCHANGE_TIMEOUT_MS = env.int("EXCHANGE_TIMEOUT_MS", default=10000)
# Cached order books are served while younger than this (seconds, 0.5-2).
PRICE_CACHE_TTL = env.float("PRICE_CACHE_TTL", default=1.0)
if not 0.5 <= PRICE_CACHE_TTL <= 2.0:
    raise environ.ImproperlyConfigured("PRICE_CACHE_TTL must be between 0.5 and 2 seconds")
ORDER_BOOK_DEPTH = env.int("ORDER_BOOK_DEPTH", default=20)
# Symbols the market-data process watches besides those used by pairs and plans.
MARKETDATA_SYMBOLS = env.list(
    "MARKETDATA_SYMBOLS",
    default=["binance:spot:BTCUSDT", "bybit:linear:BTCUSDT", "binance:spot:ETHUSDT", "bybit:linear:ETHUSDT"],
)
MARKETDATA_STALE_SECONDS = env.float("MARKETDATA_STALE_SECONDS", default=10.0)
PRICE_UPDATE_MIN_INTERVAL_MS = env.int("PRICE_UPDATE_MIN_INTERVAL_MS", default=100)

# Risk limits: these seed the first global limits row; after that the database (API, admin) is authoritative.
RISK_MAX_SLIPPAGE_PERCENT = env.float("RISK_MAX_SLIPPAGE_PERCENT", default=0.5)
RISK_MAX_PRICE_DEVIATION_PERCENT = env.float("RISK_MAX_PRICE_DEVIATION_PERCENT", default=2.0)
RISK_ABNORMAL_MOVE_PERCENT = env.float("RISK_ABNORMAL_MOVE_PERCENT", default=3.0)
RISK_ABNORMAL_MOVE_WINDOW_SECONDS = env.float("RISK_ABNORMAL_MOVE_WINDOW_SECONDS", default=10.0)
RISK_MAX_ORDER_NOTIONAL = env.float("RISK_MAX_ORDER_NOTIONAL", default=5000.0)
RISK_MAX_POSITION_NOTIONAL_PER_VENUE = env.float("RISK_MAX_POSITION_NOTIONAL_PER_VENUE", default=20000.0)
RISK_MAX_NET_POSITION_NOTIONAL = env.float("RISK_MAX_NET_POSITION_NOTIONAL", default=5000.0)
RISK_MAX_DAILY_NOTIONAL = env.float("RISK_MAX_DAILY_NOTIONAL", default=100000.0)
RISK_MAX_DAILY_LOSS = env.float("RISK_MAX_DAILY_LOSS", default=500.0)
RISK_PNL_WINDOW_MINUTES = env.int("RISK_PNL_WINDOW_MINUTES", default=60)
RISK_PNL_WINDOW_FLOOR = env.float("RISK_PNL_WINDOW_FLOOR", default=-200.0)
RISK_BREAKER_CONSECUTIVE_FAILURES = env.int("RISK_BREAKER_CONSECUTIVE_FAILURES", default=5)
RISK_BREAKER_ERROR_RATE_PERCENT = env.float("RISK_BREAKER_ERROR_RATE_PERCENT", default=50.0)
RISK_BREAKER_WINDOW_SECONDS = env.int("RISK_BREAKER_WINDOW_SECONDS", default=300)
RISK_BREAKER_COOLDOWN_SECONDS = env.int("RISK_BREAKER_COOLDOWN_SECONDS", default=300)
RISK_BAN_SECONDS = env.int("RISK_BAN_SECONDS", default=600)
# Alerts also go to a webhook (generic JSON POST) and/or Telegram when configured; failures never block trading.
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_MIN_SEVERITY = env.str("ALERT_WEBHOOK_MIN_SEVERITY", default="error")
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_CHAT_ID = env.str("TELEGRAM_CHAT_ID", default="")

# TWAP: slice claim lease (above CELERY_TASK_TIME_LIMIT), retry pacing, and when refusals pause a plan.
TWAP_SLICE_LEASE_SECONDS = env.int("TWAP_SLICE_LEASE_SECONDS", default=150)
TWAP_DISPATCH_TIMEOUT_SECONDS = env.int("TWAP_DISPATCH_TIMEOUT_SECONDS", default=30)
TWAP_RETRY_SECONDS = env.float("TWAP_RETRY_SECONDS", default=2.0)
TWAP_MAX_DEFERRALS = env.int("TWAP_MAX_DEFERRALS", default=10)
TWAP_MIN_INTERVAL_MS = env.int("TWAP_MIN_INTERVAL_MS", default=1000)
TWAP_MAX_SLICES = env.int("TWAP_MAX_SLICES", default=1000)

# Performance monitor thresholds (SPEC section 9); one engine_alert per breach episode.
PERF_WINDOW_SECONDS = env.int("PERF_WINDOW_SECONDS", default=300)
PERF_API_P95_MS = env.float("PERF_API_P95_MS", default=200.0)
PERF_DETECTION_P99_MS = env.float("PERF_DETECTION_P99_MS", default=100.0)
PERF_WS_EVENT_P99_MS = env.float("PERF_WS_EVENT_P99_MS", default=100.0)
PERF_MAX_ERROR_RATE_PERCENT = env.float("PERF_MAX_ERROR_RATE_PERCENT", default=1.0)
PERF_MIN_SUCCESS_RATE_PERCENT = env.float("PERF_MIN_SUCCESS_RATE_PERCENT", default=99.0)
PERF_MIN_CACHE_HIT_PERCENT = env.float("PERF_MIN_CACHE_HIT_PERCENT", default=80.0)

# Detection: re-announce a persisting opportunity at most this often; what counts as a material change.
DETECTION_REEMIT_SECONDS = env.float("DETECTION_REEMIT_SECONDS", default=30.0)
DETECTION_MATERIAL_CHANGE_PP = env.str("DETECTION_MATERIAL_CHANGE_PP", default="0.02")
DETECTION_MATERIAL_CHANGE_RATIO = env.str("DETECTION_MATERIAL_CHANGE_RATIO", default="0.25")

# Execution and the paper venue (used for every exchange without trading keys).
PAPER_LATENCY_MS = env.int("PAPER_LATENCY_MS", default=20)
PAPER_STARTING_FUNDS = env.json("PAPER_STARTING_FUNDS", default={"USDT": "100000", "BTC": "1", "ETH": "10"})
EXECUTION_LEG_TIMEOUT_SECONDS = env.float("EXECUTION_LEG_TIMEOUT_SECONDS", default=8.0)
EXECUTION_SLIPPAGE_PERCENT = env.float("EXECUTION_SLIPPAGE_PERCENT", default=0.1)
LEG_RISK_COMPLETE_ATTEMPTS = env.int("LEG_RISK_COMPLETE_ATTEMPTS", default=2)
LEG_RISK_FLATTEN_ATTEMPTS = env.int("LEG_RISK_FLATTEN_ATTEMPTS", default=3)
LEG_RISK_FLATTEN_SLIPPAGE_PERCENT = env.float("LEG_RISK_FLATTEN_SLIPPAGE_PERCENT", default=1.0)
LEG_RISK_MAX_SECONDS = env.float("LEG_RISK_MAX_SECONDS", default=30.0)
# Must stay above CELERY_TASK_TIME_LIMIT so a live worker never loses its claim.
EXECUTION_LEASE_SECONDS = env.int("EXECUTION_LEASE_SECONDS", default=180)
# Lookups of an order whose answer was lost before the execution waits for its lease (never guesses).
EXECUTION_RECONCILE_ATTEMPTS = env.int("EXECUTION_RECONCILE_ATTEMPTS", default=3)
# Kept venues (exchanges/sessions.py): how old a balance reading may be for the risk gate (every
# order voids it anyway), the pause before re-reading after an order, how long a replaced venue
# lives on for a runner still using it, and how early markets are reloaded before their max age.
RISK_BALANCE_MAX_AGE_SECONDS = env.float("RISK_BALANCE_MAX_AGE_SECONDS", default=10.0)
BALANCE_REFRESH_DELAY_SECONDS = env.float("BALANCE_REFRESH_DELAY_SECONDS", default=0.2)
VENUE_RETIRE_SECONDS = env.float("VENUE_RETIRE_SECONDS", default=60.0)
MARKETS_REFRESH_AHEAD_SECONDS = env.float("MARKETS_REFRESH_AHEAD_SECONDS", default=300.0)

# Websocket: how long a publish may wait on Redis, subscriptions per connection, latency sampling.
WS_PUBLISH_TIMEOUT = env.float("WS_PUBLISH_TIMEOUT", default=0.5)
WS_MAX_SUBSCRIPTIONS = env.int("WS_MAX_SUBSCRIPTIONS", default=200)
WS_LATENCY_SAMPLE_EVERY = env.int("WS_LATENCY_SAMPLE_EVERY", default=10)
# `/ws?token=` lookups, tried in order (operator tokens, then DRF tokens).
WS_TOKEN_LOOKUPS = ["exchanges.tokens.operator_token_user", "arbsite.ws_auth.drf_token_user"]

# Recorded exchange payloads (tests, emulator, benchmarks). Never copied into the repo.
_default_data = BASE_DIR.parent / "shared" / "data"
EXCHANGE_DATA_DIR = Path(env.str("EXCHANGE_DATA_DIR", default=str(_default_data)))
if not EXCHANGE_DATA_DIR.is_absolute():
    EXCHANGE_DATA_DIR = (BASE_DIR / EXCHANGE_DATA_DIR).resolve()

OPERATOR_USERNAME = env.str("OPERATOR_USERNAME", default="operator")
OPERATOR_PASSWORD = env.str("OPERATOR_PASSWORD", default="")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "arbsite.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"redact": {"()": "arbsite.logging.RedactSecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Request lines come from our own middleware (errors and slow requests only).
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        "ccxt": {"level": "WARNING"},
        "arbsite.perf": {"level": "INFO"},
    },
}
