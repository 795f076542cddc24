"""Arguments several subcommands share."""

from __future__ import annotations

import argparse


def add_tracking_arguments(p: argparse.ArgumentParser, system_metrics: bool = True) -> None:
    g = p.add_argument_group("tracking")
    g.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
        "else sqlite:///./mlruns.db); http://HOST:PORT for a server (make services-up starts one)",
    )
    if system_metrics:
        g.add_argument(
            "--system-metrics",
            action="store_true",
            help="record MLflow's CPU, memory and GPU samples (every 5 s) with each run",
        )


def add_plugin_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="PATH_OR_MODULE",
        help="load your own heads, losses, encoders, miners or datasets from a Python file or an "
        "importable module before anything is checked (repeatable; docs/extending.md)",
    )


def load_plugins(args: argparse.Namespace) -> list:
    """The --plugin files and modules, and the installed packages' (entry point group
    siamese_bench.plugins), loaded before a configuration is checked."""
    from siamese_bench.core import plugins

    return plugins.load_all(plugins.resolve(getattr(args, "plugin", [])))


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only for a person at a terminal: not with --no-progress, not into a file or pipe."""
    import sys

    return not getattr(args, "no_progress", False) and sys.stderr.isatty()
