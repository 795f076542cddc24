"""Shared by the report's tests: hand-made runs and evidence (fast, no training), and a small real
study in an MLflow store that the end-to-end build tests share (slow).

Test files cannot import each other (--import-mode=importlib), so the helpers are fixtures that
return the functions: `fake_run(...)` makes an MLflow-like run, `fake_studies(...)` loads
studies from such runs, `fake_evidence(...)` makes one cell's evidence.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from siamese_bench.report.claims import CLAIMS
from siamese_bench.report.evidence import Evidence
from siamese_bench.report.stats import t_interval

RECIPE_PARAMS = {"encoder": "mlp", "optimizer": "rmsprop-keras", "init": "keras", "lr": "0.001", "batch_size": "128"}


# -- hand-made runs and studies -------------------------------------------------------------------


def _run(
    cell: str,
    seed: int,
    acc: float,
    *,
    start: int,
    variant: str = "mnist-5k",
    status: str = "FINISHED",
    phase: str = "grid",
    margin: str | None = "1",
    lr: str = "0.001",
    state: str = "COMPLETE",
    loss: str = "contrastive",
    params: dict | None = None,
    metrics: dict | None = None,
    tags: dict | None = None,
):
    head = cell.split(",")[0].split("=")[1]
    extra_params = params or {}
    params = {
        **RECIPE_PARAMS,
        "lr": lr,
        "seed": str(seed),
        "head": head,
        "loss": loss,
        "epochs": "2",
        "dataset": variant,
        **extra_params,
    }
    if margin is not None:
        params["margin"] = margin
    tags = {
        "cell": cell,
        "seed": str(seed),
        "phase": phase,
        "dataset_variant": variant,
        "head": head,
        "loss": loss,
        "optuna_state": state,
        **(tags or {}),
    }
    metrics = {"test/acc": acc, "test/auc": acc, "test/acc_tuned": acc, "train_eval/acc": acc, **(metrics or {})}
    rid = f"{cell}-{seed}-{variant}-{start}-{phase}"
    info = SimpleNamespace(
        run_id=rid, run_name=rid, status=status, start_time=start, end_time=start + 1, artifact_uri=""
    )
    return SimpleNamespace(info=info, data=SimpleNamespace(tags=tags, params=params, metrics=metrics))


class _Page(list):
    token = None


class _FakeClient:
    """The few MlflowClient calls load_study makes, over hand-made runs per experiment name."""

    def __init__(self, experiments: dict[str, list]):
        self.runs = experiments
        self.exps = {n: SimpleNamespace(name=n, experiment_id=n, lifecycle_stage="active") for n in experiments}

    def get_experiment_by_name(self, name):
        return self.exps.get(name)

    def search_experiments(self, *a, **k):
        return list(self.exps.values())

    def search_runs(self, ids, **k):
        return _Page(self.runs[ids[0]])


def _studies(experiments: dict[str, list], order: list[str]):
    from siamese_bench.report.load import load_study

    client = _FakeClient(experiments)
    return [load_study(client, name, "fake://") for name in order]


def _evidence(variant: str, acc: list[float], auc: list[float]) -> Evidence:
    runs = pd.DataFrame({"seed": range(len(acc))})
    return Evidence("s", variant, "c", 20, runs, t_interval(acc), t_interval(auc), t_interval(acc))


@pytest.fixture(scope="session")
def fake_run():
    """`fake_run(cell, seed, acc, start=...)`: a finished grid run of the recipe on mnist-5k, unless told."""
    return _run


@pytest.fixture(scope="session")
def fake_studies():
    """`fake_studies({name: [runs]}, [names])`: the studies load.py reads from those runs."""
    return _studies


@pytest.fixture(scope="session")
def fake_evidence():
    """`fake_evidence(variant, acc, auc)`: one cell's evidence, a seed per value."""
    return _evidence


@pytest.fixture(scope="session")
def rule_of():
    """The report's claim rows by id."""
    return {row.id: row for row in CLAIMS}


# -- a small real study in an MLflow store ------------------------------------------------------

STUDY = "report-tiny"
SPEC = f"""
    name: {STUDY}
    base: {{dataset: digits, epochs: 2}}
    factors:
      head: [euclidean, subtract-dense, abs-diff-dense]
      loss: [contrastive]
      margin: [1]
    seeds: [0, 1]
"""


@dataclass(frozen=True)
class Store:
    uri: str
    folder: Path  # holds mlruns.db, to copy for tests that change the store
    study: str


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Store:
    """A real sweep: 3 heads x 2 seeds on digits, 2 epochs (about 30 s)."""
    import siamese_bench.sweep.runner as runner
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.sweep.spec import load_spec

    tmp = tmp_path_factory.mktemp("report-store")
    spec = tmp / f"{STUDY}.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    uri = f"sqlite:///{tmp}/mlruns.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "available_cores", lambda: 1)  # one torch thread in the worker
        summary = runner.Sweep(
            load_spec(spec), str(tmp / "optuna.journal"), Tracker(uri), workers=1, progress=False
        ).run()
    assert summary.completed == 6 and summary.failed == 0
    return Store(uri, tmp, STUDY)


@pytest.fixture(scope="session")
def report(store, tmp_path_factory) -> Path:
    """The report of the store's study, named "tiny"."""
    from siamese_bench.report import build_report

    return build_report([store.study], store.uri, tmp_path_factory.mktemp("reports"), "tiny").pdf
