"""`--launcher slurm`: a study's work done by N SLURM jobs, submitted through submitit, each running the sweep's
worker loop against the study's PostgreSQL and MLflow server.

Nothing new coordinates the jobs: each is an ordinary sweep on the shared storage, so claims, heartbeats and the
recovery of a dead sweep's trials (recovery.py, recording.py) give each point exactly once, whether a job is
cancelled, preempted or runs out of time. What this module adds is getting the jobs there without leaking a
secret, and following them:

- the jobs read the storage and tracking credentials from the env file by its path (on the shared file system),
  so no password is in the pickled job, the job script, the job's exported environment (slurmctld keeps that in
  its spool) or a command line; the submitting process drops those variables while sbatch runs;
- one progress bar counts the points (done / running / failed) and the jobs (pending / running) until the study
  is settled; Ctrl-C asks whether to cancel the jobs;
- `--requeue`: a job that times out or is preempted is requeued by submitit (its checkpoint is the same job
  again); its cut trials are recovered by the heartbeats and re-run once.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siamese_bench.core.errors import ConfigError, UserError, missing_extra
from siamese_bench.sweep.claims import SETTLED, Point, point_states

# The variables `services up` and `services join` write to the env file (infra/services/stack.py CLIENT_VARS),
# plus libpq's own: never exported to a job.
SECRET_VARS = (
    "SIAMESE_BENCH_STORAGE",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_TOKEN",
    "PGPASSWORD",
)
DEFAULT_LOGS = Path("slurm-logs")
# A job in any other state (PENDING, RUNNING, SIGNALING, REQUEUED, COMPLETING, ..., or UNKNOWN when squeue did not
# answer) may still train; these are the ends (squeue's long names; ENDED: squeue no longer lists the job).
ENDED_STATES = frozenset(
    ("BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED")
    + ("REVOKED", "TIMEOUT", "ENDED")
)
MAX_TIMEOUTS = 20  # --requeue: how many times one job may reach its time limit and come back (preemptions are free)
SIGNAL_BEFORE_END_S = 60  # submitit's USR2 this long before the time limit (requeue's checkpoint)


class SlurmError(UserError, RuntimeError):
    """sbatch, squeue or scancel refused or failed; the message names the option to change."""


def parse_minutes(text: str | int, what: str = "--slurm-time") -> int:
    """A time limit in whole minutes (SLURM's unit, rounded up), in sbatch's formats (minutes, minutes:seconds,
    hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds) or as 90m, 2h, 1d.
    `what` names the option or key in the error."""
    value = str(text).strip()
    number = r"\d+(?:\.\d+)?"
    try:
        if re.fullmatch(number, value):
            minutes = float(value)
        elif re.fullmatch(number + "[mhd]", value):
            minutes = float(value[:-1]) * {"m": 1, "h": 60, "d": 1440}[value[-1]]
        elif match := re.fullmatch(r"(\d+)-(\d+)(?::(\d+))?(?::(\d+))?", value):
            days, hours, mins, secs = (int(g or 0) for g in match.groups())
            minutes = (days * 24 + hours) * 60 + mins + secs / 60
        elif match := re.fullmatch(r"(\d+):(\d+)(?::(\d+))?", value):
            first, second, third = match.groups()
            if third is None:  # minutes:seconds
                minutes = int(first) + int(second) / 60
            else:  # hours:minutes:seconds
                minutes = int(first) * 60 + int(second) + int(third) / 60
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"{what} {value!r}: expected minutes (90), 90m, 2h, MM:SS, H:MM:SS, D-H, D-H:MM or D-H:MM:SS"
        ) from None
    if minutes <= 0:
        raise ConfigError(f"{what} {value!r}: must be more than 0")
    return max(1, math.ceil(minutes))


@dataclass(frozen=True)
class SlurmOptions:
    """How the jobs are asked for (command line over the spec's `slurm:` section over these defaults)."""

    jobs: int = 2
    partition: str | None = None
    minutes: int = 60
    cpus: int = 2
    gpus: int = 0
    mem_gb: float | None = None
    requeue: bool = False
    logs: Path = DEFAULT_LOGS
    env_file: Path | None = None

    def parameters(self, name: str) -> dict[str, Any]:
        """submitit SlurmExecutor parameters (sbatch's options)."""
        params: dict[str, Any] = {
            "job_name": name,
            "time": self.minutes,
            "cpus_per_task": self.cpus,
            "ntasks_per_node": 1,
            "stderr_to_stdout": True,
            "signal_delay_s": min(SIGNAL_BEFORE_END_S, max(10, self.minutes * 60 // 4)),
        }
        if self.partition:
            params["partition"] = self.partition
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.mem_gb:
            params["mem"] = f"{int(self.mem_gb * 1024)}M"
        params["additional_parameters"] = {"requeue": True} if self.requeue else {"no-requeue": True}
        return params


def read_env_file(path: Path) -> dict[str, str]:
    """The `export K=V` lines of an env file as `services up` / `services join` write it (unset lines ignored)."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"--env-file {path}: cannot read it ({err.strerror or err})") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("unset "):
            continue
        try:
            words = shlex.split(stripped)
        except ValueError:
            words = []
        if words and words[0] == "export":
            words = words[1:]
        if len(words) != 1 or "=" not in words[0]:
            raise ConfigError(f"{path}: line {number}: expected `export NAME=VALUE`")
        key, value = words[0].split("=", 1)
        values[key] = value
    return values


@contextmanager
def without_secrets() -> Iterator[None]:
    """The credentials taken out of this process's environment while sbatch runs: sbatch exports the submitter's
    environment to the job, and slurmctld keeps a copy in its spool."""
    saved = {k: os.environ.pop(k) for k in SECRET_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


# -- submitting ------------------------------------------------------------------------------
OPTION_OF = (
    ("invalid partition", "--slurm-partition"),
    ("time limit", "--slurm-time"),
    ("memory", "--slurm-mem"),
    ("gres", "--slurm-gpus"),
    ("gpu", "--slurm-gpus"),
    ("node configuration is not available", "--slurm-cpus / --slurm-gpus / --slurm-mem"),
    ("cpu count", "--slurm-cpus"),
)


def sbatch_error(message: str) -> SlurmError:
    """sbatch's refusal as one line naming the option to change."""
    lines = [ln.strip() for ln in message.splitlines() if "error" in ln.lower()] or [message.strip()]
    detail = re.sub(r"^.*?sbatch: error: ", "", lines[0])  # sbatch's first line is the specific one
    option = next((opt for needle, opt in OPTION_OF if needle in detail.lower()), None)
    hint = f" (check {option})" if option else ""
    return SlurmError(f"sbatch refused the job: {detail}{hint}")


def submit(job: Callable[[], Any], options: SlurmOptions, name: str) -> list[Any]:
    """Submit `options.jobs` jobs, each running `job` (a picklable callable: cli/slurm_job.py's SweepJob); their
    submitit Job handles."""
    try:
        import submitit
    except ImportError as err:
        raise missing_extra(err, "slurm", "--launcher slurm") from None
    if shutil.which("sbatch") is None:
        raise ConfigError("--launcher slurm: sbatch not found; run this on a SLURM login node (docs/scale-out.md)")
    executor = submitit.SlurmExecutor(folder=str(options.logs.absolute() / "%j"), max_num_timeout=MAX_TIMEOUTS)
    executor.update_parameters(**options.parameters(name))
    jobs = []
    with without_secrets():
        for _ in range(options.jobs):
            failed = None
            with captured_stderr() as stderr:
                try:
                    jobs.append(executor.submit(job))
                except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError) as err:
                    output = getattr(err, "output", None) or str(err)
                    output = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
                    failed = stderr.read_text(errors="replace") + "\n" + output
            if failed is not None:
                cancel([job.job_id for job in jobs])
                raise sbatch_error(failed)
    return jobs


@contextmanager
def captured_stderr() -> Iterator[Path]:
    """sbatch's own stderr (submitit lets it through to the terminal) into a file, for one line naming the option."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sbatch.err"
        sys.stderr.flush()
        saved = os.dup(2)
        with path.open("wb") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield path
            finally:
                os.dup2(saved, 2)
                os.close(saved)


def job_states(job_ids: Sequence[str]) -> dict[str, str]:
    """Each job's state from squeue (finished jobs stay listed for the cluster's MinJobAge); a job squeue no longer
    knows is ENDED. squeue, not sacct: many clusters keep no accounting database."""
    if not job_ids:
        return {}
    proc = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    states = {job: "ENDED" for job in job_ids}
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        return {job: "UNKNOWN" for job in job_ids}
    for line in proc.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job in states:
            states[job] = state
    return states


def cancel(job_ids: Sequence[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)


# -- following -------------------------------------------------------------------------------
@dataclass
class Followed:
    """How a launch ended: the points' states and the jobs' at the end, and the wait for the first trial."""

    settled: bool
    points: Counter[str]
    jobs: dict[str, str]
    seconds: float
    first_running_s: float | None


def follow(
    read_points: Callable[[], dict[Point, str]],
    job_ids: Sequence[str],
    progress: bool,
    poll: float = 2.0,
    say: Callable[[str], None] = print,
) -> Followed:
    """Poll the study and squeue until every point is settled, or every job has ended with points left."""
    from tqdm import tqdm

    started = time.monotonic()
    first_running: float | None = None
    bar = None
    last = ""
    try:
        while True:
            states = read_points()
            counts = Counter(states.values())
            jobs = job_states(job_ids)
            job_counts = Counter(jobs.values())
            done = sum(counts[s] for s in SETTLED)
            if first_running is None and (counts["running"] or done):
                first_running = time.monotonic() - started
            text = (
                f"points: {done} done, {counts['running']} running, {counts['failed'] + counts['diverged']} "
                f"failed, {counts['open']} open | jobs: {job_counts['PENDING']} pending, "
                f"{job_counts['RUNNING'] + job_counts['COMPLETING']} running"
            )
            if progress:
                if bar is None:
                    bar = tqdm(total=len(states), desc="slurm", unit="point", file=sys.stderr)
                bar.n = done
                bar.set_postfix_str(text.split(" | ", 1)[1] + f", {counts['running']} points running", refresh=True)
            elif text != last:
                say(f"  {time.monotonic() - started:5.0f} s  {text}")
                last = text
            settled = done == len(states)
            active = any(state not in ENDED_STATES for state in jobs.values())
            if settled or not active:
                return Followed(settled, counts, jobs, time.monotonic() - started, first_running)
            time.sleep(poll)
    finally:
        if bar is not None:
            bar.close()


def ask_cancel(job_ids: Sequence[str], say: Callable[[str], None] = print) -> None:
    """After Ctrl-C: cancel the jobs if the person says so; they keep running otherwise (or without a terminal)."""
    ids = " ".join(job_ids)
    if sys.stdin.isatty():
        try:
            answer = input(f"\ncancel the {len(job_ids)} SLURM jobs ({ids})? [y/N] ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            answer = ""
        if answer in ("y", "yes"):
            cancel(job_ids)
            say(f"cancelled jobs {ids}; their running points re-run in a later sweep")
            return
    say(f"jobs {ids} keep running; `scancel {ids}` stops them, the same command follows them again")


@dataclass
class Launch:
    """One study's (or decide round's) jobs: submitted, announced, followed."""

    job: Callable[[], Any]
    options: SlurmOptions
    name: str
    progress: bool = True
    say: Callable[[str], None] = print

    def run(self, read_points: Callable[[], dict[Point, str]]) -> Followed:
        jobs = submit(self.job, self.options, self.name)
        ids = [job.job_id for job in jobs]
        logs = self.options.logs.absolute()
        self.say(
            f"submitted {len(ids)} SLURM job{'s' if len(ids) != 1 else ''} ({' '.join(ids)}); "
            f"logs: {logs}/JOBID/JOBID_0_log.out"
        )
        try:
            return follow(read_points, ids, self.progress, say=self.say)
        except KeyboardInterrupt:
            ask_cancel(ids, self.say)
            raise


def study_points_reader(storage_url: str, study_name: str, points: Sequence[Point]) -> Callable[[], dict[Point, str]]:
    """A function that reads the points' states (all open before the first job has created the study)."""
    import optuna

    from siamese_bench.sweep.storage import make_storage

    storage = make_storage(storage_url, patience=60)

    def read() -> dict[Point, str]:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
        except KeyError:
            return dict.fromkeys(points, "open")
        return point_states(study, points)

    return read
