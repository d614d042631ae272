# kfops — the verbs. `make run` and `make test` work on a fresh machine: they create .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kfops-installed
STORE ?= .kfops/store
KFOPS_IMAGE ?=
PYTEST_ARGS ?=

.PHONY: help install run test test-fast lint format compile bench clean

help:
	@echo "make run      set up and run the training pipeline locally on builtin:churn"
	@echo "make test     set up and run every test"
	@echo "make compile  regenerate compiled pipeline and component YAML"
	@echo "make lint     ruff check + format check"
	@echo "make bench    run the benchmarks in bench/ (prints side-by-side ratios)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# Reinstall whenever the declared dependencies or the pins change.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[serve,dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/kfops run --store $(STORE)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not container" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

compile: install
	$(BIN)/kfops compile --out-dir pipelines/compiled --components-dir components/compiled

bench: install
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) .kfops .pytest_cache .ruff_cache *.egg-info
