# runstop: `make run` serves the API locally, `make test` runs every test. Both install first.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
export UV_PYTHON := 3.13
export UV_PYTHON_DOWNLOADS := never
export SAM_CLI_TELEMETRY := 0
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen

.PHONY: help install run test test-client-py310 test-unit test-integration lint fmt typecheck pr build validate schemas openapi sweep invoke bench bench-smoke clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

.local/.uv: ## uv itself, pinned
	@mkdir -p .local
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@touch $@

.venv/.synced: .local/.uv pyproject.toml uv.lock
	@$(UV) sync --frozen >&2
	@touch $@

node_modules/.installed: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error >&2
	@touch $@

install: .venv/.synced node_modules/.installed ## install Python packages (uv.lock) and DynamoDB Local (package-lock.json)

run: install ## serve the API on http://127.0.0.1:3000 against DynamoDB Local (Ctrl-C stops)
	$(RUN) python -m runstop_dev run

test: install ## the whole suite: unit (moto), integration (DynamoDB Local), template lint; the client on 3.10
	$(RUN) pytest
	@$(MAKE) --no-print-directory test-client-py310

# The client package supports Python 3.10+: its unit tests run there too (seconds), with the
# versions uv.lock pins. Skipped with a note when no 3.10 is installed (set PY310=/path/to/python3.10).
PY310 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python) $(shell command -v python3.10 2>/dev/null))
test-client-py310: install ## the client's unit tests on Python 3.10, its oldest
	@if [ -z "$(PY310)" ] || ! "$(PY310)" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then \
		echo "test-client-py310: skipped, no Python 3.10 found (set PY310=/path/to/python3.10)"; exit 0; fi; \
	$(UV) venv -q --allow-existing .local/py310 --python "$(PY310)"; \
	$(UV) export -q --frozen --no-hashes --no-emit-project --no-emit-local -o .local/py310/constraints.txt; \
	$(UV) pip install -q --python .local/py310/bin/python -c .local/py310/constraints.txt -e client pytest; \
	.local/py310/bin/python -m pytest -q -p no:cacheprovider -o addopts= -W ignore::pytest.PytestConfigWarning tests/client

test-unit: install ## only the fast unit tests
	$(RUN) pytest tests/unit

test-integration: install ## only the tests on DynamoDB Local
	$(RUN) pytest tests/integration

lint: install ## ruff and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) mypy --python-version 3.10 -p runstop_client  # the client supports Python 3.10+
	for f in functions/*/app.py; do $(RUN) mypy --strict "$$f"; done

fmt: install ## format and fix what ruff can
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: install
	$(RUN) mypy

pr: fmt lint test ## what a pull request must pass

validate: install ## sam validate --lint (cfn-lint)
	$(RUN) sam validate --lint

build: install ## sam build (needs python3.13 on PATH; pyenv's is picked up by .python-version)
	$(RUN) sam build

schemas: install ## regenerate the JSON Schemas the lean handlers validate with
	$(RUN) python -m runstop_dev schemas

openapi: install ## regenerate openapi.json (the API contract) from the code
	$(RUN) python -m runstop_dev openapi

sweep: install ## run the stale-run sweeper once on the local table (a running `make run`, or DYNAMODB_ENDPOINT)
	@$(RUN) python -m runstop_dev sweep

FN ?= CancelQueueFunction
EVENT ?= events/sqs-cancel-requests.json
invoke: install ## feed a sample event to a function: make invoke FN=CancelEventsFunction EVENT=events/eventbridge-cancel-requested.json
	@$(RUN) python -m runstop_dev invoke $(FN) -e $(EVENT)

bench: install ## every comparison of issue 3, a few minutes: bench/results/REPORT.md + charts (sizes: BENCH_REPEATS=.. etc.)
	$(RUN) python -m bench

bench-smoke: install ## a seconds-long run of `make bench` (its test runs it too), written to .local/bench-smoke
	$(RUN) python -m bench --smoke --out .local/bench-smoke

clean: ## remove local state (virtualenv, DynamoDB Local data, build output)
	rm -rf .venv node_modules .local .aws-sam
