"""Worker processes: run one job at a time (one training task, or one cell's seeds trained as
one stack) and stream each task's tracking calls back under its own key.

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
        self.on_train_epoch_end(trainer, module)

    def on_train_epoch_end(self, trainer, module) -> None:  # a stack validates its seeds itself, here
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
    """Loop: take a job (a tuple of Tasks) from the pipe, train it, report each task's
    "done"/"pruned"/"failed"; None ends it. `environ` is the sweep's environment when it
    started this worker (data folders, secrets)."""
    parent_pid = forkserver.become_worker(environ)  # a sweep that dies takes the server down, and it us
    keep_freed_memory()
    import torch

    from siamese_bench.training.run import DivergedError, run_training
    from siamese_bench.training.stacked import STACK_SIZE_TAG

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning_fabric", "mlflow", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets: dict[str, Any] = {}  # loaded once per worker
    results = PipeOutbox(conn)
    while (job := conn.recv()) is not None:
        for task in job:
            results.put(msg.Begin(task.key, os.getpid()))
        if len(job) > 1:
            _run_stack(job, results, datasets, EpochCounter(parent_pid))
            continue
        task = job[0]
        counter = EpochCounter(parent_pid)
        try:
            _load(task, datasets)
            cfg = task.config
            callbacks = [counter] + ([OptunaPruning(task.prune)] if task.prune else [])
            result = run_training(
                cfg,
                tracker=QueueTracker(results, task.key),
                experiment=task.experiment,
                data=datasets[cfg.dataset],
                parent_run_id=task.parent_run_id,
                run_name=task.run_name,
                extra_tags={**task.tags, STACK_SIZE_TAG: "1"},
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


def _load(task: Task, datasets: dict[str, Any]) -> None:
    """The task's plugins and dataset, once per worker process (loading a plugin is idempotent)."""
    from siamese_bench.data import load_dataset

    for name in task.plugins:
        plugins.load(name)
    if task.config.dataset not in datasets:
        datasets[task.config.dataset] = load_dataset(task.config.dataset)


def _run_stack(job: tuple[Task, ...], results: PipeOutbox, datasets: dict[str, Any], counter: EpochCounter) -> None:
    """One cell's seeds as one stack (training/seeds.py), each task's runs and ending reported
    under its own key the moment it is known; a seed that fails fails its task alone. Seeds a
    part of the design cannot stack train one at a time here (one line says why)."""
    from siamese_bench.training.run import DivergedError
    from siamese_bench.training.seeds import SeedOutcome, SeedRun, run_seeds

    by_seed = {task.config.seed: task for task in job}
    ended: set[str] = set()

    def report(outcome: SeedOutcome) -> None:
        task = by_seed[outcome.seed]
        ended.add(task.key)
        if outcome.result is not None:
            results.put(msg.Done(task.key, outcome.result.metrics, outcome.epochs, outcome.result.data_variant))
        else:
            err = outcome.error
            kind = "diverged" if isinstance(err, DivergedError) else "error"
            results.put(msg.Failed(task.key, f"{type(err).__name__}: {err}", outcome.epochs, kind))

    runs = [
        SeedRun(t.config.seed, QueueTracker(results, t.key), t.experiment, t.run_name, t.parent_run_id, t.tags)
        for t in job
    ]
    try:
        _load(job[0], datasets)
        cfg = job[0].config
        if any(t.config.model_copy(update={"seed": cfg.seed}) != cfg for t in job):
            raise ValueError("a stack's tasks differ in more than their seed")  # the claim's rule: a bug here
        run_seeds(
            cfg,
            runs,
            stack_size=len(job),
            data=datasets[cfg.dataset],
            progress=False,
            accelerator=_accelerator(),
            callbacks=[counter],
            on_done=report,
        )
    except Exception as err:  # noqa: BLE001  (the stack's own failure fails each task it left)
        for task in job:
            if task.key not in ended:
                results.put(msg.Failed(task.key, f"{type(err).__name__}: {err}", 0, "error"))


def _accelerator() -> str:
    from siamese_bench.training.device import training_device

    return training_device().type
