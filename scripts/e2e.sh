#!/usr/bin/env bash
# End-to-end browser tests: the full stack (emulator, daphne, market data, Celery) in real
# headless Debian Chromium driven by playwright-core. Screenshots land in frontend/e2e/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian chromium for the browser tests"
  if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo -n apt-get update -qq && sudo -n apt-get install -y -qq chromium >/dev/null; fi
fi

DATA_DIR=${EXCHANGE_DATA_DIR:-$ROOT/../shared/data}
if [[ ! -d "$DATA_DIR" ]]; then
  if [[ "${CI:-}" == "true" ]]; then echo "recorded data missing at $DATA_DIR" >&2; exit 1; fi
  echo "e2e skipped: recorded exchange data not found at $DATA_DIR (set EXCHANGE_DATA_DIR)"; exit 0
fi

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d /tmp/arbsite-e2e.XXXXXX)
VENUE_PORT=$(free_port); WEB_PORT=$(free_port)
export DJANGO_SETTINGS_MODULE=arbsite.settings
export SECRET_KEY=e2e-only-secret DEBUG=false SECURE_COOKIES=false LOG_LEVEL=WARNING
export DATABASE_URL="sqlite:///$WORK/e2e.sqlite3"
export REDIS_URL=redis://127.0.0.1:6379/13 CACHE_KEY_PREFIX=arbsite-e2e CHANNELS_PREFIX=arbsite-e2e:ws
export CELERY_BROKER_URL=redis://127.0.0.1:6379/13
export EXCHANGE_VENUE_URL="http://127.0.0.1:$VENUE_PORT" EXCHANGE_DATA_DIR="$DATA_DIR"
export MARKETDATA_SYMBOLS=binance:spot:BTCUSDT,bybit:linear:BTCUSDT
export OPERATOR_USERNAME=e2e OPERATOR_PASSWORD=e2e-password-123
export BASE_URL="http://127.0.0.1:$WEB_PORT"

redis-cli -n 13 flushdb >/dev/null 2>&1 || true
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

$PY manage.py migrate --noinput -v 0
$PY manage.py ensure_operator >/dev/null
$PY manage.py collectstatic --noinput -v 0
$PY -m tests.venue --port "$VENUE_PORT" --on-end loop >"$WORK/venue.log" 2>&1 & pids+=($!)
$PY -m daphne -b 127.0.0.1 -p "$WEB_PORT" arbsite.asgi:application >"$WORK/web.log" 2>&1 & pids+=($!)
$PY manage.py marketdata >"$WORK/marketdata.log" 2>&1 & pids+=($!)
$ROOT/.venv/bin/celery -A arbsite worker -l warning -Q default,twap,execution -c 2 >"$WORK/worker.log" 2>&1 & pids+=($!)
$ROOT/.venv/bin/celery -A arbsite beat -l warning --schedule "$WORK/beat-schedule" >"$WORK/beat.log" 2>&1 & pids+=($!)

for _ in $(seq 1 150); do curl -fs "$BASE_URL/health" >/dev/null 2>&1 && break; sleep 0.2; done

status=0
(cd frontend && node e2e/run.mjs) || status=$?
if [[ $status -ne 0 ]]; then
  echo "e2e failed; process logs in $WORK"; tail -n 40 "$WORK"/*.log || true
fi
exit $status
