"""`siamese-bench sweep SPEC`: run (or resume) an Optuna study from a spec file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from siamese_bench.cli.common import add_plugin_argument, add_tracking_arguments, load_plugins, show_progress
from siamese_bench.core.errors import ConfigError
from siamese_bench.core.words import plural

DESCRIPTION = (
    "Run every cell x seed of a study spec once, in parallel worker processes, tracked in MLflow "
    "(a parent run per study, a child run per trial). Running the same command again resumes: "
    "finished trials are kept, trials of a killed run are marked failed and re-run. Several sweeps "
    "of one spec on one storage (PostgreSQL for several machines) share the work: each cell x seed "
    "is trained once, and a sweep that dies is detected and its points re-run."
)


def study_state(summary: Any) -> str:
    if summary.study_done:
        return "done"
    if summary.seeds_left:
        return f"not done (seeds {', '.join(map(str, summary.seeds_left))} left for a later sweep)"
    return "not done (other sweeps still run)"


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed, e.g. 0")
    return seeds


def print_dry_run(spec: Any, seeds: list[int]) -> None:
    cells = spec.cells()
    print(
        f"study {spec.name}: {plural(len(cells), 'cell')} x {plural(len(seeds), 'seed')} = "
        f"{plural(len(cells) * len(seeds), 'trial')}"
        f"{spec.seeds_note(seeds)}"
    )
    if spec.tune:
        print(
            f"  first, tuning {', '.join(spec.tune.params)}: {len(cells)} cells x "
            f"{spec.tune.trials_per_cell} trials on seed {spec.tune.seed}, {spec.tune.pruner} pruner"
        )
    for cell in cells:
        print(f"  run      {cell.id}")
    for cell, reason in spec.excluded():
        print(f"  excluded {cell.id}: {reason}")


def cmd_sweep(args: argparse.Namespace) -> int:
    from siamese_bench.core import plugins
    from siamese_bench.core.redact import mask_url
    from siamese_bench.infra.forkserver import available_cores
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.sweep.runner import Sweep
    from siamese_bench.sweep.spec import load_spec
    from siamese_bench.sweep.storage import Heartbeats, resolve_storage_url
    from siamese_bench.sweep.table import cell_table, format_cell_table, trials_frame

    load_plugins(args)  # before the spec: its cells may name a plugin's parts
    spec = load_spec(args.spec)
    seeds = spec.chosen_seeds(args.seeds)
    if args.dry_run:
        print_dry_run(spec, seeds)
        return 0
    if args.launcher == "slurm":
        return launch_slurm_sweep(args, spec, seeds)
    workers = args.workers or available_cores()
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    storage = resolve_storage_url(args.storage)
    heartbeats = Heartbeats(args.heartbeat, args.grace)
    tracker = Tracker(args.tracking_uri, system_metrics=args.system_metrics, outage=args.outage)
    sweep = Sweep(
        spec,
        storage,
        tracker,
        workers,
        progress=show_progress(args),
        heartbeats=heartbeats,
        outage=args.outage,
        threads=args.threads,
        seeds=seeds,
        plugin_names=plugins.resolve(args.plugin),
        stack_seeds=args.stack_seeds,
    )
    summary = sweep.run()
    study = sweep.grid_study()
    factors = spec.cell_keys()
    print(
        f"\nstudy {spec.name} ({mask_url(storage)}): this sweep finished {summary.completed} trials, "
        f"{summary.failed} failed, {summary.pruned} pruned, {summary.stale} recovered from a dead sweep, "
        f"{summary.seconds:.0f} s; study {study_state(summary)}"
    )
    if summary.tune_epochs_budget:
        saved = summary.tune_epochs_budget - summary.tune_epochs_run
        print(
            f"tuning: pruning ran {summary.tune_epochs_run} of {summary.tune_epochs_budget} epochs "
            f"({saved / summary.tune_epochs_budget:.0%} saved)"
        )
    print(format_cell_table(cell_table(trials_frame(study), factors), factors))
    return 0 if summary.failed == 0 else 1


def slurm_request(args: argparse.Namespace, path: str, **fields: Any) -> tuple[Any, Any, str]:
    """The jobs' request and the storage URL this process follows them on; loads the env file here too."""
    import os

    from siamese_bench.cli.slurm_job import JobRequest, job_storage, options_from
    from siamese_bench.core import plugins
    from siamese_bench.sweep.slurm import read_env_file
    from siamese_bench.sweep.storage import resolve_storage_url

    options = options_from(args, fields.pop("spec_slurm", None))
    if options.env_file is not None:
        os.environ.update(read_env_file(options.env_file))
    storage, tracking = job_storage(options, args.storage, args.tracking_uri)
    request = JobRequest(
        path=str(Path(path).absolute()),
        plugins=plugins.resolve(args.plugin),
        storage=storage,
        tracking_uri=tracking,
        env_file=str(options.env_file) if options.env_file else None,
        cwd=os.getcwd(),
        options={
            "workers": args.workers,
            "threads": args.threads,
            "heartbeat": args.heartbeat,
            "grace": args.grace,
            "outage": args.outage,
            "stack_seeds": args.stack_seeds,
            "system_metrics": getattr(args, "system_metrics", False),
        },
        **fields,
    )
    return request, options, resolve_storage_url(args.storage)


