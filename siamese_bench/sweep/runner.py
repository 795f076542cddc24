"""The sweep: claims grid points from the Optuna study, trains them in worker processes, and
records every run in MLflow. Any number of sweeps, on one machine or many, can work on one
study at once:

- claiming a point, recovering the trials of a dead sweep, and creating or ending the study's
  MLflow parent run happen under one lock per study held in the database (storage.study_lock),
  so no two sweeps act on the same check, and each cell x seed is trained once;
- a sweep that dies is found by its PID (same machine) or by its missing heartbeats (another
  machine, RDB storage); its trials fail and their points are claimed again;
- a sweep with nothing left to claim waits while other sweeps still run trials, so the study's
  parent run ends when the whole study is done, and a dying machine's points are picked up;
- a database or tracking server that goes away for a while is waited for (retry.Retrier).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from siamese_bench.core.redact import mask_url
from siamese_bench.core.store import STUDY_CELLS
from siamese_bench.infra.retry import Retrier, StorageUnavailable
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep import messages as msg
from siamese_bench.sweep.spec import StudySpec
from siamese_bench.sweep.storage import (
    Heartbeats,
    claimed_trial,
    fail_stale_trials,
    make_storage,
    new_claim_token,
    new_claimed_trial,
    study_lock,
)
from siamese_bench.sweep.tuning import best_params, make_pruner, suggest, tune_sampler, tune_study_name
from siamese_bench.sweep.worker import PruneTarget, Task, worker_main

log = logging.getLogger(__name__)
OBJECTIVE = "val/auc"  # what Optuna records as a trial's value; test metrics are user attrs
MAX_ERROR_ATTEMPTS = 3  # a point whose training raises this often is left failed (a bug, not bad luck)

Point = tuple[str, int]  # (cell id, seed)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def failure_kind(trial: FrozenTrial) -> str:
    """Why a FAIL trial failed: "diverged" (the method: NaN loss, a non-finite objective; never
    re-run), "error" (training raised: re-run up to MAX_ERROR_ATTEMPTS), "lost" (its process or
    machine died: always re-run), "superseded" (a trial queued by hand,
    from before claims created their own trials; ignored)."""
    kind = trial.user_attrs.get("failure")
    if kind:
        return str(kind)
    reason = str(trial.user_attrs.get("fail_reason", ""))  # trials recorded before "failure" existed
    if "DivergedError" in reason or "not finite" in reason:
        return "diverged"
    if "died" in reason or "killed" in reason:
        return "lost"
    return "error"


@dataclass
class Outcome:
    kind: str  # "done", "pruned" or "failed"
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    epochs: int = 0
    data_variant: str = ""
    failure: str = "error"  # for "failed": diverged, error or lost (see failure_kind)


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
    study_done: bool = False  # every point settled (this sweep or another finished the rest)
    points_failed: int = 0  # points of the study settled as failed, by any sweep
    seeds_left: list[int] = field(default_factory=list)  # seeds --seeds left open for a later sweep


class HeartbeatThread:
    """Records a heartbeat for each trial this sweep runs, every `interval` seconds, on its own
    thread: a main loop blocked in a slow upload or a server outage must not look dead."""

    def __init__(self, storage: RDBStorage, interval: float) -> None:
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeats", daemon=True)
        self._thread.start()

    def add(self, trial_id: int) -> None:
        self.beat(trial_id)
        with self._lock:
            self.trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.discard(trial_id)

    def beat(self, trial_id: int) -> None:
        try:
            self.storage.record_heartbeat(trial_id)
        except Exception as err:  # noqa: BLE001  (an outage: the next beat tries again)
            log.debug("heartbeat for trial id %d not recorded: %s", trial_id, type(err).__name__)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self.trial_ids)
            for trial_id in ids:
                self.beat(trial_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)


@dataclass
class WorkerHandle:
    proc: Any  # multiprocessing Process
    conn: Any  # the parent's end of the worker's pipe
    task: Task | None = None  # what it works on now


class WorkerPool:
    """N spawned workers, one pipe each; the parent dispatches Tasks and applies their
    tracking messages. A worker that dies is seen at once (its pipe closes), its task is
    reported lost, and a new worker takes its place."""

    def __init__(self, workers: int, tracker: Tracker, threads: int | None = None) -> None:
        self.ctx = mp.get_context("spawn")  # fork after torch/OpenMP initialisation is unsafe
        self.tracker, self.n = tracker, workers
        self.threads = threads or max(1, available_cores() // workers)  # no oversubscription
        self.workers = [self._spawn() for _ in range(workers)]
        self.run_ids: dict[str, str] = {}
        self.ended: set[str] = set()  # task keys whose MLflow run was ended by its worker

    def _spawn(self) -> WorkerHandle:
        ours, theirs = self.ctx.Pipe(duplex=True)
        p = self.ctx.Process(target=worker_main, args=(theirs, self.threads, os.getpid()), daemon=True)
        p.start()
        theirs.close()
        return WorkerHandle(p, ours)

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self.workers:
            w.proc.join(timeout=10)
            if w.proc.is_alive():
                w.proc.kill()
            w.conn.close()

    def terminate(self) -> None:
        for w in self.workers:
            w.proc.kill()

    def run(self, next_task: Callable[[], Task | None], on_start: Callable[[Task, str], None],
            on_finish: Callable[[Task, Outcome], None], settled: Callable[[], bool], poll: float = 2.0,
            housekeeping: Callable[[], None] | None = None, every: float = 10.0) -> None:
        """Keep every worker busy. next_task() returns None when nothing can be claimed now;
        then the pool tries again every `poll` seconds, and returns once nothing is in flight
        here and settled() says no trial is left anywhere. While every worker is busy,
        housekeeping() runs every `every` seconds (a claim does the same checks), so a dead
        sweep's trials are failed promptly even when no worker here is free."""
        next_claim, last_check = 0.0, time.monotonic()
        while True:
            busy = [w for w in self.workers if w.task is not None]
            if housekeeping and len(busy) == self.n and time.monotonic() - last_check >= every:
                last_check = time.monotonic()
                try:
                    housekeeping()
                except Exception as err:  # noqa: BLE001  (an outage: the next round tries again)
                    log.warning("check for dead sweeps failed: %s", err)
            if len(busy) < self.n and time.monotonic() >= next_claim:
                last_check = time.monotonic()
                for w in self.workers:
                    if w.task is not None:
                        continue
                    task = next_task()
                    if task is None:
                        next_claim = time.monotonic() + poll
                        break
                    w.task = task
                    try:
                        w.conn.send(task)
                    except OSError:  # it died while idle: the task goes back, a new worker comes
                        self._lost(w, on_finish)
                        next_claim = 0.0
                busy = [w for w in self.workers if w.task is not None]
            if not busy:
                if settled():
                    return
                time.sleep(max(0.0, next_claim - time.monotonic()))
                continue
            by_conn = {w.conn: w for w in busy}
            by_sentinel = {w.proc.sentinel: w for w in busy}
            for ready in mp_connection.wait([*by_conn, *by_sentinel], timeout=min(poll, 5)):
                w = by_conn.get(ready) or by_sentinel.get(ready)
                if w.task is None:
                    continue
                if ready in by_conn:
                    if self._receive(w, on_start, on_finish):
                        next_claim = 0.0  # a worker is free: claim at once
                elif not w.conn.poll():  # died, and nothing it sent is left to read
                    self._lost(w, on_finish)

    def _receive(self, w: WorkerHandle, on_start, on_finish) -> bool:
        """Handle one message from `w`; True when its task ended."""
        task = w.task
        try:
            message = w.conn.recv()
        except (EOFError, OSError):
            self._lost(w, on_finish)
            return True
        if message.key != task.key or isinstance(message, msg.Begin):
            return False
        if isinstance(message, msg.ENDINGS):
            w.task = None
            on_finish(task, self._outcome(message))
            return True
        try:
            self._apply(message, task, on_start)
        except Exception as err:  # noqa: BLE001  (a tracking hiccup must not stop the study)
            log.warning("MLflow %s call for %s failed: %s: %s", type(message).__name__, task.run_name,
                        type(err).__name__, err)
        return False

    def _lost(self, w: WorkerHandle, on_finish) -> None:
        task, w.task = w.task, None
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        w.conn.close()
        self.workers[self.workers.index(w)] = self._spawn()
        on_finish(task, Outcome("failed", reason=f"lost: worker process died (exit code {code})", failure="lost"))

    def _apply(self, message: msg.Message, task: Task, on_start) -> None:
        """Make a worker's tracking call on the parent's tracker."""
        if isinstance(message, msg.StartRun):
            run_id = self.tracker.start_run(message.experiment, message.run_name, message.params, message.tags,
                                            message.parent_run_id)
            self.run_ids[task.key] = run_id
            on_start(task, run_id)
            return
        run_id = self.run_ids[task.key]
        match message:
            case msg.LogMetrics(metrics=metrics, step=step):
                self.tracker.log_metrics(run_id, metrics, step)
            case msg.SetTags(tags=tags):
                self.tracker.set_tags(run_id, tags)
            case msg.LogDataset(info=info):
                self.tracker.log_dataset(run_id, info)
            case msg.LogArtifact(path=path, artifact_path=artifact_path):
                self.tracker.log_artifact(run_id, Path(path), artifact_path)
                shutil.rmtree(Path(path).parent, ignore_errors=True)
            case msg.EndRun(status=status):
                self.tracker.end_run(run_id, status)
                self.ended.add(task.key)

    @staticmethod
    def _outcome(message: msg.Message) -> Outcome:
        match message:
            case msg.Done(metrics=metrics, epochs=epochs, data_variant=variant):
                return Outcome("done", metrics=metrics, epochs=epochs, data_variant=variant)
            case msg.Pruned(reason=reason, epochs=epochs):
                return Outcome("pruned", reason=reason, epochs=epochs)
            case msg.Failed(reason=reason, epochs=epochs, failure=failure):
                return Outcome("failed", reason=reason, epochs=epochs, failure=failure)
        raise TypeError(f"not a task ending: {message!r}")


