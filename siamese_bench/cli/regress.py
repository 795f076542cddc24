"""`siamese-bench regress CHECKS`: quick accuracy checks of the claims against calibrated bounds."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from siamese_bench.core.errors import ConfigError

DESCRIPTION = (
    "Train each check's cell briefly on its check seeds and fail (exit 1) with a table when the mean "
    "falls outside its calibrated threshold: a 99 % prediction bound for the mean of those seeds, "
    "from the calibration seeds. The 'detects' column is the drop of the true mean caught with 90 % "
    "power."
)


def cmd_regress(args: argparse.Namespace) -> int:
    from siamese_bench.regress.checks import load_checks
    from siamese_bench.regress.run import calibrate, format_rows, problems, regress

    spec = load_checks(args.checks)
    if args.only and not args.calibrate:
        raise ConfigError("--only selects checks to calibrate: use it with --calibrate")
    if args.calibrate:
        calibrate(spec, set(args.only.split(",")) if args.only else None)
        print(f"thresholds written to {spec.path}")
        return 0
    for check in spec.checks:  # a check that cannot do its job is said before it runs
        for problem in problems(check):
            print(f"siamese-bench: warning: {problem}", file=sys.stderr, flush=True)
    rows, failed = regress(spec)
    print(format_rows(rows))
    print(f"regress: {len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


def register(sub: Any, full: bool) -> None:
    regress = sub.add_parser(
        "regress", help="quick accuracy checks of the claims against thresholds", description=DESCRIPTION
    )
    regress.add_argument(
        "checks",
        help="regression-checks file, or the name of a shipped one (regress: siamese_bench/specs/regress.yaml)",
    )
    regress.add_argument(
        "--calibrate",
        action="store_true",
        help="measure the calibration seeds and write new thresholds (and what each check "
        "detects) into the file; warns about a check that misses its `detect` target or that "
        "its `baseline` would pass",
    )
    regress.add_argument("--only", metavar="ID[,ID...]", help="with --calibrate: only these checks")
    regress.set_defaults(func=cmd_regress)
