"""`siamese-bench decide CLAIMS.yaml`: train what a claims file's rows need, adding seeds until
each row is decided, and write the report."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from siamese_bench.cli.common import show_progress
from siamese_bench.cli.sweep import add_engine_arguments, add_launcher_arguments
from siamese_bench.core.errors import ConfigError

DESCRIPTION = """\
Decide the rows of a claims file (docs/claims.md): derive the cells the rows need (each row's
cell, and the cell a comparison row compares it with, set on the file's `base`), run 3 seeds of
each on the sweep engine, judge every row, then add seeds in rounds only to the cells of rows
still inconclusive, until every row is decided, or --max-seeds or --budget is reached. Before
each round it projects, from the spread seen, how many seeds an open row needs, and says "not
decidable within --max-seeds" instead of spending seeds on it. Every look reads intervals at a
level corrected for looking repeatedly (group-sequential, Pocock boundaries for the t-statistic),
so stopping early keeps each verdict's error at 2.5 %; a family's Holm correction and a cell
chosen as the best of several are calibrated for the same looks. Running it again resumes:
nothing is retrained. A study keeps the --max-seeds it started with (more seeds later would
spend the error again: use a fresh --name). Prints one line per row and writes the report
(PDF and markdown)."""

EPILOG = """\
example:
  siamese-bench decide examples/own-head/claims.yaml
  siamese-bench decide my-claims.yaml --max-seeds 20 --budget 2h --storage postgresql://...
"""


def duration(text: str) -> float:
    """'90s', '30m', '2h' or a number of seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m or 2h, got {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def cmd_decide(args: argparse.Namespace) -> int:
    from siamese_bench.decide.loop import Engine, finish_study, line, run
    from siamese_bench.decide.plan import make_plan
    from siamese_bench.infra.forkserver import available_cores
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.report.build import build_report
    from siamese_bench.sweep.storage import Heartbeats, resolve_storage_url

    if args.max_seeds < 3:
        raise ConfigError(f"--max-seeds must be at least 3 (the first look), got {args.max_seeds}")
    plan = make_plan(args.claims, args.max_seeds, args.plugin)
    if args.name:
        plan.spec = plan.spec.model_copy(update={"name": args.name})
        plan.spec._path = plan.path
    say = (lambda text: None) if args.json else print
    workers = args.workers or available_cores()
    launch = None
    if args.launcher == "slurm":  # first: it loads the env file, whose storage and tracking server are used below
        launch, workers = slurm_rounds(args, plan, say)
    tracker = Tracker(args.tracking_uri, outage=args.outage)
    engine = Engine(
        resolve_storage_url(args.storage),
        tracker,
        workers,
        threads=args.threads,
        progress=show_progress(args),
        outage=args.outage,
        sweep_options={"heartbeats": Heartbeats(args.heartbeat, args.grace), "stack_seeds": args.stack_seeds},
        launch=launch,
    )
    outcome = run(plan, engine, args.max_seeds, args.budget, say=say)
    finish_study(plan, tracker, outcome)
    report = build_report(
        [plan.spec.name],
        tracker.uri,
        Path(args.out),
        plan.spec.name,
        claims=plan.rows,
        builtin=False,
        looks=outcome.looks,
    )
    if args.json:
        print(json.dumps({**outcome.summary(), "report": str(report.pdf), "markdown": str(report.markdown)}, indent=1))
        return 0
    rounds = f"{outcome.rounds} round{'s' if outcome.rounds != 1 else ''}"
    print(f"\n{plan.spec.name}: {rounds}, {outcome.trials} trials, {outcome.seconds / 60:.1f} min")
    for state in outcome.rows:
        print("  " + line(state))
    print(f"report: {report.pdf}")
    return 0


def slurm_rounds(args: argparse.Namespace, plan: Any, say: Any) -> tuple[Any, int]:
    """Each round's points done by SLURM jobs (sweep/slurm.py): the round function and the workers it gives."""
    from siamese_bench.cli.sweep import slurm_job, slurm_request
    from siamese_bench.sweep.slurm import Launch, study_points_reader

    request, options, storage = slurm_request(
        args, str(plan.path), claims=True, max_seeds=args.max_seeds, name=args.name
    )

    def launch(points: list) -> int:
        read = study_points_reader(storage, plan.spec.name, points)
        before = sum(state == "complete" for state in read().values())
        request.points = points
        job = slurm_job(request, options)
        followed = Launch(job, options, f"siamese-{plan.spec.name}", progress=show_progress(args), say=say).run(read)
        if not followed.settled:
            raise ConfigError(
                "the SLURM jobs ended with points of this round left (cancelled, or out of time without "
                "--requeue): run the same command again to go on"
            )
        return followed.points["complete"] - before

    return launch, options.jobs * options.cpus


def register(sub: Any, full: bool) -> None:
    p = sub.add_parser(
        "decide",
        help="add seeds until each claim of a claims file is decided",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("claims", help="claims file (YAML): base, plugins, rows (docs/claims.md)")
    p.add_argument("--max-seeds", type=int, default=10, help="seeds per cell at most (default %(default)s)")
    p.add_argument(
        "--budget",
        type=duration,
        metavar="DURATION",
        help="wall time, e.g. 30m or 2h: no round starts that would end past it",
    )
    p.add_argument("--name", help="study and report name (default: the file's `name`, else its stem)")
    p.add_argument("--out", default="reports", help="parent folder of the report (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of lines")
    add_engine_arguments(p)
    add_launcher_arguments(p)
    p.set_defaults(func=cmd_decide)