class Sweep:
    def __init__(self, spec: StudySpec, storage_url: str, tracker: Tracker, workers: int,
                 progress: bool = True, heartbeats: Heartbeats | None = None, outage: float = 300.0,
                 poll: float = 2.0, threads: int | None = None, seeds: Sequence[int] | None = None) -> None:
        self.spec, self.storage_url, self.tracker = spec, storage_url, tracker
        self.workers, self.progress, self.poll, self.threads = workers, progress, poll, threads
        self.heartbeats = heartbeats or Heartbeats()
        self.retry = Retrier(outage)
        self.storage = make_storage(storage_url, self.heartbeats)
        self.cells = {c.id: c for c in spec.cells()}
        self.all_points: list[Point] = [(c, s) for c in self.cells for s in spec.seeds]
        self.seeds = spec.chosen_seeds(seeds)  # what this sweep claims; `all_points` decide the study
        self.points: list[Point] = [(c, s) for c, s in self.all_points if s in self.seeds]
        self.summary = SweepSummary(spec.name)
        self.mine: set[int] = set()  # trial ids this sweep runs now (never stale while in here)
        self.claiming: str | None = None  # token of the claim in progress, kept across its retries
        self.trial_ids: dict[str, int] = {}  # task key -> Optuna trial id, noted at claim
        self.beats: HeartbeatThread | None = None
        self.parent: str | None = None

    # -- coordination ----------------------------------------------------------------------
    def claim_locked(self, what: str, fn: Callable[[], Task | None]) -> Task | None:
        """One claim under the study lock, its retries sharing one token: a retry adopts the
        trial an attempt cut short by an outage created, instead of leaving it RUNNING."""
        self.claiming = new_claim_token()
        try:
            return self.locked(what, fn)
        finally:
            self.claiming = None

    def locked(self, what: str, fn: Callable[[], Any], retry: Retrier | None = None) -> Any:
        """fn() under the study lock, tried again from the start after a server outage."""
        def attempt():
            with study_lock(self.storage_url, self.spec.name):
                return fn()
        return (retry or self.retry)(attempt, f"{what} ({mask_url(self.storage_url)})")

    def recover(self, study: optuna.Study) -> int:
        """Fail the trials of dead sweeps (call under the lock), then end as KILLED their MLflow
        runs. Returns how many trials were recovered."""
        stale = fail_stale_trials(study, mine=self.mine, claiming=self.claiming)
        for trial in stale:
            self.summary.stale += 1
            log.warning("trial %d of %s (%s) was left RUNNING by a dead sweep on %s: failed, its point re-runs",
                        trial.number, study.study_name, trial.user_attrs.get("cell", "?"),
                        trial.user_attrs.get("host", "?"))
        if stale:
            self.close_orphan_runs(study)
        return len(stale)

    def close_orphan_runs(self, study: optuna.Study) -> None:
        """End as KILLED every MLflow run of the study still RUNNING for a trial that is not:
        found by the run's tags, so a run started just before a kill, and not yet linked to its
        trial, is closed too. A live sweep's runs belong to RUNNING trials and are left alone."""
        experiment = self.tracker.get_experiment(self.spec.name)
        if experiment is None:
            return
        running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        for run in self.tracker.search_runs(experiment, f"attributes.status = 'RUNNING' and "
                                                        f"tags.optuna_study = '{study.study_name}'"):
            if "optuna_trial" in run.data.tags and int(run.data.tags["optuna_trial"]) not in running:
                self.tracker.set_tags(run.info.run_id, {"optuna_state": "FAIL", "fail_reason": "lost: sweep died"})
                self.tracker.end_run(run.info.run_id, "KILLED")

    # -- studies -------------------------------------------------------------------------
    def grid_study(self) -> optuna.Study:
        """The study that holds one trial per cell x seed. The grid point is kept in the trial's
        user attributes, not as Optuna parameters: a categorical parameter's choices are frozen
        with the study, so a spec that gains a seed or a cell could not resume. Points are
        claimed under the study lock, so no sampler is involved."""
        def open_study():
            study = optuna.create_study(study_name=self.spec.name, storage=self.storage, direction="maximize",
                                        load_if_exists=True)
            old = study.user_attrs.get("spec_fingerprint")
            if old != self.spec.fingerprint():
                if old:
                    log.warning("!!! study %s was created from a different spec (fingerprint %s, now %s): "
                                "finished cells are kept, new cells are added", self.spec.name, old,
                                self.spec.fingerprint())
                study.set_user_attr("spec_fingerprint", self.spec.fingerprint())
                study.set_user_attr("spec_path", str(self.spec.path))
            return study
        return self.locked("open study", open_study)

    def ensure_parent_run(self, study: optuna.Study) -> str:
        """One MLflow parent run per study, created by whichever sweep comes first (under the
        lock) and reused by the others and on resume; the run and the study name each other."""
        run_id = study.user_attrs.get("mlflow_parent_run_id")
        if run_id:
            status = self.tracker.run_status(run_id)
            if status is not None:
                if status != "RUNNING" and self._open_points(study):
                    self.tracker.set_status(run_id, "RUNNING")  # resumed, or the spec grew
                if self.tracker.run_tags(run_id).get("spec_fingerprint") != self.spec.fingerprint():
                    self._record_cells(run_id)
                return run_id
            log.warning("MLflow parent run %s not found in %s: creating a new one", run_id,
                        mask_url(self.tracker.uri))
        run_id = self.tracker.start_run(
            self.spec.name, f"study {self.spec.name}",
            params={"spec_path": str(self.spec.path), "cells": len(self.cells), "seeds": self.spec.seeds},
            tags={"optuna_study": self.spec.name, "optuna_storage": mask_url(self.storage_url), "role": "study",
                  "spec_fingerprint": self.spec.fingerprint()})
        self.tracker.set_experiment_tags(self.spec.name, {"optuna_study": self.spec.name,
                                                          "optuna_storage": mask_url(self.storage_url)})
        self._record_cells(run_id)
        study.set_user_attr("mlflow_parent_run_id", run_id)
        study.set_user_attr("mlflow_experiment", self.spec.name)
        study.set_user_attr("mlflow_tracking_uri", mask_url(self.tracker.uri))
        return run_id

    def _record_cells(self, run_id: str) -> None:
        """The spec's cells and seeds as the parent run's artifact, so a report lists the cells
        that never ran without reading (or importing) the spec."""
        cells = {"cells": [c.id for c in self.spec.cells()], "seeds": self.spec.seeds,
                 "fingerprint": self.spec.fingerprint()}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(STUDY_CELLS).name
            path.write_text(json.dumps(cells, indent=1))
            self.tracker.log_artifact(run_id, path, str(Path(STUDY_CELLS).parent))
        self.tracker.set_tags(run_id, {"spec_fingerprint": self.spec.fingerprint()})

    def _point_states(self, study: optuna.Study) -> dict[Point, str]:
        """Each point's state over all trials: complete, diverged, failed (errors used up),
        running, or open (to be claimed)."""
        state: dict[Point, str] = {}
        errors: Counter[Point] = Counter()
        for t in study.get_trials(deepcopy=False):
            p = (t.user_attrs.get("cell"), t.user_attrs.get("seed"))
            if t.state == TrialState.COMPLETE:
                state[p] = "complete"
            elif t.state == TrialState.RUNNING and state.get(p) != "complete":
                state[p] = "running"
            elif t.state == TrialState.FAIL:
                kind = failure_kind(t)
                if kind == "diverged" and state.get(p) not in ("complete", "running"):
                    state[p] = "diverged"
                elif kind == "error":
                    errors[p] += 1
        return {p: state.get(p) or ("failed" if errors[p] >= MAX_ERROR_ATTEMPTS else "open") for p in self.all_points}

    def _open_points(self, study: optuna.Study) -> list[Point]:
        return [p for p, s in self._point_states(study).items() if s == "open"]

    # -- running ---------------------------------------------------------------------------
    def run(self) -> SweepSummary:
        started = time.perf_counter()
        study = self.grid_study()

        def setup():
            self.recover(study)
            self.close_orphan_runs(study)
            return self.ensure_parent_run(study)

        self.parent = self.locked("start study", setup)
        if isinstance(self.storage, RDBStorage):
            self.beats = HeartbeatThread(self.storage, self.heartbeats.interval)
        pool = WorkerPool(self.workers, self.tracker, self.threads)
        interrupted = storage_down = False
        try:
            tuned = self.run_tuning(pool) if self.spec.tune else {}
            self.run_grid(pool, study, tuned)
        except KeyboardInterrupt:
            interrupted = True
            pool.terminate()
            raise
        except StorageUnavailable:
            storage_down = True  # no second wait for it below; the next sweep resumes
            pool.terminate()
            raise
        finally:
            pool.close()
            if self.beats:
                self.beats.stop()
            self.mine.clear()
            self.summary.seconds = time.perf_counter() - started
            if not storage_down:
                try:
                    self.locked("end study", lambda: self.finish(study, interrupted))
                except Exception as err:  # noqa: BLE001  (the trials are safe; the parent run can wait)
                    log.warning("could not update the study's MLflow run: %s", err)
        return self.summary

    def finish(self, study: optuna.Study, interrupted: bool) -> None:
        """End the parent run when the study is done; whichever sweep sees that first does it.
        An interrupted sweep marks it KILLED only if no other sweep still runs trials."""
        if interrupted:
            self.recover(study)  # our own trials, now that `mine` is empty
        states = self._point_states(study)
        done = all(s in ("complete", "diverged", "failed") for s in states.values())
        mine_done = all(states[p] in ("complete", "diverged", "failed") for p in self.points)
        self.summary.study_done = done
        self.summary.seeds_left = sorted({s for (_, s), st in states.items() if s not in self.seeds and st == "open"})
        self.summary.points_failed = sum(s in ("diverged", "failed") for s in states.values())
        others_running = bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if self.parent is None or self.tracker.run_status(self.parent) != "RUNNING":
            return
        if done:
            self.close_orphan_runs(study)
            complete = sum(s == "complete" for s in states.values())
            self.tracker.log_metrics(self.parent, {"trials_completed": complete,
                                                   "points_failed": self.summary.points_failed,
                                                   "sweep_seconds": self.summary.seconds})
            self.tracker.end_run(self.parent, "FINISHED" if self.summary.points_failed == 0 else "FAILED")
        elif (interrupted or mine_done) and not others_running:  # stopped, or --seeds left the rest open
            self.tracker.end_run(self.parent, "KILLED")

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit="trial", disable=not self.progress, dynamic_ncols=True)

    def run_grid(self, pool: WorkerPool, study: optuna.Study, tuned: dict[str, dict[str, float]]) -> None:
        states = self.locked("count points", lambda: self._point_states(study))
        todo = sum(states[p] in ("open", "running") for p in self.points)
        log.info("study %s: %d cells x %d seeds = %d trials%s; %d settled earlier, %d to run",
                 self.spec.name, len(self.cells), len(self.seeds), len(self.points), self.spec.seeds_note(self.seeds),
                 len(self.points) - todo,
                 todo)
        bar = self._bar(len(self.points), "grid")
        settled = {"flag": False}

        def claim() -> Task | None:
            self.recover(study)
            states = self._point_states(study)
            bar.n = sum(states[p] not in ("open", "running") for p in self.points)
            bar.refresh()
            wanted = [p for p in self.points if states[p] == "open"]
            settled["flag"] = not wanted and all(states[p] != "running" for p in self.points)
            trial = claimed_trial(study, self.claiming)
            if trial is None and wanted:
                cell_id, seed = wanted[0]
                trial = new_claimed_trial(study, self.claiming, {
                    "cell": cell_id, "seed": seed, **self.cells[cell_id].values,
                    **{f"tuned.{k}": v for k, v in (tuned.get(cell_id) or {}).items()}})
            if trial is not None:  # new, or adopted from an attempt an outage cut short
                cell_id, seed = trial.user_attrs["cell"], trial.user_attrs["seed"]
                params = tuned.get(cell_id) or {}
                self._claimed(trial._trial_id, f"grid:{trial.number}")  # noqa: SLF001
                cfg = self.spec.config_for(self.cells[cell_id], seed, params)
                return Task(key=f"grid:{trial.number}", config=cfg, experiment=self.spec.name,
                            run_name=f"{cell_id} seed={seed}", parent_run_id=self.parent,
                            tags={"optuna_study": self.spec.name, "optuna_trial": str(trial.number),
                                  "cell": cell_id, "phase": "grid", "host": socket.gethostname(),
                                  **{f"factor.{k}": str(v) for k, v in self.cells[cell_id].values.items()}})
            bar.set_description("grid (waiting for other sweeps)" if not settled["flag"] else "grid")
            return None

        self._run_phase(pool, bar, lambda: self.claim_locked("claim a point", claim), lambda: settled["flag"],
                        lambda task: study, [study])
        bar.close()

    def _claimed(self, trial_id: int, key: str) -> None:
        self.trial_ids[key] = trial_id
        self.mine.add(trial_id)
        if self.beats:
            self.beats.add(trial_id)  # at once: a machine that dies now is found after one grace period

    def run_tuning(self, pool: WorkerPool) -> dict[str, dict[str, float]]:
        """Per-cell TPE with equal budgets; trials are claimed under the study lock, so several
        sweeps together run exactly `trials_per_cell` per cell, and all wait for the last one
        so every sweep re-runs the grid with the same best settings."""
        tune = self.spec.tune
        cells = list(self.cells.values())

        def open_studies():
            out = {}
            for cell in cells:
                s = optuna.create_study(study_name=tune_study_name(self.spec, cell), storage=self.storage,
                                        direction="maximize", sampler=tune_sampler(self.spec, cell),
                                        pruner=make_pruner(tune.pruner), load_if_exists=True)
                self.recover(s)
                out[cell.id] = s
            return out

        studies = self.locked("open tuning studies", open_studies)
        bar = self._bar(len(cells) * tune.trials_per_cell, "tuning")
        settled = {"flag": False}

        def used(s: optuna.Study) -> tuple[int, int]:
            trials = s.get_trials(deepcopy=False)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            spent = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                        or (t.state == TrialState.FAIL and failure_kind(t) not in ("lost", "superseded"))
                        for t in trials)
            return spent, running

        def claim() -> Task | None:
            counts = {}
            for cid, s in studies.items():
                self.recover(s)
                counts[cid] = used(s)
            bar.n = sum(min(spent, tune.trials_per_cell) for spent, _ in counts.values())
            bar.refresh()
            open_cells = [cid for cid, (spent, running) in counts.items() if spent + running < tune.trials_per_cell]
            settled["flag"] = not open_cells and not any(running for _, running in counts.values())
            adopted = [(cid, t) for cid, s in studies.items() if (t := claimed_trial(s, self.claiming))]
            if not open_cells and not adopted:
                return None
            cell_id = adopted[0][0] if adopted else min(open_cells, key=lambda cid: sum(counts[cid]))  # round robin
            study, cell = studies[cell_id], self.cells[cell_id]
            trial = adopted[0][1] if adopted else new_claimed_trial(study, self.claiming, {})
            trial_id = trial._trial_id  # noqa: SLF001
            params = suggest(trial, tune)  # an adopted claim's values are kept: Optuna returns a set param
            self._claimed(trial_id, f"tune:{cell_id}:{trial.number}")
            cfg = self.spec.config_for(cell, tune.seed, params)
            target = PruneTarget(study.study_name, self.storage_url, trial_id, tune.pruner, tune.metric)
            return Task(key=f"tune:{cell_id}:{trial.number}", config=cfg,
                        experiment=self.spec.name, run_name=f"tune {cell_id} #{trial.number}",
                        parent_run_id=self.parent, prune=target,
                        tags={"optuna_study": study.study_name, "optuna_trial": str(trial.number),
                              "cell": cell_id, "phase": "tune", "host": socket.gethostname()})

        self._run_phase(pool, bar, lambda: self.claim_locked("claim a tuning trial", claim), lambda: settled["flag"],
                        lambda task: studies[task.key.split(":")[1]], list(studies.values()))
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

    def _run_phase(self, pool: WorkerPool, bar: tqdm, next_task, settled, study_of,
                   studies: list[optuna.Study]) -> None:
        def on_start(task: Task, run_id: str) -> None:
            trial_id = self.trial_ids[task.key]
            self.retry(lambda: self.storage.set_trial_user_attr(trial_id, "mlflow_run_id", run_id), "link run")

        def on_finish(task: Task, outcome: Outcome) -> None:
            study = study_of(task)
            trial_id = self.trial_ids.pop(task.key)
            run_id = pool.run_ids.get(task.key)
            if run_id and task.key not in pool.ended:  # its worker could not end it: never leave it RUNNING
                self.tracker.end_run(run_id, "FINISHED" if outcome.kind == "done" else
                                     "KILLED" if outcome.kind == "pruned" else "FAILED")
            try:
                state, line = self.retry(lambda: self._record(study, trial_id, task, outcome), "record trial")
            except UpdateFinishedTrialError:
                # Another sweep failed this trial after missing its heartbeats and re-runs the point.
                state, line = "FAIL", f"{task.run_name}: result discarded (trial was taken over by another sweep)"
                if run_id:
                    self.tracker.set_tags(run_id, {"fail_reason": "superseded: taken over after missed heartbeats"})
                    self.tracker.set_status(run_id, "KILLED")
            finally:
                self.mine.discard(trial_id)
                if self.beats:
                    self.beats.discard(trial_id)
            if run_id:
                tags = {"optuna_state": state}
                if state == "FAIL" and outcome.kind == "done":  # finished, but its objective is not finite
                    tags["fail_reason"] = "diverged: objective is not finite"
                self.tracker.set_tags(run_id, tags)
            bar.write(line) if self.progress else log.info(line)

        def housekeeping() -> None:
            def check():
                for study in studies:
                    self.recover(study)
            self.locked("check for dead sweeps", check, Retrier(min(self.retry.outage, 30)))  # not worth a long wait

        pool.run(next_task, on_start, on_finish, settled, poll=self.poll, housekeeping=housekeeping,
                 every=self.heartbeats.interval)

    def _record(self, study: optuna.Study, trial_id: int, task: Task, outcome: Outcome) -> tuple[str, str]:
        """Write a finished task's outcome to its trial; idempotent, so an outage can retry it.
        Raises UpdateFinishedTrialError when the trial was failed by another sweep meanwhile."""
        current = self.storage.get_trial(trial_id)
        intended = {"done": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(outcome.kind, TrialState.FAIL)
        if current.state.is_finished():
            if current.state == intended:
                return current.state.name, f"{task.run_name}: recorded"  # our earlier attempt went through
            raise UpdateFinishedTrialError(f"trial {current.number} is already {current.state.name}")
        number = current.number
        self.storage.set_trial_user_attr(trial_id, "epochs_run", outcome.epochs)
        if outcome.kind == "done":
            for k, v in outcome.metrics.items():
                self.storage.set_trial_user_attr(trial_id, k, v)
            self.storage.set_trial_user_attr(trial_id, "dataset_variant", outcome.data_variant)
            value = outcome.metrics.get(self.spec.tune.metric if task.prune else OBJECTIVE, float("nan"))
            if math.isfinite(value):
                study.tell(number, value)
                self.summary.completed += 1
                line = (f"{task.run_name}: test acc {outcome.metrics.get('test/acc', float('nan')):.4f}, "
                        f"auc {outcome.metrics.get('test/auc', float('nan')):.4f} "
                        f"({outcome.metrics.get('seconds', 0):.0f} s)"
                        + (" COLLAPSED (embeddings shrank to a point)" if outcome.metrics.get("collapsed") else ""))
                return "COMPLETE", line
            self.storage.set_trial_user_attr(trial_id, "fail_reason", "objective is not finite")
            self.storage.set_trial_user_attr(trial_id, "failure", "diverged")
            study.tell(number, state=TrialState.FAIL)
            self.summary.failed += 1
            return "FAIL", f"{task.run_name}: FAILED: objective is not finite"
        if outcome.kind == "pruned":
            study.tell(number, state=TrialState.PRUNED)
            self.summary.pruned += 1
            return "PRUNED", f"{task.run_name}: {outcome.reason}"
        self.storage.set_trial_user_attr(trial_id, "fail_reason", outcome.reason[:1000])
        self.storage.set_trial_user_attr(trial_id, "failure", outcome.failure)
        study.tell(number, state=TrialState.FAIL)
        if outcome.failure == "lost":
            self.summary.stale += 1
            return "FAIL", f"{task.run_name}: {outcome.reason}; its point re-runs"
        self.summary.failed += 1
        return "FAIL", f"{task.run_name}: FAILED: {outcome.reason}"
