"""The sweep: the parent process owns the Optuna studies and the MLflow store; worker
processes train. Resumable: finished trials are kept, trials of a killed sweep are marked
failed and their cells re-run, and each cell x seed completes exactly once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing as mp
import os
import queue
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from tqdm import tqdm

from siamese_bench.sweep.spec import StudySpec
from siamese_bench.sweep.storage import fail_stale_trials, make_storage, owner_attrs
from siamese_bench.sweep.tuning import best_params, counted, make_pruner, suggest, tune_sampler, tune_study_name
from siamese_bench.sweep.worker import PruneTarget, Task, worker_main
from siamese_bench.tracking import Tracker

log = logging.getLogger(__name__)
OBJECTIVE = "val/auc"  # what Optuna records as a trial's value; test metrics are user attrs


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Outcome:
    kind: str  # "done", "pruned" or "failed"
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    epochs: int = 0
    data_variant: str = ""


@dataclass
class SweepSummary:
    study: str
    completed: int = 0
    failed: int = 0
    pruned: int = 0
    stale: int = 0
    seconds: float = 0.0
    tune_epochs_run: int = 0
    tune_epochs_budget: int = 0


class WorkerPool:
    """N spawned workers; the parent dispatches Tasks and applies their tracking messages."""

    def __init__(self, workers: int, tracker: Tracker) -> None:
        ctx = mp.get_context("spawn")  # fork after torch/OpenMP initialisation is unsafe
        self.ctx, self.tracker, self.n = ctx, tracker, workers
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.threads = max(1, available_cores() // workers)  # no oversubscription
        self.procs = [self._spawn() for _ in range(workers)]
        self.run_ids: dict[str, str] = {}

    def _spawn(self):
        p = self.ctx.Process(target=worker_main, args=(self.tasks, self.results, self.threads, os.getpid()),
                             daemon=True)
        p.start()
        return p

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()

    def terminate(self) -> None:
        for p in self.procs:
            p.kill()

    def run(self, next_task: Callable[[], Task | None], on_start: Callable[[Task, str], None],
            on_finish: Callable[[Task, Outcome], None],
            heartbeat: Callable[[list[Task]], None] | None = None) -> None:
        """Keep every worker busy until next_task() returns None and nothing is in flight;
        `heartbeat` is called with the tasks in flight every few seconds."""
        in_flight: dict[str, Task] = {}
        owner: dict[str, int] = {}  # task key -> worker pid
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < self.n:
                task = next_task()
                if task is None:
                    exhausted = True
                    break
                in_flight[task.key] = task
                self.tasks.put(task)
            if not in_flight:
                return
            if heartbeat:
                heartbeat(list(in_flight.values()))
            try:
                kind, key, payload = self.results.get(timeout=5)
            except queue.Empty:
                self._check_workers(in_flight, owner, on_finish)
                continue
            task = in_flight.get(key)
            if task is None:
                continue
            if kind == "begin":
                owner[key] = payload
            elif kind in ("done", "pruned", "failed"):
                del in_flight[key]
                owner.pop(key, None)
                on_finish(task, self._outcome(kind, payload))
            else:
                try:
                    self._apply(kind, task, payload, on_start)
                except Exception as err:  # noqa: BLE001  (a tracking hiccup must not stop the study)
                    log.warning("MLflow %s call for %s failed: %s: %s", kind, task.run_name, type(err).__name__, err)

    def _apply(self, kind: str, task: Task, payload: Any, on_start) -> None:
        if kind == "start":
            experiment, run_name, params, tags, parent = payload
            run_id = self.tracker.start_run(experiment, run_name, params, tags, parent)
            self.run_ids[task.key] = run_id
            on_start(task, run_id)
            return
        run_id = self.run_ids[task.key]
        if kind == "metrics":
            self.tracker.log_metrics(run_id, *payload)
        elif kind == "tags":
            self.tracker.set_tags(run_id, payload)
        elif kind == "artifact":
            path, artifact_path = payload
            self.tracker.log_artifact(run_id, Path(path), artifact_path)
            shutil.rmtree(Path(path).parent, ignore_errors=True)
        elif kind == "end":
            self.tracker.end_run(run_id, payload)

    @staticmethod
    def _outcome(kind: str, payload: Any) -> Outcome:
        if kind == "done":
            metrics, epochs, variant = payload
            return Outcome("done", metrics=metrics, epochs=epochs, data_variant=variant)
        reason, epochs = payload
        return Outcome(kind, reason=reason, epochs=epochs)

    def _check_workers(self, in_flight, owner, on_finish) -> None:
        for i, p in enumerate(self.procs):
            if p.is_alive():
                continue
            dead = [k for k, pid in owner.items() if pid == p.pid]
            for key in dead:
                task = in_flight.pop(key)
                owner.pop(key)
                if key in self.run_ids:
                    self.tracker.end_run(self.run_ids[key], "FAILED")
                on_finish(task, Outcome("failed", reason=f"worker process died (exit code {p.exitcode})"))
            self.procs[i] = self._spawn()


class Sweep:
    def __init__(self, spec: StudySpec, storage_url: str, tracker: Tracker, workers: int,
                 progress: bool = True) -> None:
        self.spec, self.storage_url, self.tracker = spec, storage_url, tracker
        self.workers, self.progress = workers, progress
        self.storage = make_storage(storage_url)
        self.cells = {c.id: c for c in spec.cells()}
        self.summary = SweepSummary(spec.name)

    # -- studies -------------------------------------------------------------------------
    def grid_study(self) -> optuna.Study:
        """The study that holds one trial per cell x seed. The grid point is kept in the trial's
        user attributes, not as Optuna parameters: a categorical parameter's choices are frozen
        with the study, so a spec that gains a seed or a cell could not resume. The parent
        enqueues the missing points itself, so no sampler is involved."""
        study = optuna.create_study(study_name=self.spec.name, storage=self.storage, direction="maximize",
                                    load_if_exists=True)
        old = study.user_attrs.get("spec_fingerprint")
        if old and old != self.spec.fingerprint():
            log.warning("!!! study %s was created from a different spec (fingerprint %s, now %s): "
                        "finished cells are kept, new cells are added", self.spec.name, old, self.spec.fingerprint())
        study.set_user_attr("spec_fingerprint", self.spec.fingerprint())
        study.set_user_attr("spec_path", str(self.spec.path))
        return study

    def ensure_parent_run(self, study: optuna.Study) -> str:
        """One MLflow parent run per study, reused on resume; the two name each other."""
        run_id = study.user_attrs.get("mlflow_parent_run_id")
        client = self.tracker.client
        if run_id:
            try:
                client.update_run(run_id, status="RUNNING")
                return run_id
            except Exception:  # noqa: BLE001  (deleted, or another tracking store)
                log.warning("MLflow parent run %s not found in %s: creating a new one", run_id, self.tracker.uri)
        run_id = self.tracker.start_run(
            self.spec.name, f"study {self.spec.name}",
            params={"spec_path": str(self.spec.path), "cells": len(self.cells), "seeds": self.spec.seeds,
                    "workers": self.workers},
            tags={"optuna_study": self.spec.name, "optuna_storage": self.storage_url, "role": "study",
                  "spec_fingerprint": self.spec.fingerprint()})
        exp_id = self.tracker.experiment_id(self.spec.name)
        client.set_experiment_tag(exp_id, "optuna_study", self.spec.name)
        client.set_experiment_tag(exp_id, "optuna_storage", self.storage_url)
        study.set_user_attr("mlflow_parent_run_id", run_id)
        study.set_user_attr("mlflow_experiment", self.spec.name)
        study.set_user_attr("mlflow_tracking_uri", self.tracker.uri)
        return run_id

    def recover(self, study: optuna.Study) -> None:
        """Fail the trials a killed sweep left RUNNING, then end as KILLED every MLflow run of
        this study still RUNNING for a trial that is not: found by the run's tags, so a run
        started just before the kill, and not yet linked to its trial, is closed too."""
        for trial in fail_stale_trials(study):
            self.summary.stale += 1
            log.warning("trial %d of %s was left RUNNING by a killed sweep: marked FAIL, will re-run",
                        trial.number, study.study_name)
        experiment = self.tracker.client.get_experiment_by_name(self.spec.name)
        if experiment is None:
            return
        running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        orphans = self.tracker.client.search_runs(
            [experiment.experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.optuna_study = '{study.study_name}'")
        for run in orphans:  # trial runs only: the study's parent run carries no optuna_trial
            if "optuna_trial" in run.data.tags and int(run.data.tags["optuna_trial"]) not in running:
                self.tracker.end_run(run.info.run_id, "KILLED")
                self.tracker.set_tags(run.info.run_id, {"optuna_state": "FAIL", "fail_reason": "sweep process died"})

    # -- running ---------------------------------------------------------------------------
    def run(self) -> SweepSummary:
        started = time.perf_counter()
        study = self.grid_study()
        self.recover(study)
        parent = self.ensure_parent_run(study)
        pool = WorkerPool(self.workers, self.tracker)
        status = "FAILED"
        try:
            tuned = self.run_tuning(pool, parent) if self.spec.tune else {}
            self.run_grid(pool, study, parent, tuned)
            status = "FINISHED" if self.summary.failed == 0 else "FAILED"
        except KeyboardInterrupt:
            status = "KILLED"
            pool.terminate()
            raise
        finally:
            pool.close()
            self.summary.seconds = time.perf_counter() - started
            self.tracker.log_metrics(parent, {"sweep_seconds": self.summary.seconds,
                                              "trials_completed": self.summary.completed,
                                              "trials_failed": self.summary.failed})
            self.tracker.end_run(parent, status)
        return self.summary

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit="trial", disable=not self.progress, dynamic_ncols=True)

    def run_grid(self, pool: WorkerPool, study: optuna.Study, parent: str,
                 tuned: dict[str, dict[str, float]]) -> None:
        done = {(t.user_attrs.get("cell"), t.user_attrs.get("seed"))
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        queued = {(t.user_attrs.get("cell"), t.user_attrs.get("seed"))
                  for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))}
        points = [(c, s) for c in self.cells for s in self.spec.seeds]
        for cell_id, seed in points:
            if (cell_id, seed) not in done | queued:
                study.enqueue_trial({}, user_attrs={"cell": cell_id, "seed": seed, **self.cells[cell_id].values})
        todo = len([p for p in points if p not in done])
        log.info("study %s: %d cells x %d seeds = %d trials; %d finished earlier, %d to run",
                 self.spec.name, len(self.cells), len(self.spec.seeds), len(points), len(points) - todo, todo)
        bar = self._bar(todo, "grid")

        def next_task() -> Task | None:
            if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None
            trial = study.ask()
            for k, v in owner_attrs().items():  # first, so a crash from here on leaves a claimed trial
                trial.set_user_attr(k, v)
            if "cell" not in trial.user_attrs or trial.user_attrs["cell"] not in self.cells:
                study.tell(trial, state=TrialState.FAIL)  # not from our queue (a race) or stale cell
                return next_task()
            cell_id, seed = trial.user_attrs["cell"], int(trial.user_attrs["seed"])
            if seed not in self.spec.seeds:  # queued by an earlier spec that had this seed
                study.tell(trial, state=TrialState.FAIL)
                return next_task()
            params = tuned.get(cell_id) or {}
            for k, v in params.items():
                trial.set_user_attr(f"tuned.{k}", v)
            cfg = self.spec.config_for(self.cells[cell_id], seed, params)
            return Task(key=f"grid:{trial.number}", config=dataclasses.asdict(cfg), experiment=self.spec.name,
                        run_name=f"{cell_id} seed={seed}", parent_run_id=parent,
                        tags={"optuna_study": self.spec.name, "optuna_trial": str(trial.number),
                              "cell": cell_id, "phase": "grid",
                              **{f"factor.{k}": str(v) for k, v in self.cells[cell_id].values.items()}})

        self._run_phase(pool, bar, next_task, lambda task: study)
        bar.close()

    def run_tuning(self, pool: WorkerPool, parent: str) -> dict[str, dict[str, float]]:
        tune = self.spec.tune
        studies = {}
        for cell in self.cells.values():
            s = optuna.create_study(study_name=tune_study_name(self.spec, cell), storage=self.storage,
                                    direction="maximize", sampler=tune_sampler(self.spec, cell),
                                    pruner=make_pruner(tune.pruner), load_if_exists=True)
            self.recover(s)
            studies[cell.id] = s
        remaining = {cid: tune.trials_per_cell - counted(s) for cid, s in studies.items()}
        bar = self._bar(sum(max(0, r) for r in remaining.values()), "tuning")
        order = self._round_robin(remaining)

        def next_task() -> Task | None:
            cell_id = next(order, None)
            if cell_id is None:
                return None
            study, cell = studies[cell_id], self.cells[cell_id]
            trial = study.ask()
            for k, v in owner_attrs().items():
                trial.set_user_attr(k, v)
            params = suggest(trial, tune)
            cfg = self.spec.config_for(cell, tune.seed, params)
            target = PruneTarget(study.study_name, self.storage_url, trial._trial_id, tune.pruner, tune.metric)
            return Task(key=f"tune:{cell_id}:{trial.number}", config=dataclasses.asdict(cfg),
                        experiment=self.spec.name, run_name=f"tune {cell_id} #{trial.number}",
                        parent_run_id=parent, prune=target,
                        tags={"optuna_study": study.study_name, "optuna_trial": str(trial.number),
                              "cell": cell_id, "phase": "tune"})

        self._run_phase(pool, bar, next_task, lambda task: studies[task.key.split(":")[1]])
        bar.close()
        best = {}
        for cell_id, s in studies.items():
            trials = s.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            self.summary.tune_epochs_run += sum(t.user_attrs.get("epochs_run", 0) for t in trials)
            self.summary.tune_epochs_budget += len(trials) * self.spec.base.epochs
            params = best_params(s)
            if params:
                best[cell_id] = params
        return best

    @staticmethod
    def _round_robin(remaining: dict[str, int]) -> Iterator[str]:
        left = dict(remaining)
        while any(v > 0 for v in left.values()):
            for cid in left:
                if left[cid] > 0:
                    left[cid] -= 1
                    yield cid

    def _run_phase(self, pool: WorkerPool, bar: tqdm, next_task, study_of) -> None:
        def on_start(task: Task, run_id: str) -> None:
            trial_id = self._trial_id(study_of(task), task)
            self.storage.set_trial_user_attr(trial_id, "mlflow_run_id", run_id)

        def on_finish(task: Task, outcome: Outcome) -> None:
            study = study_of(task)
            number = int(task.tags["optuna_trial"])
            trial_id = self._trial_id(study, task)
            self.storage.set_trial_user_attr(trial_id, "epochs_run", outcome.epochs)
            run_id = pool.run_ids.get(task.key)
            if outcome.kind == "done":
                for k, v in outcome.metrics.items():
                    self.storage.set_trial_user_attr(trial_id, k, v)
                self.storage.set_trial_user_attr(trial_id, "dataset_variant", outcome.data_variant)
                value = outcome.metrics.get(self.spec.tune.metric if task.prune else OBJECTIVE, float("nan"))
                if math.isfinite(value):
                    study.tell(number, value)
                    state = "COMPLETE"
                    self.summary.completed += 1
                else:
                    self.storage.set_trial_user_attr(trial_id, "fail_reason", "objective is not finite")
                    study.tell(number, state=TrialState.FAIL)
                    state = "FAIL"
                    self.summary.failed += 1
                line = (f"{task.run_name}: test acc {outcome.metrics.get('test/acc', float('nan')):.4f}, "
                        f"auc {outcome.metrics.get('test/auc', float('nan')):.4f} "
                        f"({outcome.metrics.get('seconds', 0):.0f} s)"
                        + (" COLLAPSED (embeddings shrank to a point)" if outcome.metrics.get("collapsed") else ""))
            elif outcome.kind == "pruned":
                study.tell(number, state=TrialState.PRUNED)
                state, line = "PRUNED", f"{task.run_name}: {outcome.reason}"
                self.summary.pruned += 1
            else:
                self.storage.set_trial_user_attr(trial_id, "fail_reason", outcome.reason)
                study.tell(number, state=TrialState.FAIL)
                state, line = "FAIL", f"{task.run_name}: FAILED: {outcome.reason}"
                self.summary.failed += 1
            if run_id:
                self.tracker.set_tags(run_id, {"optuna_state": state})
            bar.write(line) if self.progress else log.info(line)
            bar.update(1)

        pool.run(next_task, on_start, on_finish, self._heartbeat(study_of))

    def _heartbeat(self, study_of) -> Callable[[list[Task]], None] | None:
        """RDB storages: record heartbeats for in-flight trials, so a sweep on another machine
        can tell them from trials of a dead process (Optuna records them only in optimize())."""
        if not isinstance(self.storage, RDBStorage):
            return None
        interval = self.storage.get_heartbeat_interval() or 30
        last = {"t": 0.0}

        def beat(tasks: list[Task]) -> None:
            if time.monotonic() - last["t"] >= interval:
                last["t"] = time.monotonic()
                for task in tasks:
                    self.storage.record_heartbeat(self._trial_id(study_of(task), task))

        return beat

    @staticmethod
    def _trial_id(study: optuna.Study, task: Task) -> int:
        number = int(task.tags["optuna_trial"])
        return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)  # noqa: SLF001
