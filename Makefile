# `make run` and `make test` each set up what they need, idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed
NODE_STAMP := tests/clients/node_modules/.installed
# Options for `trackway serve`: make run ARGS="--port 9000"
ARGS ?=

.PHONY: run test test-fast test-deps lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What running Trackway needs, and no more.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Test files run in 3 processes: most tests wait on servers and subprocesses, so even 2
# cores keep 3 busy (a serial run took 19 min, `-n 3` 6 min). loadfile keeps a module's
# tests, and its module-scoped server, in one process.
PYTEST_PARALLEL ?= -n 3 --dist loadfile

# What the tests, linters and type checks need besides.
$(DEV_STAMP): pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]' -e ./clients/python
	touch $@

# chromium, Node.js and npm, from apt-get when missing.
test-deps:
	@scripts/install-test-deps

$(NODE_STAMP): tests/clients/package.json tests/clients/package-lock.json | test-deps
	cd tests/clients && npm ci --silent --no-audit --no-fund
	touch $@

run: $(RUN_STAMP)
	$(BIN)/trackway serve $(ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check src clients tests $(wildcard bench)
	$(BIN)/ruff format --check src clients tests $(wildcard bench)
	$(BIN)/mypy --strict src
	$(BIN)/mypy --strict clients/python/src

test: test-deps $(DEV_STAMP) $(NODE_STAMP) lint
	$(BIN)/pytest $(PYTEST_PARALLEL)

# The inner loop: no real browser, no crash tests.
test-fast: $(DEV_STAMP) $(NODE_STAMP)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow" -x -q

bench: $(DEV_STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]' -e ./clients/python
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) tests/clients/node_modules
