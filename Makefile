# The documented way to do everything. Every target bootstraps .venv itself.
#   make test                          fast test suite (what CI runs)
#   make bench [PROFILE=default] [DATA_ROOT=...] [SEEDS=1] [DEVICE=cpu]
#   make report PROFILE=...            rebuild reports/<profile>/ from the run directories
#   make gpu-check                     on a GPU machine: every model x framework x precision,
#                                      parity and torchrun on the device; JSON under
#                                      benchmarks/results/<gpu>/
#   make install GPU=1                 also TensorFlow's CUDA libraries (the `gpu` extra);
#                                      GPU defaults to 1 where nvidia-smi is on the PATH, GPU=0 not
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# TensorFlow's pip wheel finds a GPU only with its CUDA libraries (tensorflow[and-cuda], the
# `gpu` extra); torch's default wheel brings its own. Installed where nvidia-smi exists.
# GPU=0 leaves it out.
GPU ?= $(if $(shell command -v nvidia-smi 2>/dev/null),1,0)
comma := ,
WITH_GPU := $(filter 1,$(GPU))
EXTRAS := dev$(if $(WITH_GPU),$(comma)gpu)
STAMP := $(VENV)/.installed-stamp$(if $(WITH_GPU),-gpu)
PROFILE ?= default
SEEDS ?=
DATA_ROOT ?=
DEVICE ?=
BENCH_ARGS := --profile $(PROFILE) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(DEVICE),--device $(DEVICE))

.PHONY: install test test-slow lint format bench report gpu-check clean

# constraints.txt pins the known-good versions the test suite passed with (see its header).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
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

gpu-check: $(STAMP)
	$(BIN)/python -m benchmarks.gpu_check $(if $(DEVICE),--device $(DEVICE))

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info
