# Two commands on a fresh machine: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev
LINT_PATHS := app.py chalicelib infra simulator tests bench

.PHONY: setup run test lint package bench clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m infra.local

lint: setup
	$(PY) -m ruff check --line-length 120 --target-version py311 $(LINT_PATHS)
	$(PY) -m infra lint

test: setup lint
	$(PY) -m pytest tests -q -p no:cacheprovider --timeout 600

package: setup
	$(PY) -m infra package --stage $(STAGE)

clean:
	rm -rf $(VENV) build .data
