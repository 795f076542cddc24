"""decide against a fixed number of seeds per cell, on one claims file: verdicts and trials.

    python benchmarks/decide_vs_fixed.py mnist-claims [--max-seeds 10] [--budget 2h]

1. `siamese-bench decide FILE --max-seeds N`: its verdicts and the trials it ran (study NAME);
2. the same cells with all N seeds each (study NAME-fixedN), judged once at 95 % (no looks, so no
   correction is needed);
3. a table of both, and the trials each used. Both studies live in ./optuna.journal and
   ./mlruns.db (or --storage / --tracking-uri), so a second run resumes and retrains nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("claims", help="a claims file, or a shipped one's name (mnist-claims)")
    parser.add_argument("--max-seeds", type=int, default=10)
    parser.add_argument("--budget", help="decide's --budget")
    parser.add_argument("--storage")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()

    from siamese_bench.decide.plan import make_plan
    from siamese_bench.infra.forkserver import available_cores
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.report.findings import findings
    from siamese_bench.report.load import load_studies
    from siamese_bench.sweep.runner import Sweep
    from siamese_bench.sweep.storage import resolve_storage_url

    common = [
        *(["--storage", args.storage] if args.storage else []),
        *(["--tracking-uri", args.tracking_uri] if args.tracking_uri else []),
        *(["--workers", str(args.workers)] if args.workers else []),
    ]
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "siamese_bench",
            "decide",
            str(args.claims),
            "--max-seeds",
            str(args.max_seeds),
            "--json",
            "--no-progress",
            *common,
            *(["--budget", args.budget] if args.budget else []),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    decided = json.loads(out.stdout)
    decide_minutes = (time.monotonic() - started) / 60

    plan = make_plan(args.claims, args.max_seeds)
    fixed_name = f"{plan.spec.name}-fixed{args.max_seeds}"
    spec = plan.spec.model_copy(update={"name": fixed_name})
    spec._path = plan.path
    tracker = Tracker(args.tracking_uri)
    started = time.monotonic()
    Sweep(
        spec,
        resolve_storage_url(args.storage),
        tracker,
        args.workers or available_cores(),
        progress=False,
        plugin_names=plan.plugins,
    ).run()
    fixed_minutes = (time.monotonic() - started) / 60
    _, studies = load_studies([fixed_name], tracker.uri)
    fixed = {f.row.id: f for f in findings(studies, plan.rows)}

    cells = len(spec.cells())
    print(f"{args.claims}: {len(plan.rows)} rows, {cells} cells, --max-seeds {args.max_seeds}")
    fixed_title = f"fixed {args.max_seeds} seeds"
    print(f"{'row':<24} {'decide':<14} {'seeds':>5}  {fixed_title:<16} why decide stopped")
    for row in decided["rows"]:
        f = fixed.get(row["id"])
        print(f"{row['id']:<24} {row['verdict']:<14} {row['seeds']:>5}  {f.verdict if f else '-':<16} {row['stopped']}")
    same = sum(fixed.get(r["id"]) is not None and fixed[r["id"]].verdict == r["verdict"] for r in decided["rows"])
    print(
        f"same verdict: {same} of {len(decided['rows'])}; trials: decide {decided['trials']} in "
        f"{decided['rounds']} rounds ({decide_minutes:.1f} min), fixed {cells * args.max_seeds} "
        f"({fixed_minutes:.1f} min, after decide's runs were not reused: its own study)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
