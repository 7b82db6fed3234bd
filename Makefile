# One entry point for people and CI. `make test` sets everything up from nothing (a venv with the
# pinned Python packages, Azurite from npm) and runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup test lint bench bench-quick package demo verify preflight diagram readme-diagram clean

$(PY_STAMP): requirements.txt requirements-dev.txt function_src/requirements.txt
	@echo "setup: installing the pinned Python packages into $(VENV) (first time: about 2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	@echo "setup: installing Azurite from npm into node_modules (first time: about 30 s)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(PY_STAMP) $(NODE_STAMP)

lint: $(PY_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# conftest.py prints each tier's name as it starts and a line per tier (tests, seconds) at the end.
test: setup lint
	@echo "test: every tier (about 7 minutes on 2 cores; \`make demo\` is the 30-second tour)"
	$(PY) -m bench --quick
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

# Every bench's code path with a few repetitions (`make test` runs it, so CI does).
bench-quick: setup
	$(PY) -m bench --quick

package: $(PY_STAMP)
	$(PY) -m shipping.build
	$(PY) -m shipping.lambda_build

demo: setup
	$(PY) -m localcloud.demo

# After `pulumi up`: VERIFY_ARGS="--stack dev" (or "--outputs outputs.json").
verify: $(PY_STAMP)
	$(PY) -m verify $(VERIFY_ARGS)

# Before the first `pulumi up`, read-only, with your own sign-in:
# PREFLIGHT_ARGS="--subscription <id> --stack dev" (or "--location westeurope").
preflight: $(PY_STAMP)
	$(PY) -m preflight $(PREFLIGHT_ARGS)

# The trust chain your stack's config would deploy, drawn from the program under mocks (no cloud):
# `make diagram` for Pulumi.dev.yaml, `make diagram STACK=prod` for Pulumi.prod.yaml.
STACK ?= dev
diagram: $(PY_STAMP)
	$(PY) -m localcloud.diagram --stack-config Pulumi.$(STACK).yaml

# README.md's picture, drawn for the fixed example docs/examples/Pulumi.example.yaml.
readme-diagram: $(PY_STAMP)
	$(PY) -m localcloud.diagram --readme README.md

clean:
	rm -rf $(VENV) node_modules .build .pytest_cache .ruff_cache