def slurm_job(request: Any, options: Any) -> Any:
    """The picklable callable each SLURM job runs."""
    from siamese_bench.cli.slurm_job import SweepJob

    return SweepJob(request, requeue=options.requeue)


def launch_slurm_sweep(args: argparse.Namespace, spec: Any, seeds: list[int]) -> int:
    """`sweep --launcher slurm`: the study's points done by SLURM jobs; returns when the study is settled."""
    import optuna

    from siamese_bench.core.redact import mask_url
    from siamese_bench.sweep.slurm import Launch, study_points_reader
    from siamese_bench.sweep.table import cell_table, format_cell_table, trials_frame

    request, options, storage = slurm_request(
        args, str(spec.path), seeds=None if seeds == spec.seeds else seeds, spec_slurm=spec.slurm
    )
    points = [(cell.id, seed) for cell in spec.cells() for seed in seeds]
    print(
        f"study {spec.name} ({mask_url(storage)}): {plural(len(points), 'point')} on "
        f"{plural(options.jobs, 'SLURM job')} of {plural(options.cpus, 'CPU')}, {plural(options.gpus, 'GPU')}, "
        f"{options.minutes} min"
        + (f", partition {options.partition}" if options.partition else "")
        + (", requeued on timeout or preemption" if options.requeue else "")
    )
    read = study_points_reader(storage, spec.name, points)
    job = slurm_job(request, options)
    followed = Launch(job, options, f"siamese-{spec.name}", progress=show_progress(args)).run(read)
    counts = followed.points
    first = f"{followed.first_running_s:.0f} s" if followed.first_running_s is not None else "never"
    print(
        f"\nstudy {spec.name}: {counts['complete']} points complete, {counts['failed'] + counts['diverged']} "
        f"failed, {counts['running'] + counts['open']} left; {followed.seconds:.0f} s, first trial running after "
        f"{first}; jobs: " + ", ".join(f"{job} {state}" for job, state in followed.jobs.items())
    )
    if not followed.settled:
        print(
            "the jobs ended with points left (cancelled, or out of time without --requeue): run the same "
            "command again to finish them"
        )
        return 1
    study = optuna.load_study(study_name=spec.name, storage=storage)
    factors = spec.cell_keys()
    print(format_cell_table(cell_table(trials_frame(study), factors), factors))
    return 0 if counts["failed"] + counts["diverged"] == 0 else 1


