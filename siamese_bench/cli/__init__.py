"""Command line: `siamese-bench train|sweep|decide|report|claims|regress|oneshot|services|ui|docs|make-pairs-csv`,
one module a subcommand. Bad input gets one line on stderr and exit status 2; -v shows library logs."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from siamese_bench import __version__
from siamese_bench.cli import claims, data, decide, docs, oneshot, regress, report, services, sweep, train, ui
from siamese_bench.core.errors import UserError

log = logging.getLogger("siamese_bench")
# each has register(subparsers, full)
SUBCOMMANDS = (train, sweep, decide, report, claims, regress, oneshot, services, ui, docs, data)
TORCH_COMMANDS = ("train", "sweep", "decide", "regress", "oneshot", "make-pairs-csv")  # the others never load torch
OPTUNA_COMMANDS = ("sweep", "decide")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` given, only that subcommand gets its full
    arguments (the train flags list the registries, which load torch, so `siamese-bench --help`
    and `siamese-bench report ...` do not pay for them)."""
    parser = argparse.ArgumentParser(
        prog="siamese-bench",
        description="Ablation benchmarks of Siamese-network design choices (heads x losses x margins).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library log messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub, full=command in (None, module.__name__.rsplit(".", 1)[-1]))
    return parser


def quiet_libraries(verbose: bool, command: str = "train") -> None:
    """Warnings and errors always; INFO only with -v, except a sweep's own lines (each point as it ends, and what
    recovery did), which are its progress where no bar is drawn."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("siamese_bench").setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:
        logging.getLogger("siamese_bench.sweep").setLevel(logging.INFO)
        if command in TORCH_COMMANDS:
            import pytorch_lightning  # noqa: F401  (its import sets its loggers to INFO: import first)

        for name in ("pytorch_lightning", "lightning", "lightning_fabric", "mlflow", "alembic", "optuna"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # MLflow's HTTP client warns at each retry of a restarting server; infra.retry says it once
        logging.getLogger("urllib3").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # where SLURM is installed Lightning suggests srun at every fit; training is one process (training/run.py)
        warnings.filterwarnings("ignore", message="The `srun` command is available")
        if command in OPTUNA_COMMANDS:  # the others never import it: untracked training runs without it
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)


def start_worker_imports(args: argparse.Namespace) -> None:
    """A command that trains in worker processes starts their fork server first, so that the
    workers' imports (torch, Lightning) run beside its own (infra/forkserver.py)."""
    from siamese_bench.infra import forkserver

    local = getattr(args, "launcher", "local") == "local"  # SLURM jobs start their own
    if args.command in ("sweep", "decide") and local and not getattr(args, "dry_run", False):
        from siamese_bench.sweep.pool import PRELOAD

        forkserver.start(PRELOAD)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_args, except that an unknown option is refused in the subcommand's own usage, with the nearest option
    it has (`train --heads x`: did you mean --head?), not in the top-level usage argparse gives."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = next(
            (a.choices[args.command] for a in parser._actions if isinstance(a, argparse._SubParsersAction)), parser
        )
        unknown = next((a.split("=", 1)[0] for a in extra if a.startswith("-")), None)
        options = [o for action in sub._actions for o in action.option_strings]
        near = difflib.get_close_matches(unknown, options, n=1, cutoff=0.6) if unknown else []
        hint = f" (did you mean {near[0]}?)" if near else ""
        sub.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from siamese_bench.infra.allocator import keep_freed_memory

    # MLflow prints two "View run" lines per run to stdout when it talks to a server
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    args = parse(build_parser(command), argv)
    start_worker_imports(args)
    quiet_libraries(args.verbose, args.command)
    keep_freed_memory()
    try:
        return int(args.func(args))
    except UserError as err:
        print(f"siamese-bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siamese-bench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`
        return 0
