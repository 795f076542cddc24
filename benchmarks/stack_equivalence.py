"""Stacked seeds against the same seeds trained alone, where dropout makes them differ.

C1 (MLP with dropout 0.1, euclidean, contrastive, 20 epochs) on mnist-5k, seeds 0..N-1 trained
one at a time and as one stack of N, untracked. The stacked seeds draw other dropout masks, so
their numbers differ from the sequential seeds'; what must hold is that they are the same
distribution: the paired difference of test accuracy (stacked - sequential, per seed) is judged
by the project's own rule (`report.rules.paired_judgement`) against a band of +-0.5 points.
The stack is then trained again: the same seeds in the same stack give the same numbers.

    python benchmarks/stack_equivalence.py [--seeds 10] [--epochs 20] [--dataset mnist-5k]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

from siamese_bench.core.config import TrainConfig
from siamese_bench.data import load_dataset
from siamese_bench.report.rules import paired_judgement
from siamese_bench.report.stats import paired_comparison
from siamese_bench.training.build import check_config
from siamese_bench.training.run import run_training
from siamese_bench.training.seeds import run_seeds, seed_runs

BAND = 0.005  # +-0.5 points of test accuracy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--dataset", default="mnist-5k")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    cfg = check_config(TrainConfig(dataset=args.dataset, epochs=args.epochs))
    data = load_dataset(cfg.dataset)
    seeds = list(range(args.seeds))
    t = time.perf_counter()
    alone = {s: run_training(cfg.model_copy(update={"seed": s}), data=data, progress=False) for s in seeds}
    t_alone = time.perf_counter() - t

    def stacked() -> dict[int, float]:
        outcomes = run_seeds(cfg, seed_runs(seeds), stack_size=len(seeds), data=data, progress=False)
        assert all(o.result is not None for o in outcomes), [o.error for o in outcomes]
        return {o.seed: o.result.metrics["test/acc"] for o in outcomes}

    t = time.perf_counter()
    first = stacked()
    t_stack = time.perf_counter() - t
    again = stacked()
    seq = {s: r.metrics["test/acc"] for s, r in alone.items()}
    paired = paired_comparison(seq, first)  # diff = stacked - sequential
    verdict = paired_judgement(paired, BAND, scale=100)
    d = paired.diff
    print(f"C1 on {args.dataset}, {args.epochs} epochs, seeds 0-{args.seeds - 1}: test accuracy")
    print(f"  sequential: mean {sum(seq.values()) / len(seq):.4f}  ({t_alone:.0f} s)")
    print(f"  stacked:    mean {sum(first.values()) / len(first):.4f}  ({t_stack:.0f} s, one stack of {len(seeds)})")
    print(
        f"  paired difference stacked - sequential: {d.mean * 100:+.2f} points, "
        f"95 % CI [{d.lo * 100:+.2f}, {d.hi * 100:+.2f}], band ±{BAND * 100:g}: "
        f"{'equivalent' if -BAND < d.lo and d.hi < BAND else 'not shown equivalent'} ({verdict.why})"
    )
    print(f"  the stack trained again: {'the same' if again == first else 'DIFFERENT'} test accuracy for every seed")


if __name__ == "__main__":
    main()
