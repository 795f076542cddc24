"""MLflow tracking through MlflowClient (no global active run, so parallel code stays simple).

The default store is embedded: a SQLite file `mlruns.db` in the working directory, with
artifacts beside it in `mlartifacts/`; `--tracking-uri` or MLFLOW_TRACKING_URI point
elsewhere (e.g. the server `make services-up` starts, for sweeps on several machines).
Every call rides out a short server outage (infra/retry.py), and every message masks passwords.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from siamese_bench.core.errors import UserError
from siamese_bench.core.redact import mask_url, scrub
from siamese_bench.infra.retry import STARTUP_WAIT, Retrier, at_startup
from siamese_bench.infra.run_tracker import RunTracker

log = logging.getLogger(__name__)

DEFAULT_DB = "mlruns.db"
# MLflow 3 opens an experiment without this tag in its GenAI view; ours are training runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


class TrackingError(UserError, RuntimeError):
    """The tracking location cannot be used; the message names it."""


def default_tracking_uri() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def _sqlite_path(uri: str) -> Path | None:
    # sqlite:///m.db is m.db in the working directory, sqlite:////tmp/m.db is /tmp/m.db (SQLAlchemy)
    return Path(uri.removeprefix("sqlite:///")).absolute() if uri.startswith("sqlite:///") else None


def check_writable(uri: str, patience: float = 0.0) -> None:
    """Fail early, naming the location, when a local store cannot be written (a real write
    probe: permission bits say nothing to root, and MLflow would retry for minutes) or a server
    does not answer within `patience` seconds."""
    db = _sqlite_path(uri)
    if uri.startswith(("http://", "https://")):
        check_reachable(uri, patience=patience)
        return
    if db is None:
        return  # a database URI: the first request will tell
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        probe = db.parent / f".siamese-bench-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise TrackingError(f"tracking location {uri} is not writable: {err.strerror} ({db.parent})") from None


@contextlib.contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    with open(db.with_name(db.name + ".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tls_verify() -> str | bool:
    """What MLflow's own client trusts: the CA in MLFLOW_TRACKING_SERVER_CERT_PATH, else the system's."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return False
    return os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True


def _credentials() -> tuple[str, str] | None:
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    return (user, password) if user and password else None


def check_reachable(uri: str, timeout: float = 10.0, patience: float = 0.0) -> None:
    """A tracking server that does not answer, or refuses this client's certificate trust or credentials, is one
    line (URL and password masked), not minutes of MLflow retries. One that does not answer is waited for up to
    `patience` seconds first: it may be restarting."""
    import requests

    where, base = mask_url(uri), uri.rstrip("/")
    verify, auth = _tls_verify(), _credentials()

    def ask() -> requests.Response:  # verify on each request: a Session's would lose to $REQUESTS_CA_BUNDLE
        requests.get(base + "/health", timeout=timeout, verify=verify).raise_for_status()
        return requests.get(
            base + "/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            auth=auth,
            timeout=timeout,
            verify=verify,
        )

    try:
        resp = at_startup(ask, f"tracking server {where}", patience)
    except requests.exceptions.SSLError:
        raise TrackingError(
            f"tracking server {where}: its TLS certificate is not trusted here: set "
            "MLFLOW_TRACKING_SERVER_CERT_PATH to the services' CA file (source .services/env; other "
            "machines: siamese-bench services join BUNDLE)"
        ) from None
    except requests.RequestException as err:
        hint = " (a server with TLS wants https://)" if uri.startswith("http://") else ""
        raise TrackingError(
            f"tracking server {where} is not reachable ({type(err).__name__}){hint}: is it "
            "running (make services-status) and reachable from this machine?"
        ) from None
    if resp.status_code == 401:
        who = f"the credentials of MLFLOW_TRACKING_USERNAME={auth[0]}" if auth else "requests without an account"
        raise TrackingError(
            f"tracking server {where} refused {who}: set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD to the app account (source .services/env)"
        )
    if resp.status_code == 403:
        raise TrackingError(f"tracking server {where}: account {auth[0] if auth else '-'} may not read experiments")


def package_version() -> str:
    from siamese_bench import __version__

    return __version__


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _param_text(value: Any) -> str:
    return "None" if value is None else str(value)


