# The documented way to do everything. Every target bootstraps .venv itself.
#   make test                          fast test suite (what CI runs)
#   make bench [PROFILE=default] [DATA_ROOT=...] [SEEDS=1] [DEVICE=cpu]
#   make report PROFILE=...            rebuild reports/<profile>/ from the run directories
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROFILE ?= default
SEEDS ?=
DATA_ROOT ?=
DEVICE ?=
BENCH_ARGS := --profile $(PROFILE) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(DEVICE),--device $(DEVICE))

.PHONY: install test test-slow lint format bench report clean

# constraints.txt pins the known-good versions the test suite passed with (see its header).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@$(BIN)/python -c "import torch, torchvision, tensorflow" || { \
	  echo "error: torch/torchvision/tensorflow failed to import in $(VENV)."; \
	  echo "A CPU-only torch wheel breaks torchvision: remove $(VENV) and re-run 'make install'."; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.harness run $(BENCH_ARGS)

report: $(STAMP)
	$(BIN)/python -m benchmarks.harness report --profile $(PROFILE)

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info
