"""The SLURM job itself and the command line's side of `--launcher slurm`: what a job runs (a sweep of a spec, or of
a claims file's round for decide), and the options and storage a launch may hand it. sweep/slurm.py submits and
follows the jobs; this module sits on the command line's level because a job runs what `sweep` and `decide` run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siamese_bench.core.errors import ConfigError
from siamese_bench.core.redact import mask_url
from siamese_bench.sweep.claims import Point
from siamese_bench.sweep.slurm import DEFAULT_LOGS, SlurmOptions, parse_minutes, read_env_file

DEFAULT_ENV_FILE = Path(".services/env")


@dataclass
class JobRequest:
    """What one job runs: a sweep of a spec (or of a claims file's study, for decide's rounds), with the sweep's
    options. Holds no secret: the storage and tracking URLs come from the env file unless they carry none."""

    path: str
    claims: bool = False  # path is a claims file (decide): its study spec is rebuilt from it
    max_seeds: int | None = None
    name: str | None = None
    seeds: list[int] | None = None
    points: list[Point] | None = None
    plugins: list[str] = field(default_factory=list)
    storage: str | None = None
    tracking_uri: str | None = None
    env_file: str | None = None
    cwd: str = "."
    options: dict[str, Any] = field(default_factory=dict)  # workers, threads, heartbeat, grace, outage, ...

    def spec(self) -> Any:
        if self.claims:
            from siamese_bench.decide.plan import make_plan

            plan = make_plan(self.path, self.max_seeds or 10, self.plugins)
            spec = plan.spec
            if self.name:
                spec = spec.model_copy(update={"name": self.name})
                spec._path = plan.path
            return spec
        from siamese_bench.sweep.spec import load_spec

        return load_spec(self.path)


class SweepJob:
    """The callable submitit pickles: loads the env file, then runs one sweep to the study's end."""

    def __init__(self, request: JobRequest, requeue: bool = False) -> None:
        self.request = request
        self.requeue = requeue

    def __call__(self) -> dict[str, Any]:
        request = self.request
        os.chdir(request.cwd)
        if request.env_file:
            os.environ.update(read_env_file(Path(request.env_file)))
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        from siamese_bench.cli import quiet_libraries
        from siamese_bench.core import plugins
        from siamese_bench.infra import forkserver
        from siamese_bench.sweep.pool import PRELOAD

        quiet_libraries(verbose=False, command="sweep")  # the sweep's INFO lines go to the job's log
        forkserver.start(PRELOAD)
        from siamese_bench.infra.tracking import Tracker
        from siamese_bench.sweep.runner import Sweep
        from siamese_bench.sweep.storage import Heartbeats, resolve_storage_url

        plugins.load_all(plugins.resolve(request.plugins))
        opts = dict(request.options)
        tracker = Tracker(
            request.tracking_uri, system_metrics=opts.pop("system_metrics", False), outage=opts.get("outage", 300)
        )
        heartbeats = Heartbeats(opts.pop("heartbeat", 10), opts.pop("grace", 60))
        workers = opts.pop("workers", None) or int(os.environ.get("SLURM_CPUS_PER_TASK", "0")) or 1
        summary = Sweep(
            request.spec(),
            resolve_storage_url(request.storage),
            tracker,
            workers,
            progress=False,
            heartbeats=heartbeats,
            seeds=request.seeds,
            points=request.points,
            plugin_names=request.plugins,
            **opts,
        ).run()
        return asdict(summary)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """With --requeue, a timed-out or preempted job comes back as the same sweep: its cut trials are found
        dead (PID gone, or silent past the grace) and re-run, the finished ones kept. Without it, None: submitit
        then ends the job, and the other jobs (or the next launch) recover its points."""
        if not self.requeue:
            return None
        import submitit

        return submitit.helpers.DelayedSubmission(SweepJob(self.request, requeue=True))


def job_storage(options: SlurmOptions, storage: str | None, tracking_uri: str | None) -> tuple[str | None, str | None]:
    """The storage and tracking URLs a job may be handed directly (those without a password); the env file must
    supply the others. Refuses what would leave the jobs without a reachable storage."""
    from siamese_bench.sweep.storage import is_rdb, resolve_storage_url

    url = resolve_storage_url(storage)
    if not is_rdb(url) or url.startswith("sqlite"):
        raise ConfigError(
            f"--launcher slurm: storage {mask_url(url)} is a file on this machine; the jobs need the study's "
            "PostgreSQL server: `make services-up SERVICES_HOST=0.0.0.0`, then --env-file .services/env "
            "(docs/scale-out.md, On a SLURM cluster)"
        )
    for what, value in (("--storage", storage), ("--tracking-uri", tracking_uri)):
        if value and mask_url(value) != value:
            raise ConfigError(
                f"--launcher slurm: {what} holds a password, which would be written into the jobs; put it in the "
                "env file instead (--env-file; `siamese-bench services bundle` / `join` write one)"
            )
    if options.env_file is None and mask_url(url) != url:
        raise ConfigError(
            "--launcher slurm: the storage URL in SIAMESE_BENCH_STORAGE holds a password and no env file gives it "
            f"to the jobs: pass --env-file (the file `services up` or `services join` wrote, e.g. {DEFAULT_ENV_FILE})"
        )
    return storage, tracking_uri


def options_from(args: Any, spec_slurm: Any | None) -> SlurmOptions:
    """SlurmOptions from the command line over the spec's `slurm:` section."""

    def pick(arg: Any, key: str, default: Any) -> Any:
        if arg is not None:
            return arg
        if spec_slurm is not None and getattr(spec_slurm, key, None) is not None:
            return getattr(spec_slurm, key)
        return default

    env_file = args.env_file
    if env_file is None and DEFAULT_ENV_FILE.exists():
        env_file = DEFAULT_ENV_FILE
    jobs = pick(args.jobs, "jobs", 2)
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    cpus = pick(args.slurm_cpus, "cpus", 2)
    if cpus < 1:
        raise ConfigError(f"--slurm-cpus must be at least 1, got {cpus}")
    gpus = pick(args.slurm_gpus, "gpus", 0)
    if gpus < 0:
        raise ConfigError(f"--slurm-gpus must be 0 or more, got {gpus}")
    mem = pick(args.slurm_mem, "mem_gb", None)
    if mem is not None and mem <= 0:
        raise ConfigError(f"--slurm-mem must be more than 0 GB, got {mem:g}")
    return SlurmOptions(
        jobs=jobs,
        partition=pick(args.slurm_partition, "partition", None),
        minutes=parse_minutes(pick(args.slurm_time, "time", "60"), "--slurm-time" if args.slurm_time else "slurm.time"),
        cpus=cpus,
        gpus=gpus,
        mem_gb=mem,
        requeue=bool(args.requeue or (spec_slurm is not None and spec_slurm.requeue)),
        logs=Path(args.slurm_logs) if args.slurm_logs else DEFAULT_LOGS,
        env_file=Path(env_file).absolute() if env_file else None,
    )
