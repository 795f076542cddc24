"""Shared fixtures for the siamese_bench test suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

# The models under test are tiny: one thread is as fast, and it keeps the suite from crawling
# when another job shares the 2-core machine (OpenMP oversubscription made steps 100x slower).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_default_tracking_store(tmp_path, monkeypatch):
    """A test that forgets --tracking-uri must not write mlruns.db into the repository."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/stray-mlruns.db")


@pytest.fixture(scope="session")
def _empty_mlflow_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables, made once per test process: MLflow builds a new
    store by running every schema migration (~1.5 s, 5 s on a busy machine)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlruns.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlruns(tmp_path, _empty_mlflow_store) -> str:
    """The tracking URI of a new, empty SQLite store in tmp_path (mlruns.db, a copy of the template)."""
    target = tmp_path / "mlruns.db"
    shutil.copyfile(_empty_mlflow_store, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def digits():
    """sklearn's 8x8 digits with the package's fixed 80/20 split (small, real, offline)."""
    from siamese_bench.data import load_dataset

    return load_dataset("digits")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory):
    """A real PostgreSQL 15 cluster for the session (skipped, saying why, where it is not installed)."""
    from servers import start_throwaway_cluster

    yield from start_throwaway_cluster(tmp_path_factory)


@pytest.fixture(scope="session")
def mlflow_server(pg_cluster):
    """A real MLflow tracking server on pg_cluster, as `make services-up` starts one."""
    from servers import start_mlflow_server

    yield from start_mlflow_server(pg_cluster)
