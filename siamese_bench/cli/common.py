"""Arguments several subcommands share."""

from __future__ import annotations

import argparse


def add_tracking_arguments(p: argparse.ArgumentParser, system_metrics: bool = True) -> None:
    g = p.add_argument_group("tracking")
    g.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else sqlite:///./mlruns.db); http://HOST:PORT for a server (make services-up starts one)")
    if system_metrics:
        g.add_argument("--system-metrics", action="store_true",
                       help="record MLflow's CPU, memory and GPU samples (every 5 s) with each run")
