# One entry point for people and CI. `make test` sets everything up from nothing (a venv with the
# pinned Python packages, Azurite from npm) and runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup test lint bench package demo verify diagram clean

$(PY_STAMP): requirements.txt requirements-dev.txt function_src/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(PY_STAMP) $(NODE_STAMP)

lint: $(PY_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup lint
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

package: $(PY_STAMP)
	$(PY) -m shipping.build
	$(PY) -m shipping.lambda_build

demo: setup
	$(PY) -m localcloud.demo

# After `pulumi up`: VERIFY_ARGS="--stack dev" (or "--outputs outputs.json").
verify: $(PY_STAMP)
	$(PY) -m verify $(VERIFY_ARGS)

# The trust chain of Pulumi.dev.yaml, drawn from the program under mocks, into README.md.
diagram: $(PY_STAMP)
	$(PY) -m localcloud.diagram --readme README.md

clean:
	rm -rf $(VENV) node_modules .build .pytest_cache .ruff_cache
