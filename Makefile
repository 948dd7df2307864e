# servestack: `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := tools/constraints.txt
# The package does not look for a checkout: the demo, the tests and the bench get the engine
# `make engine` built handed over explicitly (servestack.engine.discovery).
export SERVESTACK_ENGINE_BIN ?= $(CURDIR)/.engine/bin
# Reinstall when pyproject.toml or the constraints change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(CONSTRAINTS) | sha256sum | cut -c1-16)

.PHONY: help venv engine prometheus karpenter lint test test-unit test-engine demo bench clean cluster-build cluster cluster-down test-cluster cold-rehearsal

help:
	@echo "make demo          - build/reuse the engine and the local cluster; the dev stack rendered, then up on the cluster with live edits"
	@echo "make test          - install, lint, type-check, run every tier (unit, mocks, review, security, engine, monitoring, cluster)"
	@echo "make engine        - build (or reuse from cache) the Pulumi CLI, Python host, k8s provider"
	@echo "make prometheus    - build (or reuse from cache) prometheus and promtool"
	@echo "make karpenter     - build (or reuse from cache) Karpenter's kwok provider (cluster provider karpenter)"
	@echo "make cluster       - build and start the local control plane on 127.0.0.1"
	@echo "make test-cluster  - the cluster tier alone (make test runs it too)"
	@echo "make cold-rehearsal - a fresh clone with every build cache empty: .ci/run and make demo, timed"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -c $(CONSTRAINTS) -e '.[dev]'
	# Byte-compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI machines), every
	# process (each CLI run, each stack program) would otherwise compile pulumi, grpc,
	# pydantic, ... from source again (measured: 1,630 modules, a few seconds per process).
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# checkov pins many libraries of its own: it gets a virtualenv of its own.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q "checkov==3.3.30"

engine:
	bash tools/build-engine.sh

prometheus:
	bash tools/build-prometheus.sh

karpenter:
	bash tools/build-karpenter.sh

# mypy cannot follow the editable install's import hook: it checks the package through a
# link named after the import name.
TYPECHECK := .build/typecheck
lint: venv
	$(BIN)/ruff check components tests examples bench demo harness tools __main__.py
	$(BIN)/ruff format --check components tests examples bench demo harness tools __main__.py
	mkdir -p $(TYPECHECK) && ln -sfn ../../components $(TYPECHECK)/servestack
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache


test-unit: venv prometheus
	$(BIN)/pytest -q -m "not engine and not cluster" tests

test-engine: venv engine prometheus $(CHECKOV)
	$(BIN)/pytest -q -m "engine and not cluster" tests

cluster-build:
	bash tools/build-cluster.sh
	bash tools/build-gateway-api.sh

cluster: cluster-build
	$(PYTHON) tools/cluster.py up

cluster-down:
	$(PYTHON) tools/cluster.py down

test-cluster: venv engine cluster-build karpenter
	$(BIN)/pytest -q -m cluster tests/cluster

# One pytest run over every tier, so its closing line counts them all; two workers: the
# cluster tier (mostly waiting on the control plane) on one, the other tiers share both.
test: venv lint engine prometheus cluster-build karpenter $(CHECKOV)
	$(BIN)/pytest -q -n 2 tests

demo: venv engine cluster-build
	$(BIN)/python -m demo

bench: venv engine
	$(BIN)/python -m bench

cold-rehearsal:
	bash tools/cold-rehearsal.sh

clean:
	rm -rf out .pulumi-state .engine .servestack
