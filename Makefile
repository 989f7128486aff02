# hulk-ops — everything a user or CI runs goes through these targets.
SHELL := /bin/bash
PY := .venv/bin/python
export UV_LINK_MODE := copy
# .pyc files written at install, as in the Docker image: with PYTHONDONTWRITEBYTECODE set (CI, this machine)
# every process would otherwise compile ~1,900 modules from source (~4 s per dashboard or collector start)
export UV_COMPILE_BYTECODE := 1

.PHONY: help venv servers system demo test test-unit test-integration test-e2e lint bench clean

help:
	@echo "make demo   - run the dashboard on a live sandbox at http://localhost:8501"
	@echo "make test   - set everything up and run the whole suite"
	@echo "make bench  - run the benchmarks in bench/ and write docs/benchmarks.md"
	@echo "              (BEFORE=REF: also the collector as it was at git REF, before / after in the same run)"

# uv with the committed lock file (pip backtracks for minutes on this dependency set); scripts/bootstrap.sh finds
# Python >= 3.11 and uv, getting uv into a private venv (.tools) when missing: never pip into an externally
# managed system Python
.venv/.synced: pyproject.toml uv.lock scripts/bootstrap.sh
	@set -e; uv="$$(sh scripts/bootstrap.sh)"; py="$$(sh scripts/bootstrap.sh --python)"; \
	  echo "$$uv sync --frozen --python $$py"; "$$uv" sync --frozen --python "$$py"
	@touch $@

venv: .venv/.synced

# Debian packages a fresh machine lacks (servers are reused when already running); tests also need Chromium
# and nginx (the documented Origin-checking proxy is tested)
servers: venv
	$(PY) -m sandbox.services install

system: venv
	$(PY) -m sandbox.services install --with chromium --with nginx

demo: servers
	$(PY) -m hulk_ops demo

test: system
	$(PY) -m ruff check .
	.venv/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest

test-unit: venv
	$(PY) -m pytest -m unit

test-integration: system
	$(PY) -m pytest -m integration

test-e2e: system
	$(PY) -m pytest -m e2e

lint: venv
	$(PY) -m ruff check .
	.venv/bin/lint-imports
	$(PY) -m mypy

bench: system
	$(PY) -m sandbox.services install --with prometheus-blackbox-exporter
	$(PY) -m bench $(if $(BEFORE),--before $(BEFORE))

clean:
	rm -rf .venv .tools .services .demo .bench .pytest_cache .ruff_cache
