# mongo-reactor: `make demo` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
COMPOSE := docker compose -f deploy/compose.yaml

# The fault suite on other interpreters: `make faults-all` builds .venv-<x.y> for each.
FAULT_PYTHONS ?= /root/.pyenv/versions/3.12.1/bin/python3.12 /root/.pyenv/versions/3.13.0/bin/python3.13
SOAK_S ?= 180
# The bench's peer (Celery 5 + Redis) lives in its own virtual environment, never in .venv.
PEER_VENV ?= .venv-bench-peer
PEER_STAMP := $(PEER_VENV)/.installed-stamp

.PHONY: install system-deps demo test lint bench bench-quick bench-peer fidelity faults fault-deps faults-all soak up down logs clean

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

# mongo-reactor and Celery 5 + Redis side by side (benchmarks/results.md); not part of `make test`.
bench: install bench-peer
	$(BIN)/python benchmarks/run.py

bench-quick: install bench-peer
	BENCH_QUICK=1 $(BIN)/python benchmarks/run.py

bench-peer: $(PEER_STAMP)
	@bash scripts/bench-deps.sh

$(PEER_STAMP): benchmarks/peer/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEER_VENV)/bin/python -m pip install --quiet -r benchmarks/peer/requirements.txt -e .
	@touch $@

# PyMongo's own async test modules against the double (downloads the installed version's sdist).
fidelity: install
	$(BIN)/python scripts/fidelity.py --json .fidelity/summary.json

# Real reactor processes behind a cuttable proxy (tests/faults, docs/faults.md); not in `make test`.
faults: install fault-deps
	$(BIN)/pytest -m faults tests/faults -p no:cacheprovider

fault-deps:
	@bash scripts/fault-deps.sh

faults-all:
	@status=0; $(MAKE) faults || status=1; for py in $(FAULT_PYTHONS); do \
		v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		echo "== fault suite on Python $$v ($$py)"; \
		$(MAKE) faults PYTHON=$$py VENV=.venv-$$v || status=1; \
	done; exit $$status

soak: install
	$(BIN)/python scripts/soak.py --seconds $(SOAK_S)

up:
	$(COMPOSE) up -d --build --wait

down:
	$(COMPOSE) --profile rs3 --profile logs down -v

logs:
	$(COMPOSE) logs -f reactor

clean:
	rm -rf $(VENV) $(PEER_VENV) .venv-3.* .pytest_cache .mypy_cache .ruff_cache .coverage
