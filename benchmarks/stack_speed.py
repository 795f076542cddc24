"""Seed stacking's speed: K seeds of one cell trained one at a time, then as one stack, in turn.

Each measurement is its own process (`--child`), so its peak memory is its own: it loads the
data, then trains the K seeds untracked (sequentially through `run_training`, or stacked
through `prepare_run` + `train_stack`) and prints the training wall time (preparing the seeds
included, importing excluded) and the peak resident memory above what the loaded data took.
Modes alternate (sequential, stacked, sequential, ...) so machine noise hits both; the table
gives medians, trainings per hour and the ratio stacked/sequential of trainings per hour.

    python benchmarks/stack_speed.py [--cells digits,mnist-5k,...] [--seeds 8] [--repeats 3]
    python benchmarks/stack_speed.py --device cuda --seeds 8,32,128 --precision bf16-mixed

The ratio is of trainings per hour; the sequential rate is measured on at most
--sequential-seeds seeds (8), since it does not depend on K.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

# name -> (TrainConfig fields, what it stands for); epochs cut so a round takes seconds to minutes:
# trainings per hour scale with the epochs, the ratio does not
CELLS: dict[str, tuple[dict, str]] = {
    "digits": ({"dataset": "digits", "epochs": 20}, "C1 MLP on digits, 20 epochs"),
    "mnist-5k": ({"dataset": "mnist-5k", "epochs": 5}, "C1 MLP on mnist-5k, 5 epochs"),
    "mnist": ({"dataset": "mnist", "epochs": 1}, "C1 MLP on full MNIST, 1 epoch"),
    "vectors": (
        {
            "dataset": "csv:datasets/c4/pairs-train.csv,datasets/c4/pairs-test.csv",
            "epochs": 10,
            "val_fraction": 0.5,
        },
        "C4 baseline on the vectors CSV, 10 epochs",
    ),
    "conv4-omniglot": (
        {
            "dataset": "omniglot:28",
            "encoder": "conv4",
            "encoder_options": {"channels": 32},
            "optimizer": "adam",
            "lr": 0.001,
            "max_steps": 40,
            "val_fraction": 0.2,
        },
        "conv4 (32 channels) on Omniglot 28 x 28, contrastive, 40 steps",
    ),
    "batch-hard": (
        {"dataset": "digits", "epochs": 20, "loss": "triplet", "triplet_mining": "batch-hard"},
        "C5 batch-hard mining, C1 MLP on digits, 20 epochs",
    ),
    "semi-hard": (
        {"dataset": "mnist-5k", "epochs": 5, "loss": "triplet", "triplet_mining": "semi-hard"},
        "C5 semi-hard mining, C1 MLP on mnist-5k, 5 epochs",
    ),
    "lstm": (
        {"dataset": "japanese-vowels", "encoder": "lstm", "head": "concat-dense", "loss": "bce", "epochs": 5},
        "C5 LSTM + concat-dense + BCE on JapaneseVowels, 5 epochs",
    ),
}


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def child(cell: str, mode: str, k: int, device: str, precision: str) -> None:
    """One measurement: prints a JSON line {seconds, peak_mib}."""
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import torch

    from siamese_bench.core.config import TrainConfig
    from siamese_bench.data import load_dataset
    from siamese_bench.training.build import check_config
    from siamese_bench.training.run import run_training
    from siamese_bench.training.seeds import run_seeds, seed_runs

    fields, _ = CELLS[cell]
    cfg = check_config(TrainConfig(**fields, precision=precision))
    data = load_dataset(cfg.dataset)
    base = _rss_kib()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seeds = list(range(k))
    started = time.perf_counter()
    if mode == "sequential":
        for s in seeds:
            run_training(cfg.model_copy(update={"seed": s}), data=data, progress=False)
    else:  # run_seeds: the stack, or its one-line fallback where the cell cannot stack
        run_seeds(cfg, seed_runs(seeds), stack_size=k, data=data, progress=False, accelerator=device)
    seconds = time.perf_counter() - started
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    )
    print(json.dumps({"seconds": seconds, "peak_mib": peak}))


def measure(cell: str, mode: str, k: int, device: str, precision: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", cell, mode, str(k), device, precision],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(
            f"{cell} {mode}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated, of: {', '.join(CELLS)}")
    p.add_argument("--seeds", default="8", help="stack sizes K, comma-separated (each: K seeds each way)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--sequential-seeds",
        type=int,
        default=8,
        help="seeds timed one at a time (at most K): their rate per hour does not depend on K",
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="32-true")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        cell, mode, k, device, precision = args.child
        child(cell, mode, int(k), device, precision)
        return
    os.environ.setdefault(
        "CUDA_VISIBLE_DEVICES", "" if args.device == "cpu" else os.environ.get("CUDA_VISIBLE_DEVICES", "0")
    )
    print(f"stack_speed: device {args.device}, precision {args.precision}, {args.repeats} repeats, medians")
    print("| cell | K | sequential trainings/h | stacked trainings/h | ratio | peak MiB/seed seq | stacked |")
    print("|---|---|---|---|---|---|---|")
    for cell in args.cells.split(","):
        for k in map(int, args.seeds.split(",")):
            seq, stk = [], []
            for _ in range(args.repeats):
                seq.append(measure(cell, "sequential", min(k, args.sequential_seeds), args.device, args.precision))
                stk.append(measure(cell, "stacked", k, args.device, args.precision))
            n_seq = min(k, args.sequential_seeds)
            ratios = [(k / b["seconds"]) / (n_seq / a["seconds"]) for a, b in zip(seq, stk, strict=True)]
            s_sec = statistics.median(r["seconds"] for r in seq)
            k_sec = statistics.median(r["seconds"] for r in stk)
            print(
                f"| {CELLS[cell][1]} | {k} | {n_seq * 3600 / s_sec:,.0f} | {k * 3600 / k_sec:,.0f} | "
                f"{statistics.median(ratios):.2f}x | {statistics.median(r['peak_mib'] for r in seq):,.0f} | "
                f"{statistics.median(r['peak_mib'] for r in stk) / k:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
