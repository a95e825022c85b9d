# ITDO ERP — the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run on PostgreSQL and Redis: the local services unless the environment names others.
TEST_DATABASE_URL ?= postgres://127.0.0.1:5432/itdo_erp
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

# uv: the one on PATH, else a private copy installed with pip into .tools/ (nothing is installed system-wide).
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTHON ?= python3

.PHONY: help uv sync run serve test lint typecheck pytest services services-down migrate seed

help:
	@echo "make run       install uv if missing, sync, migrate, seed demo data and serve at http://$(HOST):$(PORT)"
	@echo "make test      ruff, mypy and pytest with coverage on PostgreSQL and Redis"
	@echo "make services  start PostgreSQL, Redis and Keycloak from compose.yaml (needs Docker)"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

uv: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv,)

sync: uv
	$(UV) sync --frozen

migrate: sync
	$(UV) run python manage.py migrate --no-input

seed: migrate
	$(UV) run python manage.py seed_demo

run: seed
	@echo
	@echo "ITDO ERP is starting at http://$(HOST):$(PORT)/"
	@echo "  site   http://$(HOST):$(PORT)/"
	@echo "  admin  http://$(HOST):$(PORT)/admin/"
	@echo "  API    http://$(HOST):$(PORT)/api/v1/   (docs: http://$(HOST):$(PORT)/docs/, http://$(HOST):$(PORT)/redoc/)"
	@echo "  health http://$(HOST):$(PORT)/health/ready"
	@echo "Sign in with one of the demo logins printed above."
	@echo
	$(UV) run python manage.py runserver $(HOST):$(PORT)

serve: sync
	$(UV) run python manage.py collectstatic --no-input -v0
	$(UV) run gunicorn erp.wsgi --bind $(HOST):$(PORT) --workers $${WEB_CONCURRENCY:-2}

lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: sync
	$(UV) run mypy .

pytest: sync
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(UV) run pytest --create-db --cov --cov-report=term $(PYTEST_ARGS)

test: lint typecheck pytest

services:
	docker compose up -d --wait
	@echo "Then: export DATABASE_URL=postgres://erp:erp@127.0.0.1:5432/erp REDIS_URL=redis://127.0.0.1:6379/0"
	@echo "and, for sign-in through Keycloak: export OIDC_ISSUER=http://localhost:8080/realms/itdo OIDC_RP_CLIENT_ID=itdo-erp \\"
	@echo "  OIDC_RP_CLIENT_SECRET=itdo-erp-dev-secret OIDC_ROLE_MAPPING=\"\$$(cat deploy/keycloak/role-mapping.json)\""

services-down:
	docker compose down
