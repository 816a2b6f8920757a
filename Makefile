# Two commands for a fresh clone with only Python present:
#   make demo   VAE vs PCA features on scikit-learn's digits, as a table
#   make test   the test suite (what CI runs)
# Both create .venv and install skvae into it on first use.
#
# TORCH is the PyTorch requirement installed before skvae. The default is the CPU
# build that lies on this project's machines. GPU users: install the torch build for
# your CUDA version into .venv first (see README), then pass TORCH= to keep it.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.skvae-installed

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install --quiet "$(TORCH)"; fi
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: install
	$(BIN)/python benchmarks/digits_demo.py

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
