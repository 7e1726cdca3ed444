# `make run` and `make test` each set up what they need, idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/clients/node_modules/.installed

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./clients/python
	touch $@

$(NODE_STAMP): tests/clients/package.json tests/clients/package-lock.json
	cd tests/clients && npm ci --silent --no-audit --no-fund
	touch $@

run: $(STAMP)
	$(BIN)/trackway serve

lint: $(STAMP)
	$(BIN)/ruff check src clients tests $(wildcard bench)
	$(BIN)/ruff format --check src clients tests $(wildcard bench)
	$(BIN)/mypy --strict src
	$(BIN)/mypy --strict clients/python/src

test: $(STAMP) $(NODE_STAMP) lint
	$(BIN)/pytest

# The inner loop: no real browser, no crash tests.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" -x -q

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]' -e ./clients/python
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) tests/clients/node_modules
