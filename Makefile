# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install format lint typecheck test unit integration bench bench-check chaos demo image all up down clean mutate

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The import contract (pyproject.toml, [tool.importlinter]) keeps the layers of the house.
lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

up:
	bash scripts/engine.sh start
	bash scripts/engine.sh start legacy
	bash scripts/engine.sh start bare
	bash scripts/broker.sh start
	bash scripts/prometheus.sh start
	bash scripts/swarm.sh start 3
	bash scripts/queues.sh start

down:
	-bash scripts/queues.sh stop
	-bash scripts/swarm.sh stop
	-bash scripts/prometheus.sh stop
	-bash scripts/broker.sh reset
	-bash scripts/engine.sh stop bare
	-bash scripts/engine.sh stop legacy
	-bash scripts/engine.sh stop

# Starts the engine and broker, runs every test against them, and stops what it started.
test: install
	bash scripts/test.sh

unit: install
	$(BIN)/pytest tests/unit

# Which rules of policies/ no unit test pins: every surviving mutant is either equivalent (it
# changes nothing a caller can see) or a test to write. Results stay in mutants/ (ignored).
mutate: install
	$(BIN)/pip install -q -e '.[mutation]'
	$(BIN)/mutmut run
	$(BIN)/mutmut results

# What the benchmarks run on: the engines, the broker, Prometheus and the swarm `make up` starts.
BENCH_ENV = set -a; eval "$$(bash scripts/platform.sh env current)"; \
	AUTOSCALER_TEST_LEGACY_COMPOSE=$$(bash scripts/platform.sh bin legacy)/docker-compose; \
	AUTOSCALER_TEST_LEGACY_HOST=$$(bash scripts/engine.sh env legacy | cut -d= -f2-); \
	AUTOSCALER_TEST_BARE_HOST=$$(bash scripts/engine.sh env bare | cut -d= -f2-); \
	eval "$$(bash scripts/engine.sh env)"; eval "$$(bash scripts/broker.sh env)"; \
	eval "$$(bash scripts/prometheus.sh env)"; eval "$$(bash scripts/swarm.sh env)"; \
	eval "$$(bash scripts/queues.sh env)"; set +a

# Every benchmark (B=name for one); fails when a headline regressed (bench/gate.py).
bench: install up
	$(BENCH_ENV); \
	bash scripts/swarm.sh load "$${AUTOSCALER_TEST_IMAGE:-autoscaler-test/busybox:latest}" && \
	$(BIN)/python -m bench $(B)

# Faults while it scales, one after another, with the invariants checked (bench/chaos; about
# 6 minutes): the table in bench/results/chaos.txt. make test runs a short version of it.
chaos: install up
	$(BENCH_ENV); \
	bash scripts/swarm.sh load "$${AUTOSCALER_TEST_IMAGE:-autoscaler-test/busybox:latest}" && \
	$(BIN)/python -m bench chaos

# The regression gate on the reaction step alone (about 5 minutes; stores nothing).
bench-check: install
	bash scripts/engine.sh start
	set -a; eval "$$(bash scripts/platform.sh env current)"; eval "$$(bash scripts/engine.sh env)"; \
	set +a; $(BIN)/python -m bench.check

# The page's address comes first, before anything is installed.
demo:
	@echo; echo "  The autoscaler's page: http://127.0.0.1:$${AUTOSCALER_API__PORT:-9464}/  (open it now; it fills in as the demo starts)"; echo
	@$(MAKE) --no-print-directory install
	DEMO_BANNER_SHOWN=1 bash scripts/demo.sh

# The deploy image, offline, on the engine DOCKER_HOST names (the private one if unset).
image: install
	if [ -z "$${DOCKER_HOST:-}" ]; then bash scripts/engine.sh start; \
		export $$(bash scripts/engine.sh env); fi; bash scripts/image.sh

all: lint typecheck test

clean: down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
