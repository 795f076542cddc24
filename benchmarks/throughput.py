"""Training throughput: siamese-bench (Lightning) vs a bare PyTorch loop, same tensors.

Both train C1's configuration (MLP encoder, euclidean head, contrastive loss, RMSprop with
Keras' defaults, batch 128) for the same epochs on the same pair tensors, and both run a
validation pass with the same metrics (loss, accuracy, AUC, best threshold) every epoch, as
`siamese-bench train` does. Runs alternate (bench, bare,
bench, bare, ...) in one process, so machine noise hits both; medians are reported.

    python benchmarks/throughput.py [--dataset mnist] [--epochs 2] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import torch

from siamese_bench.core.config import TrainConfig
from siamese_bench.data import load_dataset
from siamese_bench.evaluation.metrics import pair_metrics
from siamese_bench.training.batches import build_batches
from siamese_bench.training.build import build_module
from siamese_bench.training.module import SiameseModule
from siamese_bench.training.run import EpochRecorder, make_trainer


class LogEveryStep(SiameseModule):
    """Lightning's usual way, for comparison: `self.log` of the statistics at every step."""

    def training_step(self, batch, batch_idx):
        result = self.objective.step(self.encoder, self.head, batch)
        self.log_dict(dict(zip(self.objective.stat_names, result.stats, strict=True)), on_step=False,
                      on_epoch=True, batch_size=result.size)
        return result.loss


def bench_siamese(cfg: TrainConfig, data, progress: bool, log_every_step: bool = False) -> tuple[float, int]:
    module = build_module(cfg, data.input_shape)
    if log_every_step:
        module.__class__ = LogEveryStep
    batches = build_batches(cfg, data, module.objective)
    trainer = make_trainer(cfg, [EpochRecorder(None, None)], progress, len(batches["train"]))
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=batches["train"], val_dataloaders=batches["val"])
    return time.perf_counter() - start, len(batches["train"].index) * cfg.epochs


def bench_bare(cfg: TrainConfig, data) -> tuple[float, int]:
    """The same model, batches, optimizer and validation metrics driven by a hand-written loop."""
    module = build_module(cfg, data.input_shape)
    batches = build_batches(cfg, data, module.objective)
    optimizer = module.configure_optimizers()  # constant lr: the optimizer itself
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
        with torch.no_grad():  # the same validation work: loss, then accuracy, AUC, threshold
            outputs = [(module.compare(b["x1"], b["x2"]), b["y"]) for b in batches["val"]]
            [module.loss(out, y).loss for out, y in outputs]
            pair_metrics(torch.cat([o.dissimilarity for o, _ in outputs]), torch.cat([y for _, y in outputs]))
    return time.perf_counter() - start, len(batches["train"].index) * cfg.epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--progress", action="store_true", help="show Lightning's progress bar (as `train` does)")
    p.add_argument("--log-every-step", action="store_true",
                   help="also time a module that calls self.log at every step (Lightning's usual way)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1, as each sweep worker on 2 cores; with 2 threads any other "
                   "process on a 2-core machine stalls OpenMP and the timings stop meaning anything)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    cfg = TrainConfig(dataset=args.dataset, epochs=args.epochs)
    data = load_dataset(cfg.dataset)
    rates: dict[str, list[float]] = {"siamese-bench": [], "bare PyTorch": []}
    if args.log_every_step:
        rates["log every step"] = []
    for r in range(args.repeats):
        for name in rates:
            if name == "siamese-bench":
                seconds, pairs = bench_siamese(cfg, data, args.progress)
            elif name == "log every step":
                seconds, pairs = bench_siamese(cfg, data, args.progress, log_every_step=True)
            else:
                seconds, pairs = bench_bare(cfg, data)
            rates[name].append(pairs / seconds)
            print(f"repeat {r}: {name:<14} {pairs / seconds:>9.0f} pairs/s ({seconds:.1f} s)", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["siamese-bench"] / med["bare PyTorch"]
    if "log every step" in med:
        print(f"ratio log-every-step / bare: {med['log every step'] / med['bare PyTorch']:.3f}")
    print(f"\ndataset {data.variant}, {cfg.epochs} epochs x {args.repeats} repeats, "
          f"torch threads {torch.get_num_threads()}")
    for k, v in med.items():
        print(f"median {k:<14} {v:>9.0f} pairs/s")
    print(f"ratio siamese-bench / bare: {ratio:.3f} (aim: >= 0.95; README, 'The training core', says why it is lower)")


if __name__ == "__main__":
    main()
