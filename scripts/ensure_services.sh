#!/usr/bin/env bash
# Make sure Redis (and, with --postgres, PostgreSQL) answer on localhost; start them if
# they are installed but down, otherwise say exactly how to get them.
set -euo pipefail

want_postgres=false
[[ "${1:-}" == "--postgres" ]] && want_postgres=true

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1 && [[ "${CI:-}" == "true" ]]; then
    as_root apt-get update -qq && as_root apt-get install -y -qq redis-server >/dev/null
  fi
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is down: starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  else
    echo "Redis is not reachable at 127.0.0.1:6379 and redis-server is not installed." >&2
    echo "Install it (Debian/Ubuntu: sudo apt-get install redis-server) or set REDIS_URL to a running Redis." >&2
    exit 1
  fi
fi
redis_up || { echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1; }

if $want_postgres && ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 && [[ "${CI:-}" == "true" ]]; then
    as_root apt-get update -qq && as_root apt-get install -y -qq postgresql >/dev/null
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    echo "PostgreSQL is down: starting it"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    for _ in $(seq 1 100); do pg_up && break; sleep 0.1; done
  fi
  pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432 (sudo apt-get install postgresql)" >&2; exit 1; }
fi
exit 0
