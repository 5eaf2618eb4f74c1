# Two commands matter: `make run` (the service on embedded defaults) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The service with no account anywhere: SQLite in var/, the bundled samples re-dated to now,
# Slack payloads and emails written under var/outbox/, HTTP on http://127.0.0.1:8000.
run: $(STAMP)
	$(BIN)/python samples/freshen.py samples var/samples
	$(BIN)/alertbot subscribers add editor@desk.example --mode instant
	$(BIN)/alertbot run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/ingest.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
