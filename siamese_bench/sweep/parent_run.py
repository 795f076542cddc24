"""The study's MLflow parent run: one per study, shared by every sweep of it, its child runs
closed when their sweep died, and ended once the whole study is done. Its creation and its end
happen under the study lock (the caller holds it), so two sweeps never create or end it twice."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from siamese_bench.core.redact import mask_url
from siamese_bench.core.store import STUDY_CELLS
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.recovery import failed_silently, silent_reason
from siamese_bench.sweep.spec import StudySpec

log = logging.getLogger(__name__)


class ParentRun:
    def __init__(self, spec: StudySpec, storage_url: str, tracker: Tracker) -> None:
        self.spec, self.storage_url, self.tracker = spec, storage_url, tracker
        self.run_id: str | None = None

    def ensure(self, study: optuna.Study, has_open_points: Callable[[], bool]) -> str:
        """One MLflow parent run per study, created by whichever sweep comes first (under the
        lock) and reused by the others and on resume; the run and the study name each other."""
        self.run_id = self._ensure(study, has_open_points)
        return self.run_id

    def _ensure(self, study: optuna.Study, has_open_points: Callable[[], bool]) -> str:
        run_id: str = study.user_attrs.get("mlflow_parent_run_id") or ""
        status = self.tracker.run_status(run_id) if run_id else None
        if run_id and status is None:
            log.warning("MLflow parent run %s not found in %s: replacing it", run_id, mask_url(self.tracker.uri))
        if status is None:
            strays = self._running_parents()  # one a sweep killed while creating it left unrecorded
            run_id = strays[0] if strays else self._create()
            if strays:  # its sweep may have died before it logged the cells: log them again
                log.warning("adopting MLflow parent run %s of study %s, left unrecorded", run_id, self.spec.name)
                self._record_cells(run_id)
            study.set_user_attr("mlflow_parent_run_id", run_id)
            study.set_user_attr("mlflow_experiment", self.spec.name)
            study.set_user_attr("mlflow_tracking_uri", mask_url(self.tracker.uri))
        elif status != "RUNNING" and has_open_points():
            self.tracker.set_status(run_id, "RUNNING")  # resumed, or the spec grew
        if self.tracker.run_tags(run_id).get("spec_fingerprint") != self.spec.fingerprint():
            self._record_cells(run_id)
        self._delete_other_parents(run_id)
        return run_id

    def _delete_other_parents(self, run_id: str) -> None:
        """The caller holds the study lock, so no live sweep is creating one. Also done when the
        study ends: the lock lost in a database restart lets two sweeps in at once."""
        for other in self._running_parents():
            if other != run_id:
                log.warning(
                    "deleting MLflow run %s, a second parent run of study %s (a creation an outage made twice)",
                    other,
                    self.spec.name,
                )
                self.tracker.delete_run(other)

    def _create(self) -> str:
        run_id = self.tracker.start_run(
            self.spec.name,
            f"study {self.spec.name}",
            params={"spec_path": str(self.spec.path), "cells": len(self.spec.cells()), "seeds": self.spec.seeds},
            tags={
                "optuna_study": self.spec.name,
                "optuna_storage": mask_url(self.storage_url),
                "role": "study",
                "spec_fingerprint": self.spec.fingerprint(),
            },
        )
        self.tracker.set_experiment_tags(
            self.spec.name, {"optuna_study": self.spec.name, "optuna_storage": mask_url(self.storage_url)}
        )
        self._record_cells(run_id)
        return run_id

    def _running_parents(self) -> list[str]:
        """This study's RUNNING parent runs (the study's own included), newest first. MLflow's
        client repeats a request whose answer a restart cut off, so a creation can make two."""
        experiment = self.tracker.get_experiment(self.spec.name)
        if experiment is None:
            return []
        runs = self.tracker.search_runs(
            experiment,
            f"attributes.status = 'RUNNING' and tags.role = 'study' and tags.optuna_study = '{self.spec.name}'",
        )
        storage = mask_url(self.storage_url)
        return [r.info.run_id for r in runs if r.data.tags.get("optuna_storage") == storage]

    def _record_cells(self, run_id: str) -> None:
        """The spec's cells and seeds as the parent run's artifact, so a report lists the cells
        that never ran without reading (or importing) the spec."""
        cells = {
            "cells": [c.id for c in self.spec.cells()],
            "seeds": self.spec.seeds,
            "fingerprint": self.spec.fingerprint(),
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(STUDY_CELLS).name
            path.write_text(json.dumps(cells, indent=1))
            self.tracker.log_artifact(run_id, path, str(Path(STUDY_CELLS).parent))
        self.tracker.set_tags(run_id, {"spec_fingerprint": self.spec.fingerprint()})

    def close_orphan_runs(self, study: optuna.Study) -> None:
        """End as KILLED every MLflow run of the study still RUNNING for a trial that is not:
        found by the run's tags, so a run started just before a kill, and not yet linked to its
        trial, is closed too. A live sweep's runs belong to RUNNING trials and are left alone.
        A trial Optuna failed for missing heartbeats carries no reason of its own: its run's
        fail_reason tag says so."""
        experiment = self.tracker.get_experiment(self.spec.name)
        if experiment is None:
            return
        trials = study.get_trials(deepcopy=False)
        running = {t.number for t in trials if t.state == TrialState.RUNNING}
        silent = {t.number: silent_reason(t) for t in trials if t.state == TrialState.FAIL and failed_silently(t)}
        for run in self.tracker.search_runs(
            experiment, f"attributes.status = 'RUNNING' and tags.optuna_study = '{study.study_name}'"
        ):
            if "optuna_trial" in run.data.tags and (number := int(run.data.tags["optuna_trial"])) not in running:
                reason = silent.get(number, "lost: sweep died")
                self.tracker.set_tags(run.info.run_id, {"optuna_state": "FAIL", "fail_reason": reason})
                self.tracker.end_run(run.info.run_id, "KILLED")

    def settle(self, study: optuna.Study, done: bool, stop: bool, metrics: dict[str, float]) -> None:
        """End the run when the study is done (FINISHED, or FAILED when points failed), or as
        KILLED when `stop` (this sweep stopped, or left seeds open, and no other sweep runs
        trials). A run another sweep has ended already is left as it is."""
        if self.run_id is None or self.tracker.run_status(self.run_id) != "RUNNING":
            return
        if done:
            self.close_orphan_runs(study)
            self._delete_other_parents(self.run_id)
            self.tracker.log_metrics(self.run_id, metrics)
            self.tracker.end_run(self.run_id, "FINISHED" if metrics["points_failed"] == 0 else "FAILED")
        elif stop:
            self.tracker.end_run(self.run_id, "KILLED")
