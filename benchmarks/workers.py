"""Sweep wall time with 1 vs N worker processes on the same study, fresh stores each time.

Runs alternate (1, N, 1, N, ...) so machine noise hits both; medians are reported.

    python benchmarks/workers.py [--spec benchmarks/workers-speedup.yaml] [--workers 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings

from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.runner import Sweep
from siamese_bench.sweep.spec import load_spec


def timed_sweep(spec_path: str, workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        spec = load_spec(spec_path)
        tracker = Tracker(f"sqlite:///{tmp}/mlruns.db")
        start = time.perf_counter()
        summary = Sweep(spec, f"{tmp}/optuna.journal", tracker, workers, progress=False).run()
        return time.perf_counter() - start, summary.completed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default="benchmarks/workers-speedup.yaml")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    times: dict[int, list[float]] = {1: [], args.workers: []}
    for r in range(args.repeats):
        for n in times:
            seconds, done = timed_sweep(args.spec, n)
            times[n].append(seconds)
            print(f"repeat {r}: {n} worker(s): {seconds:.1f} s for {done} trials", flush=True)
    med = {n: statistics.median(v) for n, v in times.items()}
    print(
        f"\nmedian wall time: 1 worker {med[1]:.1f} s, {args.workers} workers {med[args.workers]:.1f} s; "
        f"speedup {med[1] / med[args.workers]:.2f}x"
    )


if __name__ == "__main__":
    main()
