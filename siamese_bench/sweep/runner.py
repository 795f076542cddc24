"""The sweep: claims grid points from the Optuna study, trains them in worker processes, and
records every run in MLflow. Any number of sweeps, on one machine or many, can work on one
study at once:

- claiming a point, recovering the trials of a dead sweep, and creating or ending the study's
  MLflow parent run happen under one lock per study held in the database (locks.study_lock),
  so no two sweeps act on the same check, and each cell x seed is trained once;
- a sweep that dies is found by its PID (same machine) or by its missing heartbeats (another
  machine, RDB storage); its trials fail and their points are claimed again;
- a sweep with nothing left to claim waits while other sweeps still run trials, so the study's
  parent run ends when the whole study is done, and a dying machine's points are picked up;
- a database or tracking server that goes away for a while is waited for (retry.Retrier).

The parts: claims.py (point states, claims), recovery.py (dead sweeps' trials), pool.py (the
worker processes), tasks.py (what a worker is handed), heartbeat.py, parent_run.py (the
study's MLflow run), recording.py (a finished task's outcome); this module composes them into
the grid and tuning phases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from tqdm import tqdm

from siamese_bench.core import plugins
from siamese_bench.core.errors import ConfigError
from siamese_bench.core.redact import mask_url
from siamese_bench.infra.forkserver import available_cores
from siamese_bench.infra.retry import STARTUP_WAIT, Retrier, StorageUnavailable
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.claims import (
    SETTLED,
    Holdings,
    Point,
    claim_grid_points,
    claim_tuning_trial,
    describe_points,
    new_claim_token,
    point_states,
    tuning_budget,
)
from siamese_bench.sweep.heartbeat import HeartbeatThread
from siamese_bench.sweep.locks import study_lock
from siamese_bench.sweep.optuna_api import trial_id
from siamese_bench.sweep.parent_run import ParentRun
from siamese_bench.sweep.pool import Outcome, WorkerPool
from siamese_bench.sweep.recording import Recorder, SweepSummary
from siamese_bench.sweep.recovery import fail_dead_trials
from siamese_bench.sweep.spec import StudySpec
from siamese_bench.sweep.storage import Heartbeats, make_storage
from siamese_bench.sweep.tasks import sweep_task
from siamese_bench.sweep.tuning import best_params, epochs_spent, open_tuning_study, suggest
from siamese_bench.sweep.worker import PruneTarget, Task
from siamese_bench.training.device import training_device
from siamese_bench.training.seeds import claim_size

log = logging.getLogger(__name__)


class Sweep:
    def __init__(
        self,
        spec: StudySpec,
        storage_url: str,
        tracker: Tracker,
        workers: int,
        progress: bool = True,
        heartbeats: Heartbeats | None = None,
        outage: float = 300.0,
        poll: float = 2.0,
        threads: int | None = None,
        seeds: Sequence[int] | None = None,
        points: Sequence[Point] | None = None,
        plugin_names: Sequence[str] = (),
        stack_seeds: int | None = None,
    ) -> None:
        self.spec, self.storage_url, self.tracker = spec, storage_url, tracker
        self.workers, self.progress, self.poll, self.threads = workers, progress, poll, threads
        self.heartbeats = heartbeats or Heartbeats()
        self.retry = Retrier(outage)
        self.storage = make_storage(storage_url, self.heartbeats, patience=min(outage, STARTUP_WAIT))
        self.cells = {c.id: c for c in spec.cells()}
        self.all_points: list[Point] = [(c, s) for c in self.cells for s in spec.seeds]
        self.seeds = spec.chosen_seeds(seeds)  # what this sweep claims; `all_points` decide the study
        self.points: list[Point] = [(c, s) for c, s in self.all_points if s in self.seeds]
        if points is not None:  # decide's rounds: only these cells x seeds of the study
            wanted = set(points)
            self.points = [p for p in self.points if p in wanted]
        # the spec's plugins and the command line's, loaded here (their parts are checked) and by every worker
        self.plugins = tuple(dict.fromkeys([*spec.plugin_names, *plugin_names]))
        self.plugin_tags = plugins.tags(plugins.load_all(self.plugins))
        if stack_seeds is not None and stack_seeds < 1:
            raise ConfigError(f"--stack-seeds {stack_seeds}: expected 1 or more")
        self.stack_seeds = stack_seeds  # None: the measured rule (training/seeds.py default_stack_size)
        self.accelerator = training_device().type  # what the workers will train on
        self.summary = SweepSummary(spec.name)
        self.holdings = Holdings()
        self.parent = ParentRun(spec, storage_url, tracker)
        self.recorder = Recorder(self.storage, tracker, self.retry, self.summary, spec.tune.metric if spec.tune else "")

    # -- coordination ----------------------------------------------------------------------
    def claim_locked(self, what: str, fn: Callable[[], list[Task] | None]) -> list[Task] | None:
        """One claim under the study lock, its retries sharing one token: a retry adopts the
        trial an attempt cut short by an outage created, instead of leaving it RUNNING."""
        self.holdings.claiming = new_claim_token()
        try:
            return self.locked(what, fn)
        finally:
            self.holdings.claiming = None

    def locked(self, what: str, fn: Callable[[], Any], retry: Retrier | None = None) -> Any:
        """fn() under the study lock, tried again from the start after a server outage."""

        def attempt():
            with study_lock(self.storage_url, self.spec.name):
                return fn()

        return (retry or self.retry)(attempt, f"{what} ({mask_url(self.storage_url)})")

    def recover(self, study: optuna.Study) -> int:
        """Adopt the trials of dead sweeps whose runs had finished, fail the others (call under the
        lock), then end as KILLED their MLflow runs. Returns how many trials were recovered."""
        stale, adopted = fail_dead_trials(
            study, self.holdings.mine, self.holdings.claiming, self.recorder.adopt, self.heartbeats.grace
        )
        for trial in stale:
            self.summary.stale += 1
            log.warning(
                "trial %d of %s (%s) was left RUNNING by a dead sweep on %s: failed, its point re-runs",
                trial.number,
                study.study_name,
                trial.user_attrs.get("cell", "?"),
                trial.user_attrs.get("host", "?"),
            )
        if stale:
            self.parent.close_orphan_runs(study)
        return len(stale) + len(adopted)

    def grid_study(self) -> optuna.Study:
        """The study that holds one trial per cell x seed. The grid point is kept in the trial's
        user attributes, not as Optuna parameters: a categorical parameter's choices are frozen
        with the study, so a spec that gains a seed or a cell could not resume. Points are
        claimed under the study lock, so no sampler is involved."""

        def open_study():
            study = optuna.create_study(
                study_name=self.spec.name, storage=self.storage, direction="maximize", load_if_exists=True
            )
            old = study.user_attrs.get("spec_fingerprint")
            if old != self.spec.fingerprint():
                if old:
                    log.warning(
                        "!!! study %s was created from a different spec (fingerprint %s, now %s): "
                        "finished cells are kept, new cells are added",
                        self.spec.name,
                        old,
                        self.spec.fingerprint(),
                    )
                study.set_user_attr("spec_fingerprint", self.spec.fingerprint())
                study.set_user_attr("spec_path", str(self.spec.path))
            return study

        return self.locked("open study", open_study)

    # -- running ---------------------------------------------------------------------------
    def run(self) -> SweepSummary:
        started = time.perf_counter()
        study = self.grid_study()

        def setup():
            self.recover(study)
            self.parent.close_orphan_runs(study)
            return self.parent.ensure(study, lambda: "open" in point_states(study, self.all_points).values())

        self.locked("start study", setup)
        if isinstance(self.storage, RDBStorage):
            self.holdings.beats = HeartbeatThread(self.storage, self.heartbeats.interval)
        pool = WorkerPool(self.workers, self.tracker, self.threads or max(1, available_cores() // self.workers))
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
            if self.holdings.beats:
                self.holdings.beats.stop()
            self.holdings.mine.clear()
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
        states = point_states(study, self.all_points)
        done = all(s in SETTLED for s in states.values())
        mine_done = all(states[p] in SETTLED for p in self.points)
        self.summary.study_done = done
        self.summary.seeds_left = sorted({s for (_, s), st in states.items() if s not in self.seeds and st == "open"})
        self.summary.points_failed = sum(s in ("diverged", "failed") for s in states.values())
        others_running = bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        complete = sum(s == "complete" for s in states.values())
        self.parent.settle(
            study,
            done,
            stop=(interrupted or mine_done) and not others_running,
            metrics={
                "trials_completed": complete,
                "points_failed": self.summary.points_failed,
                "sweep_seconds": self.summary.seconds,
            },
        )

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit="trial", disable=not self.progress, dynamic_ncols=True)

    def run_grid(self, pool: WorkerPool, study: optuna.Study, tuned: dict[str, dict[str, float]]) -> None:
        states = self.locked("count points", lambda: point_states(study, self.all_points))
        todo = sum(states[p] in ("open", "running") for p in self.points)
        log.info(
            "study %s: %s%s; %d settled earlier, %d to run",
            self.spec.name,
            describe_points(self.points),
            self.spec.seeds_note(self.seeds),
            len(self.points) - todo,
            todo,
        )
        bar = self._bar(len(self.points), "grid")
        settled = {"flag": False}

        def attrs_of(point: Point) -> dict[str, Any]:
            cell_id, seed = point
            return {
                "cell": cell_id,
                "seed": seed,
                **self.cells[cell_id].values,
                **{f"tuned.{k}": v for k, v in (tuned.get(cell_id) or {}).items()},
            }

        def task_of(trial: optuna.Trial) -> Task:
            cell_id, seed = trial.user_attrs["cell"], trial.user_attrs["seed"]
            self.holdings.hold(trial_id(trial), f"grid:{trial.number}")
            cfg = self.spec.config_for(self.cells[cell_id], seed, tuned.get(cell_id) or {})
            values = {f"factor.{k}": str(v) for k, v in self.cells[cell_id].values.items()}
            return sweep_task(
                self, f"grid:{trial.number}", cfg, f"{cell_id} seed={seed}", trial, cell_id, "grid", values
            )

        def size_of(cell_id: str, open_in_cell: int, open_total: int, idle: int) -> int:
            cfg = self.spec.config_for(self.cells[cell_id], self.spec.seeds[0], tuned.get(cell_id) or {})
            return claim_size(cfg, open_in_cell, open_total, idle, self.stack_seeds, self.accelerator)

        def claim(idle: int) -> list[Task] | None:
            self.recover(study)
            states = point_states(study, self.all_points)
            bar.n = sum(states[p] not in ("open", "running") for p in self.points)
            bar.refresh()
            wanted = [p for p in self.points if states[p] == "open"]
            settled["flag"] = not wanted and all(states[p] != "running" for p in self.points)
            assert self.holdings.claiming is not None, "claim() runs under claim_locked, which sets the token"
            trials = claim_grid_points(
                study, self.holdings.claiming, wanted, attrs_of, lambda cell, n: size_of(cell, n, len(wanted), idle)
            )
            if trials:  # new, or adopted from an attempt an outage cut short
                return [task_of(trial) for trial in trials]
            bar.set_description("grid (waiting for other sweeps)" if not settled["flag"] else "grid")
            return None

        self._run_phase(
            pool,
            bar,
            lambda idle: self.claim_locked("claim a point", lambda: claim(idle)),
            lambda: settled["flag"],
            lambda task: study,
            [study],
        )
        bar.close()

    def run_tuning(self, pool: WorkerPool) -> dict[str, dict[str, float]]:
        """Per-cell TPE with equal budgets; trials are claimed under the study lock, so several
        sweeps together run exactly `trials_per_cell` per cell, and all wait for the last one
        so every sweep re-runs the grid with the same best settings."""
        tune = self.spec.tune
        assert tune is not None, "run only for a spec with a tune section"
        cells = list(self.cells.values())

        def open_studies():
            out = {cell.id: open_tuning_study(self.spec, cell, self.storage) for cell in cells}
            for s in out.values():
                self.recover(s)
            return out

        studies = self.locked("open tuning studies", open_studies)
        bar = self._bar(len(cells) * tune.trials_per_cell, "tuning")
        settled = {"flag": False}

        def claim() -> list[Task] | None:
            counts: dict[str, tuple[int, int]] = {}  # cell id -> (trials spent, running)
            for cid, s in studies.items():
                self.recover(s)
                counts[cid] = tuning_budget(s)
            bar.n = sum(min(spent, tune.trials_per_cell) for spent, _ in counts.values())
            bar.refresh()
            settled["flag"] = not any(
                spent + running < tune.trials_per_cell for spent, running in counts.values()
            ) and not any(running for _, running in counts.values())
            assert self.holdings.claiming is not None, "claim() runs under claim_locked, which sets the token"
            claimed = claim_tuning_trial(studies, self.holdings.claiming, counts, tune.trials_per_cell)
            if claimed is None:
                return None
            cell_id, trial = claimed
            study, cell = studies[cell_id], self.cells[cell_id]
            params = suggest(trial, tune)  # an adopted claim's values are kept: Optuna returns a set param
            self.holdings.hold(trial_id(trial), f"tune:{cell_id}:{trial.number}")
            cfg = self.spec.config_for(cell, tune.seed, params)
            target = PruneTarget(study.study_name, self.storage_url, trial_id(trial), tune.pruner, tune.metric)
            name = f"tune {cell_id} #{trial.number}"  # tuning trials train one at a time: own values, own pruning
            return [sweep_task(self, f"tune:{cell_id}:{trial.number}", cfg, name, trial, cell_id, "tune", prune=target)]

        self._run_phase(
            pool,
            bar,
            lambda idle: self.claim_locked("claim a tuning trial", claim),
            lambda: settled["flag"],
            lambda task: studies[task.key.split(":")[1]],
            list(studies.values()),
        )
        bar.close()
        for s in studies.values():
            run, budget = epochs_spent(s, self.spec.base.epochs)
            self.summary.tune_epochs_run += run
            self.summary.tune_epochs_budget += budget
        return {cell_id: params for cell_id, s in studies.items() if (params := best_params(s))}

    def _run_phase(self, pool: WorkerPool, bar: tqdm, next_job, settled, study_of, studies: list[optuna.Study]) -> None:
        def on_start(task: Task, run_id: str) -> None:
            trial_id = self.holdings.trial_ids[task.key]
            self.retry(lambda: self.storage.set_trial_user_attr(trial_id, "mlflow_run_id", run_id), "link run")

        def on_finish(task: Task, outcome: Outcome) -> None:
            run_id = pool.run_ids.get(task.key)
            try:
                state, line = self.recorder.record(
                    study_of(task), self.holdings.trial_ids[task.key], task, outcome, run_id, task.key in pool.ended
                )
            finally:
                self.holdings.release(task.key)
            self.recorder.tag(run_id, state, outcome)
            bar.write(line) if self.progress else log.info(line)

        def housekeeping() -> None:
            def check():
                for study in studies:
                    self.recover(study)

            self.locked("check for dead sweeps", check, Retrier(min(self.retry.outage, 30)))  # not worth a long wait

        pool.run(
            next_job,
            on_start,
            on_finish,
            settled,
            poll=self.poll,
            housekeeping=housekeeping,
            every=self.heartbeats.interval,
        )