def add_launcher_arguments(p: argparse.ArgumentParser) -> None:
    """Where the workers run: here, or in SLURM jobs (sweep and decide share these)."""
    g = p.add_argument_group("SLURM (--launcher slurm; the spec's slurm: section sets the same, these override it)")
    g.add_argument(
        "--launcher",
        choices=("local", "slurm"),
        default="local",
        help="local: worker processes on this machine (default); slurm: submit --jobs SLURM jobs through "
        "submitit, each a sweep on the study's PostgreSQL and MLflow server, and follow them until the "
        "study is settled (docs/scale-out.md, On a SLURM cluster)",
    )
    g.add_argument("--jobs", type=int, metavar="N", help="how many SLURM jobs work on the study at once (default 2)")
    g.add_argument("--slurm-partition", metavar="NAME", help="the partition (default: the cluster's default)")
    g.add_argument(
        "--slurm-time",
        metavar="TIME",
        help="each job's time limit: minutes, 90m, 2h, H:MM:SS or D-HH:MM:SS (default 60); a job that reaches "
        "it loses nothing: its cut points are re-run by the others, or by itself with --requeue",
    )
    g.add_argument("--slurm-cpus", type=int, metavar="N", help="CPUs per job, one worker process each (default 2)")
    g.add_argument("--slurm-gpus", type=int, metavar="N", help="GPUs per job (default 0)")
    g.add_argument("--slurm-mem", type=float, metavar="GB", help="memory per job in GB (default: the partition's)")
    g.add_argument(
        "--requeue",
        action="store_true",
        default=None,
        help="a job that times out or is preempted is requeued (submitit's checkpoint: the same sweep again)",
    )
    g.add_argument(
        "--env-file",
        metavar="FILE",
        help="the file the jobs read the storage and tracking credentials from, by its path on the shared "
        "file system (default .services/env when it exists; `services join` writes one on other machines); "
        "no password goes into a job script, the job's environment or a command line",
    )
    g.add_argument(
        "--slurm-logs",
        metavar="DIR",
        help="where submitit keeps the jobs' pickles and logs, on the shared file system (default ./slurm-logs)",
    )


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """How a study runs: workers, storage, heartbeats, outages, progress (sweep and decide share these)."""
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads per worker (default: cores / workers; give 1 "
        "when several sweeps share one machine, as oversubscribed cores slow tiny models many times)",
    )
    p.add_argument(
        "--stack-seeds",
        type=int,
        metavar="K",
        help="a worker trains up to K open seeds of one cell together as one batched model, each "
        "still its own trial and MLflow run (1: one seed at a time); default: up to 32 on a GPU, "
        "up to 8 on a CPU for the MLP encoder without in-batch mining, else 1, and never so many that a worker idles "
        "(docs/performance.md, Seed stacking)",
    )
    p.add_argument(
        "--storage",
        help="Optuna storage: a journal file path (default ./optuna.journal, "
        "or $SIAMESE_BENCH_STORAGE; one machine) or postgresql://USER:PASSWORD@HOST:PORT/DB "
        "(several machines: start the same command on each; make services-up starts a server)",
    )
    p.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        metavar="SECONDS",
        help="PostgreSQL storage: how often this sweep records that its trials are alive (default %(default)s)",
    )
    p.add_argument(
        "--grace",
        type=int,
        default=60,
        metavar="SECONDS",
        help="PostgreSQL storage: a trial silent this long belongs to a dead machine; it fails "
        "and its point re-runs (default %(default)s; keep it above the longest outage)",
    )
    p.add_argument(
        "--outage",
        type=float,
        default=300,
        metavar="SECONDS",
        help="how long to wait for an unreachable database or tracking server before "
        "stopping (default %(default)s); finished trials are kept either way. At start-up, at "
        "most 60 s: a server restarting then is waited for, a wrong address is told after that",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none either when stderr is not a terminal)"
    )
    add_tracking_arguments(p)
    add_plugin_argument(p)


def register(sub: Any, full: bool) -> None:
    sweep = sub.add_parser("sweep", help="run (or resume) an Optuna study from a spec file", description=DESCRIPTION)
    sweep.add_argument("spec", help="study spec (YAML), e.g. mnist (a built-in spec in siamese_bench/specs/) or a path")
    sweep.add_argument(
        "--seeds",
        type=seed_list,
        metavar="S[,S...]",
        help="run only these of the spec's seeds (default: all); the study stays one study, "
        "so a later sweep with the other seeds, or without --seeds, adds the rest",
    )
    sweep.add_argument("--dry-run", action="store_true", help="list the cells and exclusions, run nothing")
    add_engine_arguments(sweep)
    add_launcher_arguments(sweep)
    sweep.set_defaults(func=cmd_sweep)
