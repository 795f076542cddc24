"""Training throughput: siamese-bench (Lightning) vs a bare PyTorch loop, same tensors.

Both train C1's configuration (MLP encoder, euclidean head, contrastive loss, RMSprop with
Keras' defaults, batch 128) for the same epochs on the same pair tensors, and both run a
validation pass every epoch, as `siamese-bench train` does. Runs alternate (bench, bare,
bench, bare, ...) in one process, so machine noise hits both; medians are reported.

    python benchmarks/throughput.py [--dataset mnist] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import torch

from siamese_bench.config import TrainConfig
from siamese_bench.data import load_dataset
from siamese_bench.train import EpochRecorder, build_batches, build_module, make_trainer


def bench_siamese(cfg: TrainConfig, data, progress: bool) -> tuple[float, int]:
    batches = build_batches(cfg, data, "pairs")
    module = build_module(cfg, data.input_shape)
    trainer = make_trainer(cfg, [EpochRecorder(None, None)], progress, len(batches["train"]))
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=batches["train"], val_dataloaders=batches["val"])
    return time.perf_counter() - start, len(batches["train"].index) * cfg.epochs


def bench_bare(cfg: TrainConfig, data) -> tuple[float, int]:
    """The same model, batches and optimizer driven by a hand-written loop."""
    batches = build_batches(cfg, data, "pairs")
    module = build_module(cfg, data.input_shape)
    optimizer = module.configure_optimizers()
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        module.train()
        for batch in batches["train"]:
            out = module.compare(batch["x1"], batch["x2"])
            loss = module.loss(out, batch["y"]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        module.eval()
        with torch.no_grad():
            for batch in batches["val"]:
                module.compare(batch["x1"], batch["x2"])
    return time.perf_counter() - start, len(batches["train"].index) * cfg.epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--progress", action="store_true", help="show Lightning's progress bar (as `train` does)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    cfg = TrainConfig(dataset=args.dataset, epochs=args.epochs)
    data = load_dataset(cfg.dataset)
    rates: dict[str, list[float]] = {"siamese-bench": [], "bare PyTorch": []}
    for r in range(args.repeats):
        for name in rates:
            if name == "siamese-bench":
                seconds, pairs = bench_siamese(cfg, data, args.progress)
            else:
                seconds, pairs = bench_bare(cfg, data)
            rates[name].append(pairs / seconds)
            print(f"repeat {r}: {name:<14} {pairs / seconds:>9.0f} pairs/s ({seconds:.1f} s)", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["siamese-bench"] / med["bare PyTorch"]
    print(f"\ndataset {data.variant}, {cfg.epochs} epochs x {args.repeats} repeats, "
          f"torch threads {torch.get_num_threads()}")
    for k, v in med.items():
        print(f"median {k:<14} {v:>9.0f} pairs/s")
    print(f"ratio siamese-bench / bare: {ratio:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