class Tracker(RunTracker):
    """A thin wrapper over MlflowClient for one tracking URI."""

    def __init__(self, uri: str | None = None, system_metrics: bool = False, outage: float = 300.0) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = resolve_tracking_uri(uri)
        self.system_metrics = system_metrics
        self.system_metrics_interval = 5.0  # seconds between samples
        self.retry = Retrier(outage)
        self._monitors: dict[str, Any] = {}
        check_writable(self.uri, patience=min(outage, STARTUP_WAIT))
        try:
            with _creation_lock(self.uri):  # two processes creating one SQLite store's tables collide
                self.client = MlflowClient(tracking_uri=self.uri)
                self.client.search_experiments(max_results=1)  # opens (and creates) the store now
        except Exception as err:  # noqa: BLE001  (MLflow raises many kinds here)
            first_line = (str(err).splitlines() or [type(err).__name__])[0]
            raise TrackingError(
                f"cannot open tracking store {mask_url(self.uri)}: {scrub(first_line, self.uri)[:300]}"
            ) from None

    def _call(self, what: str, fn):
        from mlflow.exceptions import MlflowException

        try:
            return self.retry(fn, f"MLflow {what} ({mask_url(self.uri)})")
        except MlflowException as err:
            message = scrub(err.message, self.uri)
            raise TrackingError(f"tracking store {mask_url(self.uri)}: {what}: {message}") from None

    def get_experiment(self, name: str):
        return self._call("get experiment", lambda: self.client.get_experiment_by_name(name))

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created when missing; two processes creating it at once both get it."""

        exp = self.get_experiment(name)
        if exp is not None:
            return exp.experiment_id
        db = _sqlite_path(self.uri)
        location = (db.parent / "mlartifacts" / name).as_uri() if db else None
        try:
            return self._call(
                "create experiment",
                lambda: self.client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND),
            )
        except TrackingError:
            exp = self.get_experiment(name)  # created by another process meanwhile
            if exp is None:
                raise
            return exp.experiment_id

    def set_experiment_tags(self, name: str, tags: dict[str, str]) -> None:
        exp_id = self.experiment_id(name)
        for k, v in {**EXPERIMENT_KIND, **tags}.items():
            self._call("set experiment tag", lambda k=k, v=v: self.client.set_experiment_tag(exp_id, k, v))

    def search_runs(self, experiment, filter_string: str) -> list:
        return self._call(
            "search runs", lambda: self.client.search_runs([experiment.experiment_id], filter_string=filter_string)
        )

    def search_runs_everywhere(self, filter_string: str) -> list:
        """Runs of every active experiment in the store that match `filter_string`."""

        def search() -> list:
            ids = [e.experiment_id for e in self.client.search_experiments()]
            return list(self.client.search_runs(ids, filter_string=filter_string, max_results=50_000)) if ids else []

        return self._call("search runs", search)

    def experiment_name(self, experiment_id: str) -> str:
        return self._call("get experiment", lambda: self.client.get_experiment(experiment_id).name)

    def run_status(self, run_id: str) -> str | None:
        """The run's status, or None when the store has no such run."""
        run = self.get_run(run_id)
        return run.info.status if run is not None else None

    def get_run(self, run_id: str):
        """The run (info, params, latest metrics, tags), or None when the store has no such run."""
        from mlflow.exceptions import MlflowException

        try:
            return self.retry(lambda: self.client.get_run(run_id), f"MLflow get run ({mask_url(self.uri)})")
        except MlflowException:
            return None

    def metric_steps(self, run_id: str, key: str) -> int:
        """How many values of `key` the run logged (a per-epoch curve: its epochs)."""
        return len(self._call("get metric history", lambda: self.client.get_metric_history(run_id, key)))

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self._call("get run", lambda: self.client.get_run(run_id).data.tags))

    def set_status(self, run_id: str, status: str) -> None:
        self._call("update run", lambda: self.client.update_run(run_id, status=status))

    def start_run(
        self,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> str:
        from mlflow.entities import Param

        all_tags = {"package_version": package_version(), "git_commit": git_commit(), **tags}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        exp_id = self.experiment_id(experiment)
        run = self._call(
            "create run",
            lambda: self.client.create_run(exp_id, run_name=run_name, tags={k: str(v) for k, v in all_tags.items()}),
        )
        run_id = run.info.run_id
        self._call(
            "log params",
            lambda: self.client.log_batch(run_id, params=[Param(k, _param_text(v)) for k, v in params.items()]),
        )
        if self.system_metrics:
            self._start_monitor(run_id)
        return run_id

    def _start_monitor(self, run_id: str) -> None:
        """MLflow's own CPU/memory/GPU sampler for this run, until end_run."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        try:
            monitor = SystemMetricsMonitor(
                run_id, sampling_interval=self.system_metrics_interval, samples_before_logging=1, tracking_uri=self.uri
            )
            monitor.start()
            self._monitors[run_id] = monitor
        except Exception as err:  # noqa: BLE001  (psutil missing, ...): the run itself goes on
            log.warning("system metrics not recorded for run %s: %s", run_id, err)

    def log_dataset(self, run_id: str, info: dict[str, Any]) -> None:
        """Record the run's data as an MLflow input (name, digest, source, split sizes)."""
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=info["name"],
            digest=info["digest"],
            source_type="local",
            source=json.dumps({"source": info["source"]}),
            profile=json.dumps(info["sizes"]),
        )
        entry = DatasetInput(dataset=dataset, tags=[InputTag("mlflow.data.context", "training")])
        try:
            self._call("log input", lambda: self.client.log_inputs(run_id, datasets=[entry]))
        except TrackingError as err:  # two runs recording one new dataset at once: the loser finds it now
            if "duplicate" not in str(err).lower() and "unique" not in str(err).lower():
                raise
            self._call("log input", lambda: self.client.log_inputs(run_id, datasets=[entry]))

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None]
        if batch:
            self._call("log metrics", lambda: self.client.log_batch(run_id, metrics=batch))

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self._call("set tags", lambda: self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()]))

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self._call("log artifact", lambda: self.client.log_artifact(run_id, str(path), artifact_path))

    def download_artifact(self, run_id: str, artifact: str, destination: Path) -> Path:
        """A run's artifact as a local file; TrackingError naming the run when it is missing."""
        from mlflow.exceptions import MlflowException

        try:
            return Path(self.client.download_artifacts(run_id, artifact, str(destination)))
        except (MlflowException, OSError) as err:
            message = getattr(err, "message", str(err))
            raise TrackingError(f"run {run_id} in {mask_url(self.uri)}: cannot fetch {artifact} ({message})") from None

    def delete_run(self, run_id: str) -> None:
        """Marks the run deleted (MLflow keeps it, restorable, until its garbage collection)."""
        self._call("delete run", lambda: self.client.delete_run(run_id))

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        monitor = self._monitors.pop(run_id, None)
        if monitor is not None:
            monitor.finish()
        self._call("end run", lambda: self.client.set_terminated(run_id, status=status))
