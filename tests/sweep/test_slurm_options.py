"""The SLURM launcher's inputs, without a cluster: time limits, env files, what may be handed to a job, sbatch's
refusals, the spec's slurm: section under the command line, and the requeue choice."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest

from siamese_bench.cli.slurm_job import JobRequest, SweepJob, job_storage, options_from
from siamese_bench.core.errors import ConfigError
from siamese_bench.sweep.slurm import (
    SlurmOptions,
    ask_cancel,
    parse_minutes,
    read_env_file,
    sbatch_error,
    without_secrets,
)
from siamese_bench.sweep.spec import load_spec

PG = "postgresql+psycopg2://app@db.lab:5432/optuna?sslmode=verify-full"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        (90, 90),
        ("90m", 90),
        ("2h", 120),
        ("1.5h", 90),
        ("1:30:00", 90),
        ("0:00:30", 1),
        ("1-00:00:00", 1440),
        ("2:30", 3),  # sbatch's minutes:seconds, rounded up
        ("1-12", 2160),
        ("1-2:30", 1590),
    ],
)
def test_time_limits_in_whole_minutes(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["soon", "0", "1:2:3:4", "x-1:00:00", "-5"])
def test_bad_time_limit_names_the_option(text):
    with pytest.raises(ConfigError, match="--slurm-time"):
        parse_minutes(text)


def test_env_file_as_services_write_it(tmp_path):
    env = tmp_path / "env"
    env.write_text(
        "# written by siamese-bench services up\nexport SIAMESE_BENCH_STORAGE='postgresql://app:p%40ss@h/o'\n"
        "export MLFLOW_TRACKING_URI=https://h:5000\nunset MLFLOW_TRACKING_TOKEN\n\n"
    )
    assert read_env_file(env) == {
        "SIAMESE_BENCH_STORAGE": "postgresql://app:p%40ss@h/o",
        "MLFLOW_TRACKING_URI": "https://h:5000",
    }
    env.write_text("export A=1\nrm -rf /\n")
    with pytest.raises(ConfigError, match=r"env: line 2: expected `export NAME=VALUE`"):
        read_env_file(env)
    with pytest.raises(ConfigError, match="--env-file .*nope: cannot read it"):
        read_env_file(tmp_path / "nope")


def test_secrets_leave_the_environment_while_sbatch_runs_and_come_back(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2")
    monkeypatch.setenv("SIAMESE_BENCH_STORAGE", PG)
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
    import os

    with without_secrets():
        assert "MLFLOW_TRACKING_PASSWORD" not in os.environ and "SIAMESE_BENCH_STORAGE" not in os.environ
        assert os.environ["SLURM_CONF"] == "/etc/slurm/slurm.conf"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "hunter2"


def test_job_storage_refuses_what_a_job_cannot_use_or_must_not_see(monkeypatch, tmp_path):
    monkeypatch.delenv("SIAMESE_BENCH_STORAGE", raising=False)
    with_env = SlurmOptions(env_file=tmp_path / "env")
    with pytest.raises(ConfigError, match="is a file on this machine"):
        job_storage(with_env, None, None)  # the default journal file
    with pytest.raises(ConfigError, match="is a file on this machine"):
        job_storage(with_env, "sqlite:///study.db", None)
    with pytest.raises(ConfigError, match="--storage holds a password"):
        job_storage(with_env, PG.replace("app@", "app:secret@"), None)
    with pytest.raises(ConfigError, match="--tracking-uri holds a password"):
        job_storage(with_env, PG, "https://me:secret@h:5000")
    monkeypatch.setenv("SIAMESE_BENCH_STORAGE", PG.replace("app@", "app:secret@"))
    with pytest.raises(ConfigError, match="no env file gives it"):
        job_storage(SlurmOptions(), None, None)
    assert job_storage(with_env, None, None) == (None, None)  # the job reads it from the env file
    assert job_storage(SlurmOptions(), PG, "https://h:5000") == (PG, "https://h:5000")


@pytest.mark.parametrize(
    ("stderr", "option"),
    [
        (
            "sbatch: error: invalid partition specified: gpu\nsbatch: error: Batch job submission failed",
            "--slurm-partition",
        ),
        ("sbatch: error: Batch job submission failed: Requested time limit is invalid", "--slurm-time"),
        ("sbatch: error: Memory specification can not be satisfied", "--slurm-mem"),
        ("sbatch: error: Invalid generic resource (gres) specification", "--slurm-gpus"),
    ],
)
def test_sbatch_refusal_is_one_line_naming_the_option(stderr, option):
    message = str(sbatch_error(stderr))
    assert "\n" not in message and message.startswith("sbatch refused the job: ") and option in message


def args(**given) -> argparse.Namespace:
    names = ("jobs", "slurm_partition", "slurm_time", "slurm_cpus", "slurm_gpus", "slurm_mem", "requeue")
    return argparse.Namespace(
        **{n: given.get(n) for n in names}, env_file=given.get("env_file"), slurm_logs=given.get("slurm_logs")
    )


def spec_with(tmp_path: Path, slurm: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: s
            base: {dataset: digits, epochs: 1}
            factors: {head: [euclidean]}
            seeds: [0]
            """
        )
        + slurm
    )
    return path


def test_spec_section_under_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_spec(spec_with(tmp_path, "slurm: {jobs: 4, partition: cpu, time: 2h, cpus: 8, requeue: true}\n"))
    options = options_from(args(jobs=3), spec.slurm)
    assert (options.jobs, options.partition, options.minutes, options.cpus, options.requeue) == (3, "cpu", 120, 8, True)
    assert options_from(args(slurm_time="45"), spec.slurm).minutes == 45
    assert options_from(args(), None) == SlurmOptions()  # no section, no options: the defaults
    params = options.parameters("siamese-s")
    assert params["partition"] == "cpu" and params["time"] == 120 and params["cpus_per_task"] == 8
    assert params["additional_parameters"] == {"requeue": True} and params["signal_delay_s"] == 60
    (tmp_path / ".services").mkdir()
    (tmp_path / ".services" / "env").write_text("export A=1\n")
    assert options_from(args(), None).env_file == tmp_path / ".services" / "env"  # services up's, when present


def test_spec_section_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="slurm.time 'tomorrow'"):
        load_spec(spec_with(tmp_path, "slurm: {time: tomorrow}\n"))
    with pytest.raises(ConfigError, match="slurm.jobs"):
        load_spec(spec_with(tmp_path, "slurm: {jobs: 0}\n"))
    with pytest.raises(ConfigError, match="--jobs must be at least 1"):
        options_from(args(jobs=0), None)


def test_a_job_requeues_only_when_asked():
    request = JobRequest(path="study.yaml")
    assert SweepJob(request).checkpoint() is None  # submitit then ends the job; the others recover its points
    again = SweepJob(request, requeue=True).checkpoint()
    assert isinstance(again.function, SweepJob) and again.function.requeue and again.function.request is request


def test_interrupt_without_a_terminal_leaves_the_jobs_running(monkeypatch):
    said: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    ask_cancel(["11", "12"], said.append)
    assert said == ["jobs 11 12 keep running; `scancel 11 12` stops them, the same command follows them again"]
