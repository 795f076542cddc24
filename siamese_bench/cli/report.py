"""`siamese-bench report STUDY [STUDY ...]`: the report of studies, from the tracking store alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Build the report of one or more studies from what the MLflow tracking store holds, without
retraining, so it can be rebuilt at any time, on any machine that reaches the store.

Writes into OUT/NAME/: report.pdf (title page; 1 findings: a verdict per claim with the rule
that decided it; 2 results by cell; 3 pairwise comparisons; 4 figures; 5 provenance, including
missing or failed runs), report.md, tables/*.csv and *.md, and figures/*.png. Give the
full-MNIST study next to the subset study, and the findings use full MNIST where it has the
seeds. --claims adds your own claim rows (docs/claims.md) to the built-in ones.
"""

EPILOG = """\
example:
  siamese-bench report mnist mnist-full --name mnist
  siamese-bench report own-head --claims examples/own-head/claims.yaml --no-builtin
  siamese-bench report mnist --tracking-uri http://127.0.0.1:5000 --out /tmp/reports
"""


def cmd_report(args: argparse.Namespace) -> int:
    from siamese_bench.infra.tracking import resolve_tracking_uri
    from siamese_bench.report.build import build_report
    from siamese_bench.report.claims import load_claim_rows

    claims = load_claim_rows(args.claims) if args.claims else None
    report = build_report(
        args.studies,
        resolve_tracking_uri(args.tracking_uri),
        Path(args.out),
        args.name,
        claims=claims,
        builtin=not args.no_builtin,
    )
    if args.json:
        print(json.dumps(report.summary(), indent=1))
        return 0
    findings = report.pdf.parent / "tables" / "findings.md"
    if findings.exists():
        print(findings.read_text())
    print(f"report: {report.pdf}")
    return 0


def register(sub: Any, full: bool) -> None:
    """Add the `report` subcommand to siamese-bench's subparsers."""
    p = sub.add_parser(
        "report",
        help="build the PDF/Markdown report of studies from MLflow",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "studies",
        nargs="+",
        metavar="STUDY",
        help="study names (MLflow experiments written by `siamese-bench sweep`), e.g. mnist",
    )
    p.add_argument("--name", help="report name and folder (default: the first study)")
    p.add_argument("--claims", metavar="FILE", help="a claims file whose rows are judged too (its own Holm families)")
    p.add_argument("--no-builtin", action="store_true", help="only the --claims rows, not the built-in claims")
    p.add_argument("--json", action="store_true", help="print a JSON summary (paths, each row's verdict and p)")
    p.add_argument(
        "--tracking-uri", help="MLflow tracking URI to read (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlruns.db)"
    )
    p.add_argument("--out", default="reports", help="parent folder of the report folder (default %(default)s)")
    p.set_defaults(func=cmd_report)
