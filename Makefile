# kfops — the verbs. `make run` and `make test` work on a fresh machine: they create .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kfops-installed
STORE ?= .kfops/store
KFOPS_IMAGE ?=
PYTEST_ARGS ?=
# checkov pins dependencies that clash with kfp: it gets its own venv.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION ?= 3.3.30
CHECKOV := $(CHECKOV_VENV)/bin/checkov
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' kfops/__init__.py)
IMAGE ?= ghcr.io/kfops/kfops:$(VERSION)
# docker when a Docker engine answers, else podman.
ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)

.PHONY: help install run test test-fast lint format compile bench bench-serving clean
.PHONY: checkov image image-local lint-manifests kind-up kind-deploy e2e-kind
.PHONY: s3-up s3-down browser prometheus-tools cluster-env mutation postgres wrk

help:
	@echo "make run      set up and run the training pipeline locally on builtin:churn"
	@echo "make test     set up and run every test"
	@echo "make compile  regenerate compiled pipeline and component YAML"
	@echo "make lint     ruff check + format check"
	@echo "make bench    run the pipeline benchmark (prints side-by-side ratios)"
	@echo "make bench-serving  kfops vs MLServer and KServe (see bench/serving.py for their venvs)"
	@echo "make mutation  mutmut on the costly modules: killed/survived/timed out per module (slow)"
	@echo "make s3-up    local S3 server (SeaweedFS) on 127.0.0.1:9000 in the background, no Docker"
	@echo "make s3-down  stop it"
	@echo "make image        build the kfops image with docker or podman ($(IMAGE))"
	@echo "make image-local  build it with podman on a local Debian base (no registry needed)"
	@echo "make lint-manifests  render, validate and security-scan the kustomize manifests"
	@echo "make kind-up      kind cluster + Kubeflow Pipelines + MinIO (needs docker, network)"
	@echo "make cluster-env  write the overlays' git-ignored Secret env files (random keys)"
	@echo "make kind-deploy  serve the champion on kind (MODEL_VERSION=N pins a version)"
	@echo "make e2e-kind     image, kind load, train on KFP, deploy, predict"

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

test: install checkov browser prometheus-tools postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's chromium for the browser tests (tests/kfops/ui/test_browser.py drives it through
# Playwright with executable_path: Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's promtool (checks and unit-tests the alert rules) and Pushgateway (receives the monitor's
# metrics) for tests/manifests/test_monitoring.py and tests/kfops/test_monitor_exposition.py.
prometheus-tools:
	@command -v promtool >/dev/null && command -v prometheus-pushgateway >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  prometheus prometheus-pushgateway >/dev/null; }

# Debian's PostgreSQL server for the SQL source tests (tests/fixtures/postgres.py starts its own
# cluster on 127.0.0.1 with initdb + pg_ctl as the postgres user; the system service is not used).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Debian's wrk: the independent load generator of bench/serving.py's --wrk mode.
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

test-fast: install postgres
	$(BIN)/python -m pytest -m "not slow and not container" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# kfops/serving/open_inference_desc.py from open_inference.proto (a test checks it is fresh).
grpc-descriptor: install
	$(BIN)/python scripts/grpc_descriptor.py

compile: install
	$(BIN)/kfops compile --out-dir pipelines/compiled --components-dir components/compiled

bench: install
	$(BIN)/python bench/pipeline.py

bench-serving: install wrk
	nice -n 10 $(BIN)/python bench/serving.py --seconds 3

# Not in CI (too slow for 2 cores). MUTATION_ARGS="kfops/split.py --minutes 10" for one module.
MUTATION_ARGS ?=
mutation: install
	nice -n 10 $(BIN)/python scripts/mutation.py $(MUTATION_ARGS)

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV) || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

checkov: $(CHECKOV)

image:
	$(ENGINE) build -t $(IMAGE) --build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) .

image-local:
	bash scripts/image-local.sh all

lint-manifests: install checkov prometheus-tools
	$(BIN)/python -m pytest -q tests/manifests

# The storage Secret's env files the kind and kserve overlays read (kfops.cluster.ENV_FILES).
cluster-env: install
	$(BIN)/python -m kfops.cluster env-files --manifests manifests

kind-up: install
	bash scripts/kind-up.sh

kind-deploy: install
	bash scripts/kind-deploy.sh

e2e-kind: install
	bash scripts/e2e-kind.sh

s3-up: install
	WEED=$(BIN)/weed bash scripts/s3-up.sh --background

s3-down:
	bash scripts/s3-up.sh --stop

clean:
	rm -rf $(VENV) .kfops .pytest_cache .ruff_cache *.egg-info
