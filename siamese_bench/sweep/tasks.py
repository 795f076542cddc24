"""The Task a sweep hands a worker for one claimed trial: its configuration, its MLflow run's
name and tags (trial, cell, phase, host, plugins) under the study's parent run."""

from __future__ import annotations

import socket
from typing import Protocol

import optuna

from siamese_bench.core.config import TrainConfig
from siamese_bench.sweep.parent_run import ParentRun
from siamese_bench.sweep.spec import StudySpec
from siamese_bench.sweep.worker import PruneTarget, Task


class Sweep(Protocol):
    """What of the sweep (sweep/runner.py) a task is made from."""

    spec: StudySpec
    parent: ParentRun
    plugin_tags: dict[str, str]
    plugins: tuple[str, ...]


def sweep_task(
    sweep: Sweep,
    key: str,
    cfg: TrainConfig,
    run_name: str,
    trial: optuna.Trial,
    cell_id: str,
    phase: str,
    tags: dict[str, str] | None = None,
    prune: PruneTarget | None = None,
) -> Task:
    """The task of `trial` (a grid point's or a tuning trial's) in `sweep`."""
    return Task(
        key=key,
        config=cfg,
        experiment=sweep.spec.name,
        run_name=run_name,
        parent_run_id=sweep.parent.run_id,
        prune=prune,
        tags={
            "optuna_study": trial.study.study_name,
            "optuna_trial": str(trial.number),
            "cell": cell_id,
            "phase": phase,
            "host": socket.gethostname(),
            **sweep.plugin_tags,
            **(tags or {}),
        },
        plugins=sweep.plugins,
    )
