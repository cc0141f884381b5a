# Two entry points: `make demo` runs the example ML pipeline end to end,
# `make test` runs lint and the whole test suite. Both build everything they
# need from nothing: a virtualenv, the Python packages and the npm tools.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlci-installed
NODE_STAMP := node_modules/.mlci-installed
# uv installs the ~150 packages of the dev extra in seconds; without it on PATH, pip bootstraps it
# into the virtualenv (one wheel) and uv takes over from there.
UV := $(shell command -v uv 2>/dev/null || echo $(BIN)/uv)

.PHONY: test demo lint generate bench clean tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(BIN)/python -m pip install --quiet uv
	$(UV) pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# gitlab-ci-local shells out to rsync to copy the work tree.
tools: $(NODE_STAMP)
	@command -v rsync >/dev/null 2>&1 || { \
	  echo "installing rsync (needed by gitlab-ci-local)"; \
	  (apt-get install -y -qq rsync >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq rsync >/dev/null)); }

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) tools
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

demo: $(STAMP) tools
	$(BIN)/python -m tests.e2e.demo

generate: $(STAMP)
	$(BIN)/mlci generate

bench: $(STAMP)
	$(BIN)/python benchmarks/cli_startup.py
	PATH="$(dir $(UV)):$$PATH" $(BIN)/python benchmarks/job_bootstrap.py

clean:
	rm -rf $(VENV) node_modules .gitlab-ci-local .pytest_cache
