# Set-up and the two commands the README promises. Python 3.11+, pip (not uv/poetry: they miss
# the local CPU torch wheel; constraints.txt pins torch, see docs/architecture.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test lint install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install, then run the built-in quickstart recipe (digits CNN; a few minutes on 2 cores).
quickstart: $(STAMP)
	$(BIN)/effsearch run recipes/quickstart.yaml --resume

## Install, then lint, type-check and run every test (slow ones included; GPU ones skip).
test: $(STAMP)
	$(BIN)/ruff check effsearch tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check effsearch tests benchmarks
	$(BIN)/ruff format --check effsearch
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
