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
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	# PyTorch for the torch.onnx tests of mlci optimize: pip takes the CPU build of 2.13.0 that this
	# kind of machine keeps on disk (uv would download a multi-GB CUDA build from the index instead).
	$(BIN)/python -m pip install --quiet torch==2.13.0
	touch $@

# checkov, ansible-core and ansible-lint check the rendered runner IaC; their pins stay out of .venv.
IAC_STAMP := .venv-iac/.mlci-requirements
$(IAC_STAMP): tests/runners/iac-tools.txt $(STAMP)
	$(BIN)/python -m tests.runners.iac_tools
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# gitlab-ci-local shells out to rsync to copy the work tree; the tuning and SQL engine tests start a
# real PostgreSQL, the monitoring tests a real Prometheus and promtool, and the Spark engine tests run
# PySpark in local mode (a JVM): Debian packages, installed when missing.
tools: $(NODE_STAMP)
	@command -v rsync >/dev/null 2>&1 || { \
	  echo "installing rsync (needed by gitlab-ci-local)"; \
	  (apt-get install -y -qq rsync >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq rsync >/dev/null)); }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo "installing postgresql (a real database for the tuning tests)"; \
	  (apt-get install -y -qq postgresql >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)); }
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing prometheus and promtool (needed by the monitoring tests)"; \
	  (apt-get install -y -qq prometheus >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq prometheus >/dev/null)); }
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime (needed by PySpark)"; \
	  (apt-get install -y -qq default-jre-headless >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null)); }
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "installing nginx (the canary tests' traffic router)"; \
	  (apt-get install -y -qq nginx >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq nginx >/dev/null)); }

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) tools $(IAC_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup

demo: $(STAMP) tools
	$(BIN)/python -m tests.e2e.demo

generate: $(STAMP)
	$(BIN)/mlci generate

bench: $(STAMP)
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/optimize.py
	PATH="$(abspath $(dir $(UV))):$$PATH" $(BIN)/python benchmarks/job_bootstrap.py

clean:
	rm -rf $(VENV) .venv-iac node_modules .gitlab-ci-local .pytest_cache
