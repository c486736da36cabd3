# mongo-reactor: `make demo` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
COMPOSE := docker compose -f deploy/compose.yaml

.PHONY: install system-deps demo test lint bench fidelity up down logs clean

install: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/reactor demo

lint: install
	$(BIN)/ruff check reactor handlers tests benchmarks examples scripts
	$(BIN)/ruff format --check reactor handlers tests benchmarks examples scripts
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest --cov --cov-report=term

bench: install
	$(BIN)/python benchmarks/run.py

# PyMongo's own async test modules against the double (downloads the installed version's sdist).
fidelity: install
	$(BIN)/python scripts/fidelity.py --json .fidelity/summary.json

up:
	$(COMPOSE) up -d --build --wait

down:
	$(COMPOSE) --profile rs3 --profile logs down -v

logs:
	$(COMPOSE) logs -f reactor

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
