"""`siamese-bench ui`: the MLflow UI on the tracking store, and the address of each study's runs.

MLflow 3's UI opens on its GenAI home page, and the switch to the training runs is kept per
browser; the address of each study's training-runs view (#/experiments/ID/runs) takes a reader
straight there. For a local store (sqlite, a folder) it starts `mlflow ui` on it; for a tracking
server it only prints the addresses on that server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any


def study_urls(tracking_uri: str, base: str) -> list[str]:
    """'study: URL' for every experiment of the store, the training-runs view of each."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiments = sorted(client.search_experiments(), key=lambda e: e.name)
    return [
        f"{e.name}: {base.rstrip('/')}/#/experiments/{e.experiment_id}/runs" for e in experiments if e.name != "Default"
    ]


def cmd_ui(args: argparse.Namespace) -> int:
    from siamese_bench.core.redact import mask_url
    from siamese_bench.infra.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    remote = uri.startswith(("http://", "https://"))
    base = uri if remote else f"http://{args.host}:{args.port}"
    for line in study_urls(uri, base):
        print(mask_url(line))
    if remote or args.print_only:
        return 0
    print(f"MLflow UI on {uri} at {base} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            uri,
            "--host",
            args.host,
            "--port",
            str(args.port),
        ],
        env=env,
    )


def register(sub: Any, full: bool) -> None:
    p = sub.add_parser(
        "ui",
        help="the MLflow UI on the tracking store, and each study's runs view",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///./mlruns.db")
    p.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default %(default)s)")
    p.add_argument("--port", type=int, default=5000, help="port (default %(default)s)")
    p.add_argument("--print-only", action="store_true", help="print the addresses, start nothing")
    p.set_defaults(func=cmd_ui)
