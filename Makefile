# Two commands on a fresh machine: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev
LINT_PATHS := app.py chalicelib infra simulator tests bench frontend/scripts

.PHONY: setup run test lint package bench clean frontend-deps frontend-build frontend-test frontend-lint \
	frontend-types frontend-types-check chromium e2e test-unit test-integration rehearse

# The browser application: installed from its lock file, built into frontend/dist (served by `make run`).
NPM ?= npm
FRONTEND_STAMP := frontend/node_modules/.installed
FRONTEND_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) \
	frontend/index.html frontend/vite.config.ts frontend/tsconfig.json
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

# The embedded AWS endpoint (ministack) runs with its own interpreter: its pins differ from the app's.
ENDPOINT_VENV := $(VENV)/endpoint
ENDPOINT_STAMP := $(ENDPOINT_VENV)/.installed
$(ENDPOINT_STAMP): infra/local/endpoint-requirements.txt
	$(PYTHON) -m venv $(ENDPOINT_VENV)
	$(ENDPOINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/local/endpoint-requirements.txt
	touch $(ENDPOINT_STAMP)

# The deploy rehearsal runs the packaged functions on a bare interpreter (the standard library only: what
# they import comes from the deployment zip), so a dependency the zip lacks fails there as on AWS.
LAMBDA_VENV := $(VENV)/lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
$(LAMBDA_STAMP):
	$(PYTHON) -m venv --without-pip $(LAMBDA_VENV)
	touch $(LAMBDA_STAMP)

setup: $(STAMP) $(ENDPOINT_STAMP) $(LAMBDA_STAMP)

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && $(NPM) ci --no-audit --no-fund
	touch $(FRONTEND_STAMP)

frontend-deps: $(FRONTEND_STAMP)

frontend/dist/index.html: $(FRONTEND_STAMP) $(FRONTEND_SOURCES)
	cd frontend && $(NPM) run build
	touch frontend/dist/index.html

frontend-build: frontend/dist/index.html

frontend-test: $(FRONTEND_STAMP)
	cd frontend && $(NPM) test

frontend-lint: $(FRONTEND_STAMP)
	cd frontend && $(NPM) run lint

# The app's API types come from the backend's own contract: the OpenAPI document the app serves, and
# TypeScript types generated from it, both committed. `make frontend-types` refreshes them after a change
# to a route or a model; `make frontend-types-check` (part of `make lint`) fails when they have drifted.
API_CONTRACT := frontend/src/api/openapi.json
API_TYPES := frontend/src/api/schema.d.ts
EXPORT_CONTRACT := $(PY) frontend/scripts/export_openapi.py
OPENAPI_TS := frontend/node_modules/.bin/openapi-typescript --default-non-nullable false

frontend-types: setup $(FRONTEND_STAMP)
	$(EXPORT_CONTRACT) $(API_CONTRACT)
	$(OPENAPI_TS) $(API_CONTRACT) -o $(API_TYPES)

frontend-types-check: setup $(FRONTEND_STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(EXPORT_CONTRACT) "$$tmp/openapi.json" && \
	$(OPENAPI_TS) "$$tmp/openapi.json" -o "$$tmp/schema.d.ts" >/dev/null 2>&1 && \
	if diff -u $(API_CONTRACT) "$$tmp/openapi.json" && diff -u $(API_TYPES) "$$tmp/schema.d.ts"; then \
		echo "frontend types: $(API_CONTRACT) and $(API_TYPES) match the API's contract"; \
	else \
		echo "frontend types: $(API_CONTRACT) or $(API_TYPES) no longer match the API's contract;" \
			"run 'make frontend-types' and commit both files" >&2; \
		exit 1; \
	fi

# Headless Chromium for the end-to-end tests, from the distribution's packages.
chromium:
	@if [ -x $(CHROMIUM) ]; then echo "chromium: $(CHROMIUM)"; else \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; fi

# The tests by layer (`make test` runs them all, fastest first):
# unit: rules and services through in-memory fakes, no endpoint, no process, spread over the cores (under 30 s);
# integration: against a local AWS endpoint; e2e: the running system over HTTP, WebSocket, browser.
PYTEST := $(PY) -m pytest -q -p no:cacheprovider --timeout 600

test-unit: setup
	$(PYTEST) -n auto tests/unit

test-integration: setup
	$(PYTEST) tests/integration

e2e: setup frontend-build chromium
	$(PYTEST) tests/e2e

run: setup frontend-build
	$(PY) -m infra.local

lint: setup $(FRONTEND_STAMP)
	$(PY) -m ruff check --line-length 120 --target-version py311 $(LINT_PATHS)
	$(PY) -m mypy --ignore-missing-imports --python-version 3.11 app.py chalicelib infra frontend/scripts
	$(PY) -m infra lint
	$(MAKE) --no-print-directory frontend-types-check
	cd frontend && $(NPM) run lint

test: setup lint frontend-test frontend-build chromium
	$(PYTEST) -n auto tests/unit
	$(PYTEST) tests/integration tests/e2e
	$(MAKE) --no-print-directory rehearse

# The deploy rehearsal: `make package`'s template deployed through CloudFormation to a local endpoint that
# enforces IAM, the deploy steps, smoke tests through the deployed URLs, the stack deleted (about a minute).
rehearse: setup
	$(PYTEST) -s tests/rehearsal

package: setup
	$(PY) -m infra package --stage $(STAGE)

# The benchmarks against the local runtime: a table, and JSON in bench/results/ (BENCH_ARGS="--quick": a short run).
bench: setup frontend-build chromium
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .data frontend/dist frontend/node_modules
