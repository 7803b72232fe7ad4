# The two commands of the README, and the checks CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test lint typecheck check bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU build of torch, pinned: an unpinned torch pulls several GB of CUDA wheels.
	$(PY) -m pip install --quiet torch==2.13.0
	# The adapters' frameworks (their tests run the real classes) and the bench extra.
	$(PY) -m pip install --quiet -e '.[dev,langchain,llamaindex,bench]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/securerag demo

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	PYTHON=$(PY) ./scripts/typecheck

check: lint typecheck

bench: setup
	$(PY) bench/retrieval.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
