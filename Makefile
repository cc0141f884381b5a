# Two entry points: `make demo` runs the example ML pipeline end to end,
# `make test` runs lint and the whole test suite. Both build everything they
# need from nothing: a virtualenv, the Python packages and the npm tools.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlci-installed
NODE_STAMP := node_modules/.mlci-installed

.PHONY: test demo lint generate bench clean tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# gitlab-ci-local shells out to rsync to copy the work tree; the Spark engine tests run
# PySpark in local mode (a JVM); the SQL engine tests start a real PostgreSQL.
tools: $(NODE_STAMP)
	@command -v rsync >/dev/null 2>&1 || { \
	  echo "installing rsync (needed by gitlab-ci-local)"; \
	  (apt-get install -y -qq rsync >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq rsync >/dev/null)); }
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime (needed by PySpark)"; \
	  (apt-get install -y -qq default-jre-headless >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null)); }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL (needed by the SQL engine tests)"; \
	  (apt-get install -y -qq postgresql >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)); }

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

clean:
	rm -rf $(VENV) node_modules .gitlab-ci-local .pytest_cache
