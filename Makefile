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

.PHONY: help install checkov checkov-lock smoke run test test-client-py310 test-unit test-integration faults fuzz lint fmt typecheck pr build validate schemas openapi sweep invoke bench bench-smoke bench-trees race-trees clean

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

# checkov pins older versions of packages the project also uses (urllib3, packaging...), so it
# lives in an environment of its own, pinned by tools/checkov/requirements.txt (make checkov-lock).
CHECKOV_ENV := .local/checkov
$(CHECKOV_ENV)/.installed: .local/.uv tools/checkov/requirements.txt
	$(UV) venv --quiet --allow-existing $(CHECKOV_ENV)
	$(UV) pip install --quiet --python $(CHECKOV_ENV)/bin/python -r tools/checkov/requirements.txt
	@touch $@

install: .venv/.synced node_modules/.installed $(CHECKOV_ENV)/.installed ## install Python packages (uv.lock), DynamoDB Local (package-lock.json) and checkov

run: install ## serve the API on http://127.0.0.1:3000 against DynamoDB Local (Ctrl-C stops; RUNSTOP_AUTH=jwt: Bearer tokens)
	$(RUN) python -m runstop_dev run

test: install ## the whole suite: unit (moto), integration (DynamoDB Local, the docs' examples), template lint; the client on 3.10
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

FAULT_RUNS ?= 200
FAULT_CLIENTS ?= 8
FAULT_PROBABILITY ?= 0.25
faults: install ## the fault drill large: every mode x FAULT_RUNS runs x FAULT_CLIENTS clients; prints the per-mode table
	FAULT_RUNS=$(FAULT_RUNS) FAULT_CLIENTS=$(FAULT_CLIENTS) FAULT_PROBABILITY=$(FAULT_PROBABILITY) \
		$(RUN) pytest tests/integration/test_faults.py -q -p no:cacheprovider

FUZZ_EXAMPLES ?= 120
fuzz: install ## schemathesis large (FUZZ_EXAMPLES per operation, pinned seed): cases, 5xx, schema violations
	FUZZ_REPORT=1 FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(RUN) pytest tests/integration/test_fuzz.py -q -p no:cacheprovider

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

validate: install ## sam validate --lint (cfn-lint): template.yaml, and the Cognito issuer of docs/deploying.md
	$(RUN) sam validate --lint
	$(RUN) sam validate --lint --template-file deploy/cognito.yaml

checkov: install ## checkov on template.yaml: every accepted finding is skipped in its resource's Metadata, with the reason
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_ENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact

checkov-lock: .local/.uv ## re-pin checkov's environment after editing tools/checkov/requirements.in
	$(UV) pip compile tools/checkov/requirements.in --universal --python-version 3.13 -o tools/checkov/requirements.txt --no-header --annotation-style line

build: install ## sam build (needs python3.13 on PATH; pyenv's is picked up by .python-version)
	$(RUN) sam build

schemas: install ## regenerate the JSON Schemas the lean handlers validate with
	$(RUN) python -m runstop_dev schemas

openapi: install ## regenerate openapi.json (the API contract) from the code
	$(RUN) python -m runstop_dev openapi

smoke: install ## walk a deployed stack through a run's life: make smoke URL=https://... TOKEN=eyJ...
	$(RUN) python -m runstop_dev.smoke --url "$(URL)" --token "$(TOKEN)"

sweep: install ## run the stale-run sweeper once on the local table (a running `make run`, or DYNAMODB_ENDPOINT)
	@$(RUN) python -m runstop_dev sweep

FN ?= CancelQueueFunction
EVENT ?= events/sqs-cancel-requests.json
invoke: install ## feed a sample event to a function: make invoke FN=CancelEventsFunction EVENT=events/eventbridge-cancel-requested.json
	@$(RUN) python -m runstop_dev invoke $(FN) -e $(EVENT)

bench: install ## every row of bench/README.md, several minutes: bench/results/REPORT.md + charts (one row: ROWS=hot)
	$(RUN) python -m bench $(if $(ROWS),--rows $(ROWS))

bench-smoke: install ## a seconds-long run of `make bench` (its test runs it too), written to .local/bench-smoke
	$(RUN) python -m bench --smoke --out .local/bench-smoke

bench-trees: install ## issue 12's rows alone: cascade time for trees of 10/100/1,000, a filter job over 10,000 among 100,000: bench/results/trees.json
	$(RUN) python -m bench.trees --out bench/results/trees.json

race-trees: install ## the run-tree race at 10,000 trials (make test runs 1,000), plus the key and job races
	RUNSTOP_TREE_TRIALS=10000 RUNSTOP_KEY_ROUNDS=10 $(RUN) pytest -s tests/integration/test_tree_races.py \
		tests/integration/test_concurrency_key_races.py tests/integration/test_cancel_job_races.py

clean: ## remove local state (virtualenv, DynamoDB Local data, build output)
	rm -rf .venv node_modules .local .aws-sam
