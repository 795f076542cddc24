"""`--launcher slurm` against a real SLURM: a one-node cluster (Debian's slurmctld, slurmd and munge, started by
infra/services/slurm.py, 2 CPUs as 2 job slots) and the secure services (TLS, accounts). Each study is audited
point by point: every point COMPLETE exactly once, one FINISHED MLflow run each, no other run FINISHED."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from servers import (
    audit_study,
    free_port,
    secrets_of,
    start_services,
    sweep_command,
    trial_states,
    wait_for,
    write_study,
)

from siamese_bench.core.words import plural
from siamese_bench.infra.services import Services
from siamese_bench.infra.services.slurm import SlurmCluster, missing_slurm_tools

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="a local SLURM cluster runs as root"),
    pytest.mark.skipif(bool(missing_slurm_tools()), reason="SLURM not installed (.ci/run installs it)"),
]
submitit = pytest.importorskip("submitit")
BEATS = ("--heartbeat", "1", "--grace", "5")
SUBMITTED = re.compile(r"submitted (\d+) SLURM jobs? \(([\d ]+)\)")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    yield from start_services(tmp_path_factory, tls=True, auth=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    slurm = SlurmCluster(
        tmp_path_factory.mktemp("slurm"), cpus=2, ctld_port=free_port(), node_port=free_port(), say=lambda _: None
    )
    try:
        slurm.up()
        yield slurm
    finally:
        slurm.down()  # cancels the jobs left by a failed test first


@pytest.fixture
def audit_env(services: Services, monkeypatch) -> dict[str, str]:
    """The credentials in this process only (the audit's clients); the launcher gets them from --env-file."""
    values = services.client_env()
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def launcher_env(cluster: SlurmCluster) -> dict[str, str]:
    """The submitting shell's environment: SLURM_CONF, and no storage or tracking variable at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SIAMESE_BENCH_STORAGE", "PG"))}
    return {**env, **cluster.env()}


def launch_command(spec: Path, services: Services, *extra: str) -> list[str]:
    """A sweep launched on SLURM: the jobs read the credentials from the env file (this process has none)."""
    return sweep_command(spec, "--launcher", "slurm", "--env-file", str(services.env_file), *BEATS, *extra)


def files_holding(secrets: dict[str, str], *folders: Path) -> list[str]:
    """Every (file, secret name) where a secret's text appears, in every file under the folders."""
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found += [f"{path}: {name}" for name, value in secrets.items() if value.encode() in data]
    return found


def job_ids(log: Path) -> list[str]:
    match = SUBMITTED.search(log.read_text())
    return match.group(2).split() if match else []


def test_eight_points_through_two_jobs_each_once_no_secret_written(
    services: Services, cluster: SlurmCluster, audit_env: dict[str, str], tmp_path: Path
) -> None:
    storage = audit_env["SIAMESE_BENCH_STORAGE"]
    study = "slurm-eight"
    spec = write_study(tmp_path, study, epochs=2, seeds=[0, 1, 2, 3])  # 2 heads x 4 seeds
    log = tmp_path / "launch.log"
    started = time.monotonic()
    launcher = subprocess.Popen(
        launch_command(spec, services, "--jobs", "2", "--slurm-cpus", "1", "--slurm-time", "10"),
        cwd=tmp_path,
        env=launcher_env(cluster),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    secrets = secrets_of(services)
    assert secrets and files_holding(secrets, services.services_dir)  # the search finds what is there
    # midway, while slurmctld holds the jobs' scripts and environments: no secret anywhere the jobs wrote
    wait_for(lambda: trial_states(storage, study).get("COMPLETE", 0) >= 1, "a first complete point", log)
    midway = files_holding(secrets, tmp_path, cluster.folder)
    assert launcher.wait(timeout=600) == 0, log.read_text()[-3000:]
    wall = time.monotonic() - started
    text = log.read_text()

    assert not midway and not files_holding(secrets, tmp_path, cluster.folder)
    ids = job_ids(log)
    assert len(ids) == 2, text
    audit = audit_study(storage, audit_env["MLFLOW_TRACKING_URI"], study, 8)
    assert len(audit["finished"]) == 8
    # both jobs trained points: the work was shared, each point in one job only
    owners = {t.user_attrs.get("slurm_job") for t in audit["trials"] if t.state.name == "COMPLETE"}
    assert owners == set(ids), owners
    assert "8 points complete, 0 failed, 0 left" in text and "first trial running after" in text, text
    for job in ids:  # each job's log: the sweep's own summary line, where the launcher said they land
        job_log = tmp_path / "slurm-logs" / job / f"{job}_0_log.out"
        assert "study slurm-eight" in job_log.read_text(), job_log.read_text()[-2000:]
    summary = next(line for line in text.splitlines() if line.startswith(f"study {study}:"))
    print(f"\n8 points, 2 jobs, wall {wall:.0f} s; {summary}")


def cluster_states(cluster: SlurmCluster, ids: list[str]) -> dict[str, str]:
    from siamese_bench.sweep.slurm import job_states

    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = cluster.env()["SLURM_CONF"]
    try:
        return job_states(ids)
    finally:
        if saved is None:
            del os.environ["SLURM_CONF"]
        else:
            os.environ["SLURM_CONF"] = saved


def launch(spec: Path, services: Services, cluster: SlurmCluster, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        launch_command(spec, services, "--slurm-cpus", "1", "--stack-seeds", "1", *extra),
        cwd=spec.parent,
        env=launcher_env(cluster),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def job_log(tmp_path: Path, job: str) -> str:
    return (tmp_path / "slurm-logs" / job / f"{job}_0_log.out").read_text()


def timeline(trials) -> str:
    """The trials in order, for a failure message: who trained what, when."""
    return "\n".join(
        f"{t.number} {t.state.name} job {t.user_attrs.get('slurm_job')} {t.user_attrs.get('cell')} "
        f"seed {t.user_attrs.get('seed')} {t.datetime_start and t.datetime_start.time()}"
        for t in sorted(trials, key=lambda t: t.number)
    )


def test_a_cancelled_job_and_one_at_its_time_limit_lose_nothing_and_repeat_nothing(
    services: Services, cluster: SlurmCluster, audit_env: dict[str, str], tmp_path: Path
) -> None:
    """Two jobs with a 2-minute limit and --requeue, one point at a time each. While both train, one is scancelled;
    the other is left more work than its limit holds: SLURM signals it 60 to 90 s in (the 30 s warning plus its
    30 s check period), it requeues itself, and its next run re-runs what the signal cut. Every point once."""
    storage = audit_env["SIAMESE_BENCH_STORAGE"]
    study = "slurm-cut"
    spec = write_study(tmp_path, study, epochs=25, seeds=list(range(15)))  # 30 points of about 3 s each
    log = tmp_path / "launch.log"
    started = time.monotonic()
    launcher = launch(spec, services, cluster, log, "--jobs", "2", "--slurm-time", "2", "--requeue")
    cancelled, survivor = wait_for(lambda: job_ids(log), "job ids", log)
    wait_for(lambda: {cancelled, survivor} <= running_jobs(storage, study), "both jobs training a point", log)
    subprocess.run(["scancel", cancelled], env=launcher_env(cluster), check=True)
    assert launcher.wait(timeout=600) == 0, log.read_text()[-3000:]
    wall = time.monotonic() - started

    audit = audit_study(storage, audit_env["MLFLOW_TRACKING_URI"], study, 30)
    states = cluster_states(cluster, [cancelled, survivor])
    text = job_log(tmp_path, survivor)
    timeouts = len(set(re.findall(r"\(([\d:, -]+)\) - Caught signal SIGUSR2 on \S+ this job is timed-out", text)))
    requeues = len(set(re.findall(rf"\(([\d:, -]+)\) - Requeued job {survivor} ", text)))
    assert states == {cancelled: "CANCELLED", survivor: "COMPLETED"}, states
    assert timeouts >= 1 and requeues == timeouts, text[-3000:]
    failed = [t for t in audit["trials"] if t.state.name == "FAIL"]
    adopted = [t for t in audit["trials"] if "adopted_run" in t.user_attrs]
    # what each cut cost: a trial failed and its point re-run once, or, when the cut came after the point's run had
    # ended FINISHED (logging its files) but before its trial was told, the trial adopted from that run
    cut = Counter(t.user_attrs.get("slurm_job") for t in [*failed, *adopted])
    assert cut[cancelled] == 1 and 1 <= cut[survivor] <= timeouts, timeline(audit["trials"])
    assert set(cut) == {cancelled, survivor}, timeline(audit["trials"])
    print(
        f"\n30 points, 2 jobs: 1 cancelled, 1 at its 2-minute limit {plural(timeouts, 'time')} (requeued); "
        f"{plural(len(failed), 'cut trial')} re-run once each, {len(adopted)} adopted from finished runs, "
        f"duplicates 0, lost 0, wall {wall:.0f} s"
    )


def running_jobs(storage: str, study: str) -> set[str]:
    """The SLURM jobs that hold a RUNNING trial of the study."""
    import optuna
    from optuna.trial import TrialState

    from siamese_bench.sweep.storage import make_storage

    try:
        loaded = optuna.load_study(study_name=study, storage=make_storage(storage))
    except KeyError:  # no job has created the study yet
        return set()
    trials = loaded.get_trials(states=(TrialState.RUNNING,))
    return {str(t.user_attrs.get("slurm_job")) for t in trials}


def test_no_such_partition_is_one_line_naming_the_option(
    services: Services, cluster: SlurmCluster, tmp_path: Path
) -> None:
    spec = write_study(tmp_path, "slurm-nopart", epochs=1, seeds=[0])
    done = subprocess.run(
        launch_command(spec, services, "--slurm-partition", "nosuch"),
        cwd=tmp_path,
        env=launcher_env(cluster),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and "--slurm-partition" in error[0] and "Traceback" not in done.stderr, done.stderr


def test_decide_rounds_through_slurm_jobs(
    services: Services, cluster: SlurmCluster, audit_env: dict[str, str], tmp_path: Path
) -> None:
    """decide with --launcher slurm: each round's points done by the jobs, judged here; the example's verdicts."""
    import shutil

    example = Path(__file__).resolve().parents[2] / "examples" / "own-head"
    shutil.copytree(example, tmp_path / "own-head")
    command = [sys.executable, "-m", "siamese_bench", "decide", "own-head/claims.yaml", "--name", "slurm-decide"]
    command += ["--launcher", "slurm", "--jobs", "2", "--slurm-cpus", "1", "--env-file", str(services.env_file)]
    done = subprocess.run(
        [*command, "--threads", "1", "--no-progress", "--json", *BEATS],
        cwd=tmp_path,
        env=launcher_env(cluster),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    rows = {r["id"]: r["verdict"] for r in result["rows"]}
    assert rows == {"product learns": "reproduced", "product vs concat": "reproduced"}, rows
    audit = audit_study(audit_env["SIAMESE_BENCH_STORAGE"], audit_env["MLFLOW_TRACKING_URI"], "slurm-decide", 6)
    assert len({t.user_attrs.get("slurm_job") for t in audit["trials"] if t.state.name == "COMPLETE"}) == 2


def test_services_up_slurm_starts_a_cluster_that_takes_jobs(services: Services, tmp_path: Path) -> None:
    """The command a user without a cluster runs: `services up --slurm` (the servers are up already: idempotent)."""
    from siamese_bench.infra.services.process import port_free
    from siamese_bench.infra.services.slurm import DEFAULT_CTLD_PORT, DEFAULT_NODE_PORT

    if not (port_free("127.0.0.1", DEFAULT_CTLD_PORT) and port_free("127.0.0.1", DEFAULT_NODE_PORT)):
        pytest.skip("the default SLURM ports are taken on this machine")
    cli = [sys.executable, "-m", "siamese_bench", "services"]
    folder = ["--dir", str(services.services_dir)]
    try:
        up = subprocess.run([*cli, "up", "--slurm", *folder], capture_output=True, text=True, timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
        conf = re.search(r"^export SLURM_CONF=(\S+)$", up.stdout, re.M)
        assert conf and Path(conf.group(1)).is_file(), up.stdout
        status = subprocess.run([*cli, "status", *folder], capture_output=True, text=True, timeout=60).stdout
        assert "munged running, slurmctld running, slurmd running" in status, status
        out = tmp_path / "job.out"
        env = {**os.environ, "SLURM_CONF": conf.group(1)}
        subprocess.run(
            ["sbatch", "--wait", "-o", str(out), "--wrap", "echo ran"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert out.read_text().strip() == "ran"
    finally:
        SlurmCluster(services.services_dir / "slurm", say=lambda _: None).down()
