# qbsync developer commands. Everything installs itself: a fresh machine needs only Python 3.11+, make and git.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .sam-venv
STAMP := $(VENV)/.installed-stamp
SAM_STAMP := $(SAM_VENV)/.installed-stamp
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
PYTEST_ARGS ?=

.PHONY: help install run test lint typecheck cfn-lint sam-validate unit acceptance invoke bench format clean deploy-check browser

help:
	@echo "make run        start the local stack (API on http://127.0.0.1:$${QBSYNC_PORT:-8000})"
	@echo "make test       install, lint and run the whole test suite"
	@echo "make invoke FN=<function> EVENT=events/<file>.json   run one Lambda handler in-process"
	@echo "make lint       ruff, mypy (shared/qbsync), cfn-lint, sam validate --lint"
	@echo "make acceptance the full-volume acceptance runs (minutes each)"
	@echo "make deploy-check  sam build, sam validate --lint, cfn-lint, IAM test, artifact sizes + import smoke"
	@echo "make bench      benchmarks: markdown table + bench-results.json (minutes; ARGS=--quick for seconds)"
	@echo "make format     ruff format + autofix"
	@echo "make browser    install Chromium for the admin console browser tests (Debian/Ubuntu, as root)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The SAM CLI pins its own boto3, so it lives in a virtualenv of its own.
$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'aws-sam-cli>=1.120'
	@touch $(SAM_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m infra.local_stack $(ARGS)

invoke: $(STAMP)
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>.json"; exit 2; }
	$(BIN)/python -m infra.invoke $(FN) $(EVENT)

lint: $(STAMP) $(SAM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/qbsync
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy shared/qbsync

test: lint browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The admin console's browser tests drive the system Chromium through Playwright (its own browser download is never
# used). As root on Debian/Ubuntu this installs the distribution's chromium package; elsewhere it says how, and the
# browser tests skip (QBSYNC_REQUIRE_BROWSER=1, set by .ci/run, turns that skip into a failure).
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "browser: $$($(CHROMIUM) --version 2>/dev/null | tail -1)"; \
	elif command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = "0" ] || sudo -n true 2>/dev/null; }; then \
	  as_root=$$([ "$$(id -u)" = "0" ] || echo "sudo -n"); \
	  { $$as_root apt-get update -qq && $$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	    || echo "browser: installing chromium failed; the console browser tests will skip"; \
	else \
	  echo "browser: no Chromium at $(CHROMIUM); the console browser tests will skip (install: sudo apt-get install chromium)"; \
	fi

acceptance: $(STAMP)  ## the full-volume acceptance runs (minutes each), outside the default suite
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'python-quickbooks==0.9.12'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## protocol efficiency and cost per record (minutes), outside the pass/fail suite
	$(BIN)/python -m tests.benchmarks --out bench-results.json $(ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# What a deployment needs short of an AWS account: the Lambda artifacts build (makefile builds: arm64 CPython 3.12
# wheels fetched by this machine's pip, no Docker, no local python3.12), the template validates and lints, IAM
# stays least-privilege, and the artifacts are sized, checked and import-smoke-tested (infra/artifacts.py).
deploy-check: $(STAMP) $(SAM_STAMP)
	PYTHON=$(CURDIR)/$(BIN)/python $(SAM_VENV)/bin/sam build --parallel
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml --config-file samconfig.example.toml
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m pytest tests/unit/test_iam.py tests/unit/test_deploy.py tests/e2e/test_deploy_guide.py -q
	$(BIN)/python -m infra.artifacts --smoke

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
