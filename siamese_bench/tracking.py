"""MLflow tracking through MlflowClient (no global active run, so parallel code stays simple).

The default store is embedded: a SQLite file `mlruns.db` in the working directory, with
artifacts beside it in `mlartifacts/`; `--tracking-uri` or MLFLOW_TRACKING_URI point
elsewhere (e.g. a server started by `make mlflow-server`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_DB = "mlruns.db"


class TrackingError(RuntimeError):
    """The tracking location cannot be used; the message names it."""


def default_tracking_uri() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def check_writable(uri: str) -> None:
    """Fail early, naming the location, when a local store cannot be written (a real write
    probe: permission bits say nothing to root, and MLflow would retry for minutes)."""
    db = _sqlite_path(uri)
    if db is None:
        return  # a server or database URI: the first request will tell
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        probe = db.parent / f".siamese-bench-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise TrackingError(f"tracking location {uri} is not writable: {err.strerror} ({db.parent})") from None


def package_version() -> str:
    try:
        return version("siamese-bench")
    except PackageNotFoundError:
        return "unknown"


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _param_text(value: Any) -> str:
    return "None" if value is None else str(value)


class Tracker:
    """A thin wrapper over MlflowClient for one tracking URI."""

    def __init__(self, uri: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = resolve_tracking_uri(uri)
        check_writable(self.uri)
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
        except Exception as err:  # noqa: BLE001  (MLflow raises many kinds here)
            raise TrackingError(f"cannot open tracking store {self.uri}: {err}") from None

    def experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        try:
            exp = self.client.get_experiment_by_name(name)
            if exp is not None:
                return exp.experiment_id
            db = _sqlite_path(self.uri)
            location = (db.parent / "mlartifacts" / name).as_uri() if db else None
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as err:
            raise TrackingError(f"tracking store {self.uri}: {err.message}") from None

    def start_run(self, experiment: str, run_name: str, params: dict[str, Any],
                  tags: dict[str, str], parent_run_id: str | None = None) -> str:
        from mlflow.entities import Param

        all_tags = {"package_version": package_version(), "git_commit": git_commit(), **tags}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name,
                                     tags={k: str(v) for k, v in all_tags.items()})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, _param_text(v)) for k, v in params.items()])
        return run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def download_artifact(self, run_id: str, artifact: str, destination: Path) -> Path:
        """A run's artifact as a local file; TrackingError naming the run when it is missing."""
        from mlflow.exceptions import MlflowException

        try:
            return Path(self.client.download_artifacts(run_id, artifact, str(destination)))
        except (MlflowException, OSError) as err:
            message = getattr(err, "message", str(err))
            raise TrackingError(f"run {run_id} in {self.uri}: cannot fetch {artifact} ({message})") from None

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)
