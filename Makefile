# The two commands the README starts with: `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# JavaScript the tests drive as a real client would (the Solana Actions SDK): npm ci from the lock.
JS := tests/js
JS_STAMP := $(JS)/node_modules/.installed
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
# Deno runs JavaScript nodes: the release binary npm publishes (layers/deno/Makefile builds
# the Lambda layer from the arm64 one). Keep DENO_VERSION in step with layers/deno/Makefile.
DENO_VERSION := 2.9.6
DENO_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x64)
DENO := $(TOOLS)/deno/deno
export DENO_PATH ?= $(CURDIR)/$(DENO)
PY313 := PYENV_VERSION=3.13.0 SAM_CLI_TELEMETRY=0
# The IAM policy evaluator tests/test_iam_policies.py runs (npm, pinned by its lock file)
IAM_SIMULATOR := tests/iam/node_modules/.package-lock.json

.PHONY: dev test lint unit integration bench token invoke events docs redrive validate build clean

$(STAMP): pyproject.toml layers/common/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(JS_STAMP): $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

# npm pack fetches the package without installing it (no platform check, no scripts).
$(DENO): Makefile
	rm -rf $(TOOLS)/deno && mkdir -p $(TOOLS)/deno
	cd $(TOOLS)/deno && npm pack --silent --loglevel=error @deno/linux-$(DENO_ARCH)-glibc@$(DENO_VERSION) \
	  && tar xzf deno-linux-$(DENO_ARCH)-glibc-$(DENO_VERSION).tgz package/deno \
	  && mv package/deno deno && rm -rf package *.tgz
	$(DENO) --version

## Set up and run the whole service locally on http://127.0.0.1:3000
## make dev PORT=3001: the API on another port (PORT=0: a free one)
## make dev SOLANA_PORT=0: the local Solana RPC on a free port instead of 8899
## make dev [PARAMS="TriggerQueueEnabled=true ..."]: template parameters, as sam deploy takes them
dev: $(STAMP) $(DENO)
	$(BIN)/python -m flowdeploy.local $(if $(PORT),--port $(PORT)) $(if $(SOLANA_PORT),--solana-port $(SOLANA_PORT)) $(foreach p,$(PARAMS),--parameter $(p))

## Lint, type-check and run every test: the suite on two workers, then the IAM judgement of
## every AWS call they recorded (make test WORKERS=4: more workers)
WORKERS ?= 2
CALLS := .pytest_cache/aws-calls
test: lint $(JS_STAMP) $(DENO) $(IAM_SIMULATOR)
	rm -rf $(CALLS)
	FLOWDEPLOY_CALL_RECORDS=$(CURDIR)/$(CALLS) $(BIN)/python -m pytest -q -n $(WORKERS) -m "not after_everything"
	FLOWDEPLOY_CALL_RECORDS=$(CURDIR)/$(CALLS) $(BIN)/python -m pytest -q -m after_everything

$(IAM_SIMULATOR): tests/iam/package.json tests/iam/package-lock.json
	npm ci --prefix tests/iam --no-audit --no-fund --silent
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP) $(DENO)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP) $(JS_STAMP) $(DENO)
	$(BIN)/python -m pytest -q tests/integration tests/e2e

## Measure cold starts, AWS round trips, engine overhead, load, memory and make dev's memory
## make bench [SECTIONS="cold_start engine ..."]; never part of make test
bench: $(STAMP) $(DENO)
	$(BIN)/python -m bench $(SECTIONS)

## make token USER=<uuid> [HOURS=24]: an access token for the local stack (without USER: for a
## new random user, named on stderr)
token: $(STAMP)
	@$(BIN)/python -m flowdeploy.local.token $(if $(filter command line,$(origin USER)),$(USER)) --hours $(or $(HOURS),24)

## make invoke FUNCTION=StartFunction EVENT=events/start.json [PARAMS="Name=value ..."]
invoke: $(STAMP)
	$(BIN)/python -m flowdeploy.local.invoke $(FUNCTION) $(EVENT) $(foreach p,$(PARAMS),--parameter $(p))

## Re-queue flow runs from the dead-letter queue: make redrive STACK=<stack name> (AWS)
## or make redrive ENDPOINT=<FLOWDEPLOY_AWS_ENDPOINT that make dev prints> (local stack)
redrive: $(STAMP)
	$(BIN)/python -m flowdeploy.local.redrive $(if $(STACK),--stack $(STACK)) $(if $(ENDPOINT),--endpoint $(ENDPOINT))

## Regenerate the commands table of docs/flows.md from the command registry (GET /nodes)
docs: $(STAMP)
	$(BIN)/python -m flowdeploy.local.command_table docs/flows.md

## Regenerate events/ from flowdeploy.local.samples
events: $(STAMP)
	$(BIN)/python -c 'from pathlib import Path; from flowdeploy.local.samples import write_events; [print(p) for p in write_events(Path("events"))]'

$(SAM):
	$(PY313) python3.13 -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet --upgrade pip
	$(TOOLS)/sam/bin/pip install --quiet aws-sam-cli cfn-lint

## sam validate --lint and cfn-lint on template.yaml
validate: $(SAM)
	$(PY313) $(SAM) validate --lint
	$(PY313) $(TOOLS)/sam/bin/cfn-lint template.yaml

## sam build for arm64 python3.13, no container
build: $(SAM)
	$(PY313) PATH="$(CURDIR)/$(TOOLS)/sam/bin:$$PATH" $(SAM) build

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache $(JS)/node_modules tests/iam/node_modules
