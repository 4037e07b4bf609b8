# `make run`: set up and run the default DAG. `make test`: set up and run the tests.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PREFECT_HOME := $(abspath .prefect)
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: run test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# torch first: the pinned CPU wheel, so that no CUDA build is pulled in.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	dvc repro

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .prefect
