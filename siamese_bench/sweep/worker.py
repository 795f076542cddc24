"""Worker processes: run one training task at a time and stream its tracking calls back.

Only the parent writes to MLflow (a SQLite store shared by writers locks up), so a worker
gets a QueueTracker: the same calls as tracking.Tracker, sent as messages. Each worker talks
to the parent over its own pipe: a worker killed mid-task takes no shared queue lock with it,
and the parent knows which task it held.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from siamese_bench.core import plugins
from siamese_bench.core.config import TrainConfig
from siamese_bench.infra import forkserver
from siamese_bench.infra.allocator import keep_freed_memory
from siamese_bench.infra.run_tracker import RunTracker
from siamese_bench.sweep import messages as msg


@dataclass(frozen=True)
class PruneTarget:
    """Where a tuning trial reports its per-epoch metric (the worker talks to Optuna)."""

    study_name: str
    storage_url: str
    trial_id: int
    pruner: str
    metric: str


@dataclass(frozen=True)
class Task:
    key: str  # unique within the sweep, e.g. "grid:17"
    config: TrainConfig  # checked where it entered (spec load): built from as it is
    experiment: str
    run_name: str
    parent_run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    prune: PruneTarget | None = None
    plugins: tuple[str, ...] = ()  # loaded by the worker before it builds the task (docs/extending.md)


class PrunedError(RuntimeError):
    run_status = "KILLED"


class QueueTracker(RunTracker):
    """The RunTracker of a worker: every call becomes a message to the parent process, which
    makes it on its own Tracker (run ids are the task's key until then)."""

    def __init__(self, results, key: str) -> None:
        self.results, self.key = results, key

    def start_run(self, experiment, run_name, params, tags, parent_run_id=None) -> str:
        self.results.put(msg.StartRun(self.key, experiment, run_name, params, tags, parent_run_id))
        return self.key

    def log_metrics(self, run_id, metrics, step=None) -> None:
        self.results.put(msg.LogMetrics(self.key, metrics, step))

    def set_tags(self, run_id, tags) -> None:
        self.results.put(msg.SetTags(self.key, tags))

    def log_dataset(self, run_id, info) -> None:
        self.results.put(msg.LogDataset(self.key, info))

    def log_artifact(self, run_id, path, artifact_path=None) -> None:
        # The caller deletes its file when we return; the parent deletes this folder once logged.
        copy = Path(tempfile.mkdtemp(prefix="siamese-bench-artifact-")) / Path(path).name
        shutil.copy(path, copy)
        self.results.put(msg.LogArtifact(self.key, str(copy), artifact_path))

    def end_run(self, run_id, status="FINISHED") -> None:
        self.results.put(msg.EndRun(self.key, status))


class EpochCounter(pl.Callback):
    def __init__(self, parent_pid: int) -> None:
        self.epochs = 0
        self.parent_pid = parent_pid  # the fork server's, which exits when the sweep does

    def on_validation_end(self, trainer, module) -> None:
        self.epochs += 1
        if os.getppid() != self.parent_pid:  # orphaned: the sweep was killed
            raise SystemExit(1)


class OptunaPruning(pl.Callback):
    """Reports the validation metric per epoch and prunes (Lightning-namespace agnostic)."""

    def __init__(self, target: PruneTarget) -> None:
        import optuna

        from siamese_bench.sweep.optuna_api import trial_handle
        from siamese_bench.sweep.storage import make_storage
        from siamese_bench.sweep.tuning import make_pruner

        study = optuna.load_study(
            study_name=target.study_name, storage=make_storage(target.storage_url), pruner=make_pruner(target.pruner)
        )
        self.trial = trial_handle(study, target.trial_id)
        self.metric = target.metric

    def on_validation_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise PrunedError(f"pruned at epoch {trainer.current_epoch}: {self.metric}={float(value):.4f}")


class PipeOutbox:
    """The worker's end of its pipe, with a queue's put()."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def put(self, message) -> None:
        self.conn.send(message)


def worker_main(conn, threads: int, environ: dict[str, str]) -> None:
    """Loop: take a Task from the pipe, train, report "done"/"pruned"/"failed"; None ends it.
    `environ` is the sweep's environment when it started this worker (data folders, secrets)."""
    parent_pid = forkserver.become_worker(environ)  # a sweep that dies takes the server down, and it us
    keep_freed_memory()
    import torch

    from siamese_bench.data import load_dataset
    from siamese_bench.training.run import DivergedError, run_training

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning_fabric", "mlflow", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets: dict[str, Any] = {}  # loaded once per worker
    results = PipeOutbox(conn)
    while (task := conn.recv()) is not None:
        results.put(msg.Begin(task.key, os.getpid()))
        counter = EpochCounter(parent_pid)
        try:
            for name in task.plugins:  # once per worker process: loading is idempotent
                plugins.load(name)
            cfg = task.config
            if cfg.dataset not in datasets:
                datasets[cfg.dataset] = load_dataset(cfg.dataset)
            callbacks = [counter] + ([OptunaPruning(task.prune)] if task.prune else [])
            result = run_training(
                cfg,
                tracker=QueueTracker(results, task.key),
                experiment=task.experiment,
                data=datasets[cfg.dataset],
                parent_run_id=task.parent_run_id,
                run_name=task.run_name,
                extra_tags=task.tags,
                callbacks=callbacks,
                progress=False,
            )
            results.put(msg.Done(task.key, result.metrics, counter.epochs, result.data_variant))
        except PrunedError as err:
            results.put(msg.Pruned(task.key, str(err), counter.epochs))
        except DivergedError as err:  # the method failed: an outcome of the design under test
            results.put(msg.Failed(task.key, f"{type(err).__name__}: {err}", counter.epochs, "diverged"))
        except Exception as err:  # noqa: BLE001  (any failure fails this trial alone)
            results.put(msg.Failed(task.key, f"{type(err).__name__}: {err}", counter.epochs, "error"))
