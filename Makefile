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

PHONY_SERVICES := services-up services-down services-status dashboard soak

.PHONY: $(PHONY_SERVICES) help venv test test-fast lint train mlflow-ui bench-mnist bench-mnist-full bench-mnist-tune bench-vectors bench-mining bench-sequences bench-sequences-full bench-oneshot bench-omniglot bench-omniglot-105 bench-omniglot-full bench-all report report-all regress bench-throughput clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-19s %s\n", $$1, $$2}'

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

# pytest processes for make test: most end-to-end tests wait on process start-up and servers,
# so two share 2 cores well (each test file stays in one process: its fixtures are shared)
TEST_WORKERS ?= 2
test: $(STAMP) $(C4_DATA) ## the accuracy regression checks (make regress), then the test suite (~11 min from a fresh clone)
	$(BIN)/siamese-bench regress benchmarks/regress.yaml
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: $(STAMP) ## the quick tests only (no end-to-end runs, no regression checks), for the edit loop
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP) ## ruff
	$(BIN)/ruff check siamese_bench tests benchmarks

train: $(STAMP) ## train one variant: make train HEAD=abs-diff-dense LOSS=bce EPOCHS=5
	$(BIN)/siamese-bench train --dataset $(DATASET) --head $(HEAD) --loss $(LOSS) \
		--margin $(MARGIN) --epochs $(EPOCHS) --seed $(SEED)

mlflow-ui: $(STAMP) ## browse the local tracking store on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns.db --host 127.0.0.1 --port 5000

# Services for sweeps on several machines (PostgreSQL for Optuna, an MLflow server), owned by the project
PG_PORT ?= 55432
MLFLOW_PORT ?= 5055
SERVICES_HOST ?= 127.0.0.1
SERVICES_OPTS = --pg-port $(PG_PORT) --mlflow-port $(MLFLOW_PORT) --host $(SERVICES_HOST)

services-up: $(STAMP) ## start PostgreSQL (port 55432) and an MLflow server (port 5055) under .services/, then `source .services/env` (~10 s)
	$(PY) -m siamese_bench.infra.services up $(SERVICES_OPTS)

services-down: $(STAMP) ## stop the MLflow server, then PostgreSQL (the data stays in .services/)
	$(PY) -m siamese_bench.infra.services down $(SERVICES_OPTS)

services-status: $(STAMP) ## one line per service: running/stopped, pid, URL (password masked)
	$(PY) -m siamese_bench.infra.services status $(SERVICES_OPTS)

DASHBOARD_PORT ?= 8080
dashboard: $(STAMP) ## optuna-dashboard on the study storage (SIAMESE_BENCH_STORAGE, else ./optuna.journal) at http://127.0.0.1:8080
	@$(PY) -c "import optuna_dashboard" 2>/dev/null || $(PY) -m pip install -q 'optuna-dashboard>=0.17'
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port $(DASHBOARD_PORT) "$${SIAMESE_BENCH_STORAGE:-$(CURDIR)/optuna.journal}"

soak: $(STAMP) ## fault soak: 2 sweeps on one study, >= 20 injected kills/restarts, audit (journal, then PostgreSQL; ~15 min)
	$(PY) benchmarks/soak.py --storage journal
	$(PY) benchmarks/soak.py --storage postgresql

WORKERS ?=
SWEEP := $(BIN)/siamese-bench sweep $(if $(WORKERS),--workers $(WORKERS),)

bench-mnist: $(STAMP) ## the MNIST ablation (C1-C3): grid on mnist-5k + C1 on full MNIST (3 seeds) + report (~14 min on 2 cores)
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

bench-vectors: $(STAMP) $(C4_DATA) ## C4 on a C4-shaped pairs CSV (made from mnist-5k by PCA): baseline + every advice, 10 seeds, report (~1.5 min)
	$(SWEEP) benchmarks/vectors.yaml
	$(BIN)/siamese-bench report c4-vectors --name vectors

