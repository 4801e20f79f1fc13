# arbsite — two commands do everything: `make run` (the desk) and `make test` (the suite).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
HAS_FRONTEND := $(wildcard frontend/package.json)

.PHONY: run dev test lint typecheck pytest frontend frontend-deps frontend-test e2e bench install services services-test env migrate clean venue

## The desk: install, migrate, build the front end, start web + worker + beat + market data.
run: install env services migrate frontend
	@mkdir -p var
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py ensure_operator
	@echo "arbsite: http://127.0.0.1:$${WEB_PORT:-8000}/  (admin: /admin/, health: /health)"
	$(VENV)/bin/honcho start -f Procfile

## Development: hot reload for Django (runserver/daphne autoreload), Celery (watchfiles) and Vite HMR.
dev: install env services migrate frontend-deps
	@mkdir -p var
	$(PY) manage.py ensure_operator
	$(VENV)/bin/honcho start -f Procfile.dev

## The whole test suite, as CI runs it (.ci/run calls exactly this).
test: install services-test lint typecheck frontend-deps pytest frontend-test e2e

install: $(STAMP)
$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $(STAMP)

env:
	@test -f .env || { cp .env.example .env; \
	  key=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))'); \
	  sed -i "s|^SECRET_KEY=.*|SECRET_KEY=$$key|" .env; \
	  enc=$$($(PY) -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'); \
	  sed -i "s|^CREDENTIALS_ENCRYPTION_KEY=.*|CREDENTIALS_ENCRYPTION_KEY=$$enc|" .env; \
	  echo "wrote .env with a fresh SECRET_KEY and CREDENTIALS_ENCRYPTION_KEY"; }

services:
	@bash scripts/ensure_services.sh

services-test:
	@bash scripts/ensure_services.sh --postgres

migrate:
	$(PY) manage.py migrate --noinput -v 0

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy arbsite exchanges trading twap

pytest: install services-test
	DATABASE_URL=$(TEST_DATABASE_URL) $(VENV)/bin/pytest -q --create-db

## Front-end packages, reinstalled only when package-lock.json changes.
frontend-deps:
ifneq ($(HAS_FRONTEND),)
	@if [ ! -f frontend/node_modules/.package-lock.json ] || [ frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]; then \
	  cd frontend && npm ci --no-audit --no-fund --loglevel=error; fi
endif

frontend: frontend-deps
ifneq ($(HAS_FRONTEND),)
	cd frontend && npm run build
endif

frontend-test: frontend-deps
ifneq ($(HAS_FRONTEND),)
	cd frontend && npm test
endif

e2e:
ifneq ($(wildcard frontend/e2e),)
	bash scripts/e2e.sh
endif

## Benchmarks (never timed unit tests): prints the figures README quotes.
bench: install services
	$(PY) -m tests.bench

## The venue emulator on its own (offline demos): EXCHANGE_VENUE_URL=http://127.0.0.1:8765
venue: install
	$(PY) -m tests.venue --port $${VENUE_PORT:-8765}

clean:
	rm -rf $(VENV) staticfiles frontend/node_modules frontend/dist
