# Two commands matter: `make run` (the service on embedded defaults) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions and hashes of every dependency: runtime.txt (the image installs it) and
# dev.txt (runtime + the dev extra: what the venv, and so CI, installs). `make lock` writes them.
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt
UV_VERSION := 0.13.9
LOCK_TOOLS := var/lock-tools

.PHONY: run test lint typecheck check bench clean lock

# Re-installs when the lock (or pyproject.toml) changes. alertbot itself goes in editable and
# without dependencies, so nothing but the locked versions is installed. pip is not upgraded:
# the venv's own pip installs a hashed lock, and an upgrade would be one unpinned download.
$(STAMP): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# After changing dependencies in pyproject.toml (needs PyPI): the versions already locked are
# kept where they still satisfy it; `--upgrade` in UV_FLAGS moves everything to the newest.
# uv runs from its own venv under var/, so the project venv stays exactly the lock.
lock:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command "make lock" $(UV_FLAGS) -o $(RUNTIME_LOCK)
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra dev -c $(RUNTIME_LOCK) --universal \
	  --python-version 3.11 --generate-hashes --custom-compile-command "make lock" $(UV_FLAGS) \
	  -o $(DEV_LOCK)

# The service with no account anywhere: SQLite in var/, the bundled samples re-dated to now,
# Slack payloads and emails written under var/outbox/, HTTP on http://127.0.0.1:8000.
run: $(STAMP)
	$(BIN)/python samples/freshen.py samples var/samples
	$(BIN)/alertbot subscribers add editor@desk.example --mode instant
	$(BIN)/alertbot run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest -q -n 2 --dist loadscope

bench: $(STAMP)
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/ingest.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
