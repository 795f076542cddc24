"""The tracking calls one training run makes, as one interface: tracking.Tracker makes them on
MLflow; sweep.worker.QueueTracker sends them to the sweep's parent, which makes them on its
Tracker. `train.run_training` takes any RunTracker. No torch or MLflow import here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any


class RunTracker(ABC):
    @abstractmethod
    def start_run(
        self,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> str:
        """Open a run; returns its id."""

    @abstractmethod
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None: ...

    @abstractmethod
    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None: ...

    @abstractmethod
    def log_dataset(self, run_id: str, info: dict[str, Any]) -> None:
        """The run's input dataset: name, digest, source, split sizes."""

    @abstractmethod
    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None: ...

    @abstractmethod
    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...
