"""Talking to the database and the tracking server: passwords masked everywhere, outages ridden
out, unreachable servers reported in one line; and the tracker's system metrics. Fast: no
training, no servers."""

from __future__ import annotations

import time

import optuna
import pytest

from siamese_bench.core.redact import mask_url, scrub, url_password
from siamese_bench.infra.retry import Retrier, StorageUnavailable, at_startup, is_transient
from siamese_bench.infra.tracking import Tracker, TrackingError, check_reachable


@pytest.mark.parametrize(
    "url,masked",
    [
        ("postgresql+psycopg2://siamese:s3cr%40t@db:5432/optuna", "postgresql+psycopg2://siamese:***@db:5432/optuna"),
        ("http://user:pw@mlflow:5000", "http://user:***@mlflow:5000"),
        ("postgresql://u@h/db?password=zz&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("sqlite:////tmp/optuna.db", "sqlite:////tmp/optuna.db"),
        ("/work/optuna.journal", "/work/optuna.journal"),
    ],
)
def test_mask_url_hides_only_the_password(url, masked):
    assert mask_url(url) == masked


def test_scrub_removes_the_password_in_every_form():
    url = "postgresql://siamese:p%40ss@h/db"
    assert url_password(url) == "p%40ss"
    text = scrub(f"could not log in to {url} with p@ss or p%40ss", url)
    assert "p@ss" not in text and "p%40ss" not in text and "siamese:***@h/db" in text


class Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors, self.calls = errors, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retrier_rides_out_a_transient_outage():
    retry = Retrier(outage=5, first_pause=0.01)
    flaky = Flaky([ConnectionRefusedError("refused"), RuntimeError("server closed the connection unexpectedly")])
    assert retry(flaky, "test") == "done" and flaky.calls == 3 and retry.retries == 2


def test_retrier_raises_a_permanent_error_at_once():
    retry = Retrier(outage=5, first_pause=0.01)
    flaky = Flaky([RuntimeError('FATAL: password authentication failed for user "siamese"')])
    with pytest.raises(RuntimeError, match="password authentication"):
        retry(flaky, "test")
    assert flaky.calls == 1


def test_retrier_gives_up_after_the_outage_allowance_with_one_line():
    retry = Retrier(outage=0.2, first_pause=0.05, max_pause=0.05)
    with pytest.raises(StorageUnavailable) as err:
        retry(lambda: (_ for _ in ()).throw(ConnectionRefusedError("refused")), "claim a point (postgresql://u:***@h)")
    assert "still unreachable" in str(err.value) and "\n" not in str(err.value)


def test_transient_errors_are_found_through_the_cause_chain():
    try:
        try:
            raise OSError("could not connect to server: Connection refused")
        except OSError as inner:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from inner
    except Exception as outer:  # noqa: BLE001
        assert is_transient(outer)
    assert not is_transient(ValueError("bad value"))
    assert not is_transient(RuntimeError('database "x" does not exist'))


def test_unreachable_tracking_server_is_one_line_with_the_password_masked():
    started = time.monotonic()
    with pytest.raises(TrackingError) as err:
        Tracker("http://user:hunter2@127.0.0.1:1", outage=1)  # a start-up waits min(outage, 60 s) for a server
    assert time.monotonic() - started < 15  # not MLflow's minutes of retries
    assert "hunter2" not in str(err.value) and "user:***@" in str(err.value) and "not reachable" in str(err.value)


def test_at_startup_waits_for_a_server_that_comes_back_and_says_so_once(caplog):
    flaky = Flaky([ConnectionRefusedError("refused"), ConnectionRefusedError("refused")])
    with caplog.at_level("WARNING"):
        assert at_startup(flaky, "storage postgresql://u:***@h/db", patience=10) == "done"
    assert flaky.calls == 3
    assert [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()] == [
        "storage postgresql://u:***@h/db does not answer (ConnectionRefusedError): waiting up to 10 s in case it is "
        "restarting"
    ]


def test_at_startup_raises_a_lasting_error_at_once_and_a_silent_server_after_its_patience():
    wrong = Flaky([RuntimeError("password authentication failed for user u")])
    with pytest.raises(RuntimeError, match="password"):
        at_startup(wrong, "storage", patience=10)
    assert wrong.calls == 1
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        at_startup(lambda: (_ for _ in ()).throw(ConnectionRefusedError("refused")), "storage", patience=1)
    assert 0.4 < time.monotonic() - started < 3


def test_a_tracking_server_that_comes_up_during_the_start_up_check_is_waited_for():
    """A real HTTP server on a real port, listening only 1.5 s after the check began (a restart)."""
    import http.server
    import json
    import socket
    import threading

    class MlflowLike(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            body = b"OK" if self.path == "/health" else json.dumps({"experiments": []}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    servers: list[http.server.HTTPServer] = []

    def serve_later() -> None:
        time.sleep(1.5)
        servers.append(http.server.HTTPServer(("127.0.0.1", port), MlflowLike))
        servers[0].serve_forever()

    threading.Thread(target=serve_later, daemon=True).start()
    uri = f"http://127.0.0.1:{port}"
    with pytest.raises(TrackingError, match="not reachable"):
        check_reachable(uri)  # no patience: the report's check, one line at once
    started = time.monotonic()
    try:
        check_reachable(uri, patience=20)
        assert 1.0 < time.monotonic() - started < 15
    finally:
        if servers:
            servers[0].shutdown()


@pytest.mark.slow  # separate processes or the full archives: several seconds
def test_system_metrics_are_recorded_with_a_run(tmp_path, mlruns):
    tracker = Tracker(mlruns, system_metrics=True)
    tracker.system_metrics_interval = 0.5
    run_id = tracker.start_run("system", "r", {}, {})
    time.sleep(2)
    tracker.end_run(run_id)
    metrics = tracker.client.get_run(run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
    plain = Tracker(mlruns)
    other = plain.start_run("system", "r2", {}, {})
    plain.end_run(other)
    assert not plain.client.get_run(other).data.metrics  # off unless asked for


def test_tracking_errors_never_quote_the_password(tmp_path, mlruns):
    from mlflow.exceptions import MlflowException

    tracker = Tracker(mlruns)
    tracker.uri = "http://user:hunter2@127.0.0.1:5055"  # as if talking to a server with basic auth
    with pytest.raises(TrackingError) as err:
        tracker._call(
            "log metrics",
            lambda: (_ for _ in ()).throw(
                MlflowException("API request to http://user:hunter2@127.0.0.1:5055/api/2.0 failed")
            ),
        )
    assert "hunter2" not in str(err.value) and "user:***@" in str(err.value)


def test_a_store_named_relative_to_the_working_directory_takes_runs_and_artifacts(tmp_path, mlruns, monkeypatch):
    """`--tracking-uri sqlite:///m.db` is m.db in the working directory (SQLAlchemy's reading):
    its experiments keep their artifacts beside it, as with an absolute path."""
    monkeypatch.chdir(tmp_path)
    tracker = Tracker("sqlite:///mlruns.db")  # the fixture's store, named relatively
    run = tracker.start_run("relative", "r", {}, {})
    artifact = tmp_path / "note.txt"
    artifact.write_text("x")
    tracker.log_artifact(run, artifact)
    tracker.end_run(run)
    location = tracker.client.get_experiment_by_name("relative").artifact_location
    assert location == (tmp_path / "mlartifacts" / "relative").as_uri()
    assert (tmp_path / "mlartifacts" / "relative").is_dir()
