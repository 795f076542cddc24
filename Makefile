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

PHONY_SERVICES := services-up services-down services-status services-bundle services-backup services-restore dashboard soak load
BENCHES := bench-mnist bench-mnist-full bench-mnist-grid-full bench-mnist-tune bench-vectors bench-mining bench-sequences \
	bench-sequences-full bench-oneshot bench-oneshot-full bench-omniglot bench-omniglot-full bench-all
.PHONY: $(PHONY_SERVICES) $(BENCHES) help venv lock test test-fast lint format train decide docs mlflow-ui report \
	report-all regress bench-throughput gpu-check gpu-bundle clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-21s %s\n", $$1, $$2}'

# The venv installs the locked versions (requirements.lock), then the project itself without its dependencies.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

venv: $(STAMP) ## create the virtual environment from requirements.lock (once; again when it or pyproject.toml changes)

lock: ## refresh requirements.lock: resolve pyproject.toml's dependencies and extras in a fresh venv (~5 min)
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q '.[dev,postgres,sequences,slurm,dashboard]'
	{ echo "# pip freeze of pyproject.toml's dependencies and extras dev, postgres, sequences, slurm, dashboard (make lock)"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^siamese-bench' ; } > requirements.lock
	rm -rf .lock-venv

# C4's stand-in data (made offline from mnist-5k), needed by the C4 study and regression check
C4_DATA := datasets/c4/pairs-train.csv
$(C4_DATA): $(STAMP)
	$(BIN)/siamese-bench make-pairs-csv --out datasets/c4/pairs

# pytest processes for make test: most end-to-end tests wait on process start-up and servers,
# so two share 2 cores well (each test file stays in one process: its fixtures are shared)
TEST_WORKERS ?= 2
test: $(STAMP) $(C4_DATA) ## the accuracy regression checks (make regress), then the test suite, SLURM tests included as root (17 min with the venv made, 22 from a fresh clone: docs/performance.md)
	$(BIN)/siamese-bench regress regress
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

test-fast: $(STAMP) ## the quick tests only (no end-to-end runs, no regression checks), for the edit loop (1-2 min, by host)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP) ## ruff check, ruff format --check and mypy, as CI runs them
	$(BIN)/ruff check siamese_bench tests benchmarks
	$(BIN)/ruff format --check siamese_bench tests benchmarks
	$(BIN)/mypy siamese_bench

format: $(STAMP) ## ruff format and ruff check --fix
	$(BIN)/ruff format siamese_bench tests benchmarks
	$(BIN)/ruff check --fix siamese_bench tests benchmarks

train: $(STAMP) ## train one variant: make train HEAD=abs-diff-dense LOSS=bce EPOCHS=5
	$(BIN)/siamese-bench train --dataset $(DATASET) --head $(HEAD) --loss $(LOSS) \
		--margin $(MARGIN) --epochs $(EPOCHS) --seed $(SEED)

CLAIMS ?= examples/own-head/claims.yaml
decide: $(STAMP) ## decide a claims file's rows, adding seeds until each is decided: make decide CLAIMS=mnist-claims
	$(BIN)/siamese-bench decide $(CLAIMS)

docs: $(STAMP) ## docs/results.md, the README's claims table and docs/specs.md from the tracking store and the code
	$(BIN)/siamese-bench docs $(if $(wildcard mlruns.db),--results,)

mlflow-ui: $(STAMP) ## the MLflow UI ($$MLFLOW_TRACKING_URI, else ./mlruns.db) at http://127.0.0.1:5000, with each study's runs URL
	$(BIN)/siamese-bench ui

# Services for sweeps on several machines (PostgreSQL for Optuna, an MLflow server), owned by the project.
# Unset variables mean "as at the last services-up" (.services/services.json), else 127.0.0.1, 55432, 5055.
# SERVICES_HOST=0.0.0.0 (or an address of this machine) serves other machines: TLS and MLflow accounts then.
PG_PORT ?=
MLFLOW_PORT ?=
SERVICES_HOST ?=
SERVICES_ADDRESS ?=
SERVICES_OPTS = $(if $(PG_PORT),--pg-port $(PG_PORT)) $(if $(MLFLOW_PORT),--mlflow-port $(MLFLOW_PORT)) \
	$(if $(SERVICES_HOST),--host $(SERVICES_HOST)) $(foreach a,$(SERVICES_ADDRESS),--address $(a))
ARCHIVE ?=

services-up: $(STAMP) ## start PostgreSQL (port 55432) and an MLflow server (port 5055) under .services/, then `source .services/env` (~10 s; SERVICES_HOST=0.0.0.0 for other machines: TLS + accounts)
	$(BIN)/siamese-bench services up $(SERVICES_OPTS)

services-down: $(STAMP) ## stop the MLflow server, then PostgreSQL (the data stays in .services/)
	$(BIN)/siamese-bench services down $(SERVICES_OPTS)

services-status: $(STAMP) ## one line per service: running/stopped, pid, URL (password masked), and the security in force
	$(BIN)/siamese-bench services status $(SERVICES_OPTS)

services-bundle: $(STAMP) ## write the one file a worker machine needs (.services/bundle-ADDRESS.json; there: siamese-bench services join FILE)
	$(BIN)/siamese-bench services bundle $(SERVICES_OPTS)

services-backup: $(STAMP) ## archive both databases (pg_dump), the MLflow artifacts and the credentials: .services/backups/siamese-bench-services-UTC.tar.gz
	$(BIN)/siamese-bench services backup $(SERVICES_OPTS)

services-restore: $(STAMP) ## rebuild the services from ARCHIVE=... (refuses to overwrite data; FORCE=1 does)
	@test -n "$(ARCHIVE)" || { echo "usage: make services-restore ARCHIVE=.services/backups/siamese-bench-services-....tar.gz" >&2; exit 2; }
	$(BIN)/siamese-bench services restore $(SERVICES_OPTS) $(if $(FORCE),--force) "$(ARCHIVE)"

DASHBOARD_PORT ?= 8080
dashboard: $(STAMP) ## optuna-dashboard on the study storage (SIAMESE_BENCH_STORAGE, else ./optuna.journal) at http://127.0.0.1:8080
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port $(DASHBOARD_PORT) "$${SIAMESE_BENCH_STORAGE:-$(CURDIR)/optuna.journal}"

soak: $(STAMP) ## fault soak, audited: 2 sweeps on one study under kills and restarts (journal, then PostgreSQL with TLS and accounts; as root, ~13 min)
	$(PY) benchmarks/soak.py --storage journal
	$(PY) benchmarks/soak.py --storage postgresql --secure

load: $(STAMP) ## 8 machines (network namespaces) x 2 workers on one study through TLS and accounts: claims/s, latencies, audit (as root, ~6 min)
	$(PY) benchmarks/load.py

WORKERS ?=
SWEEP := $(BIN)/siamese-bench sweep $(if $(WORKERS),--workers $(WORKERS),)
REPORT := $(BIN)/siamese-bench report
# One name per study: the spec siamese_bench/specs/NAME.yaml, the study NAME, reports/NAME/, make bench-NAME.

bench-mnist: $(STAMP) ## C1-C3: the grid on mnist-5k, C1 on full MNIST (3 seeds), report reports/mnist (~11 min on 2 cores)
	$(SWEEP) mnist
	$(SWEEP) mnist-full
	$(REPORT) mnist mnist-full

bench-mnist-full: $(STAMP) ## C1 on full MNIST alone (3 seeds, ~5 min), report reports/mnist-full
	$(SWEEP) mnist-full
	$(REPORT) mnist-full

bench-mnist-grid-full: $(STAMP) ## the whole MNIST grid on full MNIST (~2.5 h on 2 cores, estimated; for a GPU or more time)
	$(SWEEP) mnist-grid-full
	$(SWEEP) mnist-full
	$(REPORT) mnist-grid-full mnist-full

bench-mnist-tune: $(STAMP) ## learning rate tuned per cell with equal TPE budgets and median pruning (~2 min)
	$(SWEEP) mnist-tune
	$(REPORT) mnist-tune

bench-vectors: $(STAMP) $(C4_DATA) ## C4 on a C4-shaped pairs CSV (made from mnist-5k by PCA): baseline + every advice, 10 seeds (~1.5 min)
	$(SWEEP) vectors
	$(REPORT) vectors

bench-mining: $(STAMP) ## C5: random vs batch-hard vs semi-hard triplets on mnist-5k (~2 min)
	$(SWEEP) mining
	$(REPORT) mining

bench-sequences: $(STAMP) ## C5 on sequences: LSTM on JapaneseVowels and MNIST rows, concat/abs-diff + BCE vs triplet mining (~2.5 min)
	$(SWEEP) sequences
	$(REPORT) sequences

bench-sequences-full: $(STAMP) ## the sequence study with 10 seeds, 60 epochs and full MNIST rows (~2 h, estimated)
	$(SWEEP) sequences-full
	$(REPORT) sequences-full

bench-oneshot: $(STAMP) ## K1: 20-way one-shot on Lake's 20 runs, the best CPU design and one lever off per cell, 3 seeds (~30 min)
	$(SWEEP) oneshot
	$(REPORT) oneshot

bench-oneshot-full: $(STAMP) ## K1 with Koch's net at full width on 105 x 105 (days on CPU: for a GPU)
	$(SWEEP) oneshot-full
	$(REPORT) oneshot-full

bench-omniglot: $(STAMP) ## C6 (same alphabet: contrastive vs triplet, negative policies, mix split) at 28 x 28 (~8 min)
	$(SWEEP) omniglot
	$(REPORT) omniglot

C6_SEEDS ?= 0,1,2
bench-omniglot-full: $(STAMP) ## C6 at 105 x 105: seeds C6_SEEDS (~1 h a seed on 2 cores), reported beside the 28 px study
	$(SWEEP) omniglot-full --seeds $(C6_SEEDS)
	$(REPORT) omniglot-full omniglot

ALL_STUDIES := mnist mnist-full vectors mining sequences omniglot oneshot
bench-all: $(STAMP) ## every default benchmark, one report of all claims (reports/all) and the docs' results (~65 min)
	$(MAKE) --no-print-directory bench-mnist bench-vectors bench-mining bench-sequences bench-omniglot bench-oneshot
	$(MAKE) --no-print-directory report-all docs

STUDY ?= mnist
STUDIES_mnist := mnist mnist-full
report: $(STAMP) ## rebuild reports/STUDY/ from the MLflow store, no retraining: make report STUDY=vectors
	$(REPORT) $(or $(STUDIES_$(STUDY)),$(STUDY)) --name $(STUDY)

report-all: $(STAMP) ## rebuild reports/all/report.pdf (every claim) from the MLflow store; EXTRA_STUDIES=omniglot-full adds C6 at 105 px
	$(REPORT) $(ALL_STUDIES) $(EXTRA_STUDIES) --name all

regress: $(STAMP) $(C4_DATA) ## accuracy checks of C1-C6 and K1 against calibrated prediction bounds (~4 min)
	$(BIN)/siamese-bench regress regress

bench-throughput: $(STAMP) ## pairs/s of siamese-bench vs a bare PyTorch loop (C1 config)
	$(PY) benchmarks/throughput.py

gpu-bundle: $(STAMP) ## build/gpu-bundle/: what benchmarks/gpu_check.sh needs on a GPU machine without our venv (source, pydantic wheels, MNIST; ~21 MiB)
	$(PY) benchmarks/gpu_bundle.py build/gpu-bundle

gpu-check: $(STAMP) ## on a CUDA machine: C1 on full MNIST (1 seed, 20 epochs) and the throughput benchmark; else says so
	bash benchmarks/gpu_check.sh

clean: ## remove tracking stores, reports and caches (not the venv, not downloaded data, not .services/)
	rm -rf mlruns.db mlruns.db.lock mlartifacts mlruns optuna.journal* .pytest_cache reports/*/
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +
