"""Do two versions of the code give the same numbers for the same seeds? Compares every finished
grid run of a study in one tracking store with the run of the same cell and seed in another.

    python benchmarks/same_numbers.py sqlite:///OLD/mlruns.db mnist-ablation sqlite:///NEW/mlruns.db mnist
    python benchmarks/same_numbers.py docs/results.json mnist sqlite:///mlruns.db mnist

Either side may be a snapshot of studies (docs/results.json, written by `make docs`) instead of a
tracking store: the published numbers, compared with a rerun.

A refactoring that changes no computation gives identical test metrics (the seed fixes the split,
the pairs, the initialisation and the batch order). Prints the runs compared, how many agree
exactly and the largest difference per metric; exit 1 when any differs.
"""

from __future__ import annotations

import argparse
import math
import sys

METRICS = ("test/acc", "test/auc", "test/acc_tuned", "train_eval/acc", "val/auc")


def runs(uri: str, study: str) -> dict[tuple[str, int], dict[str, float]]:
    if uri.endswith(".json"):
        import json
        from pathlib import Path

        from siamese_bench.report.snapshot import studies_from

        found = [s for s in studies_from(json.loads(Path(uri).read_text())) if s.name == study]
        if not found:
            sys.exit(f"same_numbers: no study {study} in {uri}")
        loaded = found[0]
    else:
        from siamese_bench.report.load import load_studies

        _, (loaded,) = load_studies([study], uri)
    done = loaded.complete
    return {(str(r["cell"]), int(r["seed"])): {m: float(r[m]) for m in METRICS if m in r} for _, r in done.iterrows()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old_uri")
    p.add_argument("old_study")
    p.add_argument("new_uri")
    p.add_argument("new_study")
    args = p.parse_args()
    old, new = runs(args.old_uri, args.old_study), runs(args.new_uri, args.new_study)
    common = sorted(set(old) & set(new))
    worst = dict.fromkeys(METRICS, 0.0)
    same = 0
    for key in common:
        diffs = {
            m: abs(old[key][m] - new[key][m])
            for m in METRICS
            if m in old[key] and m in new[key] and math.isfinite(old[key][m]) and math.isfinite(new[key][m])
        }
        same += all(d == 0 for d in diffs.values())
        for m, d in diffs.items():
            worst[m] = max(worst[m], d)
    print(
        f"{args.old_study} ({len(old)} runs) vs {args.new_study} ({len(new)} runs): {len(common)} cell x seed "
        f"runs in both, {same} identical in {', '.join(METRICS)}"
    )
    for m, d in worst.items():
        print(f"  largest |difference| in {m}: {d:.3g}")
    return 0 if common and same == len(common) else 1


if __name__ == "__main__":
    sys.exit(main())
