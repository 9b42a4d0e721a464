# guestcard — two commands on a fresh machine: `make run` and `make test`.
# Needs only Python >= 3.11 and make; embedded PostgreSQL and Redis come from PyPI wheels.
# Set DATABASE_URL (postgresql+asyncpg://…) and REDIS_URL to use real servers instead.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: install run test test-browser lint typecheck format openapi openapi-check access-doc bench migrate clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): $(BIN)/uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --all-extras
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/guestcard run

test: install
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# the dashboard in Debian's chromium (apt-get install -y chromium), driven by playwright; not part of `make test`
test-browser: install
	$(BIN)/pytest -q -p no:cacheprovider tests_browser $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy shared services

openapi: install
	$(BIN)/guestcard openapi

openapi-check: install
	$(BIN)/guestcard openapi --check

# docs/access.md from the role matrix in services/api/access.py (tests/security/test_role_matrix.py checks both)
access-doc: install
	$(BIN)/python -m services.api.access > docs/access.md

migrate: install
	$(BIN)/guestcard migrate

bench: install
	$(BIN)/python -m bench $(if $(BENCH),--mode $(BENCH),)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
