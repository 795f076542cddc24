# siamese-bench. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The offline copy of full MNIST; users elsewhere get torchvision's download or the fallback.
export SIAMESE_BENCH_MNIST_DIR ?= $(abspath ../shared/datasets/mnist)
# The offline copy of Omniglot (full set, small sets, the 20 one-shot runs)
export SIAMESE_BENCH_OMNIGLOT_DIR ?= $(abspath ../shared/datasets/omniglot)

# `make train` variables (override on the command line: make train HEAD=subtract-dense)
DATASET ?= mnist
HEAD ?= euclidean
LOSS ?= contrastive
MARGIN ?= 1
EPOCHS ?= 20
SEED ?= 0

.PHONY: help venv test lint train mlflow-ui bench-mnist bench-mnist-full bench-mnist-tune bench-vectors bench-mining report regress bench-throughput clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create the virtual environment (once; again when pyproject.toml changes)

# C4's stand-in data (made offline from mnist-5k), needed by the C4 study and regression check
C4_DATA := datasets/c4/pairs-train.csv
$(C4_DATA): $(STAMP)
	$(BIN)/siamese-bench make-pairs-csv --out datasets/c4/pairs

test: $(STAMP) $(C4_DATA) ## the accuracy regression checks (make regress), then the test suite
	$(BIN)/siamese-bench regress benchmarks/claims.yaml
	$(PY) -m pytest -q

lint: $(STAMP) ## ruff
	$(BIN)/ruff check siamese_bench tests benchmarks

train: $(STAMP) ## train one variant: make train HEAD=abs-diff-dense LOSS=bce EPOCHS=5
	$(BIN)/siamese-bench train --dataset $(DATASET) --head $(HEAD) --loss $(LOSS) \
		--margin $(MARGIN) --epochs $(EPOCHS) --seed $(SEED)

mlflow-ui: $(STAMP) ## browse the local tracking store on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns.db --host 127.0.0.1 --port 5000

WORKERS ?=
SWEEP := $(BIN)/siamese-bench sweep $(if $(WORKERS),--workers $(WORKERS),)

bench-mnist: $(STAMP) ## the MNIST ablation (C1-C3): grid on mnist-5k + headline cells on full MNIST + report (~15 min on 2 cores)
	$(SWEEP) benchmarks/mnist.yaml
	$(SWEEP) benchmarks/mnist-full.yaml
	$(MAKE) --no-print-directory report

report: $(STAMP) ## rebuild reports/mnist/report.pdf from the MLflow store (no retraining)
	$(BIN)/siamese-bench report mnist-ablation mnist-headline-full --name mnist

bench-mnist-full: $(STAMP) ## the whole MNIST grid on full MNIST (~2.5 h on 2 cores, estimated; for a GPU or more time)
	$(SWEEP) benchmarks/mnist-grid-full.yaml
	$(SWEEP) benchmarks/mnist-full.yaml

bench-mnist-tune: $(STAMP) ## learning rate tuned per cell with equal TPE budgets and median pruning (~2 min)
	$(SWEEP) benchmarks/mnist-tune.yaml

bench-vectors: $(STAMP) $(C4_DATA) ## C4 on a C4-shaped pairs CSV (made from mnist-5k by PCA): baseline + every advice (~1 min)
	$(SWEEP) benchmarks/vectors.yaml

bench-mining: $(STAMP) ## C5: random vs batch-hard vs semi-hard triplets on mnist-5k (~1 min)
	$(SWEEP) benchmarks/mining.yaml

regress: $(STAMP) $(C4_DATA) ## quick accuracy checks of C1-C4 against calibrated thresholds (~1 min)
	$(BIN)/siamese-bench regress benchmarks/claims.yaml

bench-throughput: $(STAMP) ## pairs/s of siamese-bench vs a bare PyTorch loop (C1 config)
	$(PY) benchmarks/throughput.py

clean: ## remove tracking stores, reports and caches (not the venv, not downloaded data)
	rm -rf mlruns.db mlartifacts mlruns optuna.journal* .pytest_cache reports/*/
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +
