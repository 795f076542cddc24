"""Backups against real servers: back up in the middle of a study (TLS and MLflow accounts on), destroy the cluster
and the artifacts, restore, resume; every point done exactly once, every finished run and its artifacts present."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from servers import (
    ARTIFACTS,
    audit_study,
    secrets_of,
    start_services,
    sweep_command,
    trial_states,
    wait_for,
    write_study,
)

from siamese_bench.infra.services import ServiceError, Services
from siamese_bench.infra.services.backup import backup, read_manifest, restore

pytestmark = pytest.mark.slow
STUDY = "backup-mid-study"
HEADS, SEEDS = 2, [0, 1, 2]
# the trial in flight at the backup is found dead at once on resume (a stack's runs may have ended
# FINISHED before their trials were told: the restore adopts those trials, sweep/recording.py)
BEATS = ("--heartbeat", "1", "--grace", "5")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    yield from start_services(tmp_path_factory, tls=True, auth=True)


def client_env(services: Services, monkeypatch) -> dict[str, str]:
    """The env file's variables, in this process (the audit's MLflow client) and for the sweeps."""
    values = services.client_env()
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


def test_backup_mid_study_destroy_restore_resume(services: Services, tmp_path: Path, monkeypatch) -> None:
    env = client_env(services, monkeypatch)
    storage, tracking = env["SIAMESE_BENCH_STORAGE"], env["MLFLOW_TRACKING_URI"]
    spec = write_study(tmp_path, STUDY, epochs=6, seeds=SEEDS)
    points = HEADS * len(SEEDS)
    first_log = tmp_path / "first.log"
    first = subprocess.Popen(
        sweep_command(spec, *BEATS),
        cwd=tmp_path,
        env=env,
        stdout=first_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        at_backup = wait_for(
            lambda: (s := trial_states(storage, STUDY)).get("COMPLETE", 0) >= 2 and s.get("RUNNING", 0) >= 1 and s,
            "2 finished trials and one running",
            first_log,
        )
        archive = backup(services, tmp_path / "backups")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    # the archive: timestamped, private, both databases, the artifacts, the credentials but not the superuser's
    assert archive.name.startswith("siamese-bench-services-") and archive.name.endswith("Z.tar.gz")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    manifest = read_manifest(archive)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "optuna.dump", "mlflow.dump", "secrets/tls/ca.crt", "secrets/app.password"} <= names
    assert "secrets/pg-superuser.password" not in names and manifest["artifact_files"] >= 3 * 2

    # destroy everything the servers stored; the credentials in .services/ stay
    services.down()
    services.pg.destroy()
    shutil.rmtree(services.mlflow.artifacts_dir)
    assert not services.pg.status().running and not services.pg.data.exists()

    restore(services, archive)
    restored = trial_states(storage, STUDY)
    assert restored.get("COMPLETE", 0) >= 2 and restored.get("RUNNING", 0) >= 1  # as the dump saw them
    restored_runs = complete_runs(storage)
    client = MlflowClient(tracking)
    for run_id in restored_runs:  # finished before the backup: back, with their files, before anything reruns
        assert client.get_run(run_id).info.status == "FINISHED"
        assert ARTIFACTS <= {f.path for f in client.list_artifacts(run_id, "outputs")}
    with pytest.raises(ServiceError, match="not restoring over data .*--force"):
        restore(services, archive)  # a cluster that holds data is not overwritten

    second_log = tmp_path / "second.log"
    with second_log.open("w") as out:
        done = subprocess.run(
            sweep_command(spec, *BEATS), cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900
        )
    assert done.returncode == 0, second_log.read_text()[-3000:]

    audit = audit_study(storage, tracking, STUDY, points)
    assert restored_runs <= audit["finished"]  # the points done before the backup were not done again
    model = client.download_artifacts(sorted(restored_runs)[0], "outputs/model.pt", str(tmp_path / "dl"))
    assert Path(model).stat().st_size > 1000  # the restored artifact is the real file, not a stub
    failed = [t for t in audit["trials"] if t.state.name == "FAIL"]
    adopted = [t for t in audit["trials"] if "adopted_run" in t.user_attrs]
    # the trials in flight at the backup, found dead: re-run, or adopted when their runs had finished
    assert len(failed) + len(adopted) == restored.get("RUNNING", 0)
    text = "\n".join((first_log.read_text(), second_log.read_text()))
    assert not [name for name, secret in secrets_of(services).items() if secret in text]
    print(
        json.dumps(
            {
                "points": points,
                "at_backup_poll": at_backup,
                "in_dump": restored,
                "final_complete": len([t for t in audit["trials"] if t.state.name == "COMPLETE"]),
                "final_failed_recovered": len(failed),
                "final_adopted": len(adopted),
                "finished_runs_with_artifacts": len(audit["finished"]),
                "runs_kept_from_backup": len(restored_runs),
                "archive_artifact_files": manifest["artifact_files"],
            }
        )
    )


def complete_runs(storage: str) -> set[str]:
    import optuna

    from siamese_bench.sweep.storage import make_storage

    trials = optuna.load_study(study_name=STUDY, storage=make_storage(storage)).get_trials()
    return {t.user_attrs["mlflow_run_id"] for t in trials if t.state.name == "COMPLETE"}