bench-mining: $(STAMP) ## C5: random vs batch-hard vs semi-hard triplets on mnist-5k (~2 min)
	$(SWEEP) benchmarks/mining.yaml

bench-sequences: $(STAMP) ## C5 on sequences: LSTM on JapaneseVowels and MNIST rows, concat/abs-diff + BCE vs triplet mining, report (~2.5 min)
	$(SWEEP) benchmarks/sequences.yaml
	$(BIN)/siamese-bench report c5-sequences --name sequences

bench-sequences-full: $(STAMP) ## the sequence study with 10 seeds, 60 epochs and full MNIST rows (~2 h, estimated)
	$(SWEEP) benchmarks/sequences-full.yaml

bench-oneshot: $(STAMP) ## K1: 20-way one-shot on Lake's 20 runs, the best CPU design and one lever off in each other cell, 3 seeds, report (~30 min)
	$(SWEEP) benchmarks/oneshot.yaml
	$(BIN)/siamese-bench report omniglot-k1 --name oneshot

bench-omniglot: $(STAMP) ## C6 (same alphabet: contrastive vs triplet, negative policies, mix split) at 28 x 28 and K1 (bench-oneshot), report (~40 min)
	$(SWEEP) benchmarks/omniglot.yaml
	$(SWEEP) benchmarks/oneshot.yaml
	$(BIN)/siamese-bench report omniglot-c6 omniglot-k1 --name omniglot

C6_SEEDS ?= 0
bench-omniglot-105: $(STAMP) ## C6 at 105 x 105: seeds C6_SEEDS of the full-size spec (default 0, ~1 h on 2 cores; C6_SEEDS=1,2 adds the rest, ~2 h more), reported beside the 28 px study
	$(SWEEP) benchmarks/omniglot.yaml
	$(SWEEP) benchmarks/omniglot-full.yaml --seeds $(C6_SEEDS)
	$(BIN)/siamese-bench report omniglot-c6 omniglot-c6-full --name omniglot-105

bench-omniglot-full: $(STAMP) ## C6 at 105 x 105 (~3 h) and K1 with Koch's net at full width (days on CPU: for a GPU)
	$(SWEEP) benchmarks/omniglot-full.yaml
	$(SWEEP) benchmarks/oneshot-full.yaml
	$(BIN)/siamese-bench report omniglot-c6-full omniglot-k1-full --name omniglot-full

ALL_STUDIES := mnist-ablation mnist-headline-full c4-vectors mnist-mining c5-sequences omniglot-c6 omniglot-k1
bench-all: $(STAMP) ## every default benchmark (MNIST, vectors, mining, sequences, Omniglot with the K1 lever study) and one report of all claims (~65 min)
	$(MAKE) --no-print-directory bench-mnist
	$(MAKE) --no-print-directory bench-vectors
	$(MAKE) --no-print-directory bench-mining
	$(MAKE) --no-print-directory bench-sequences
	$(MAKE) --no-print-directory bench-omniglot
	$(MAKE) --no-print-directory report-all

report-all: $(STAMP) ## rebuild reports/all/report.pdf (every claim) from the MLflow store; EXTRA_STUDIES=omniglot-c6-full adds C6 at 105 px
	$(BIN)/siamese-bench report $(ALL_STUDIES) $(EXTRA_STUDIES) --name all

regress: $(STAMP) $(C4_DATA) ## accuracy checks of C1-C6 and K1 against calibrated prediction bounds (~4 min)
	$(BIN)/siamese-bench regress benchmarks/regress.yaml

bench-throughput: $(STAMP) ## pairs/s of siamese-bench vs a bare PyTorch loop (C1 config)
	$(PY) benchmarks/throughput.py

clean: ## remove tracking stores, reports and caches (not the venv, not downloaded data, not .services/)
	rm -rf mlruns.db mlruns.db.lock mlartifacts mlruns optuna.journal* .pytest_cache reports/*/
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +
