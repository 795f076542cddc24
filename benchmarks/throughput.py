"""Training throughput: siamese-bench (Lightning) vs a bare PyTorch loop, same tensors.

Both train C1's configuration (MLP encoder, euclidean head, contrastive loss, RMSprop with
Keras' defaults, batch 128) for the same epochs on the same pair tensors, and both run a
validation pass with the same metrics (loss, accuracy, AUC, best threshold) every epoch, as
`siamese-bench train` does. Runs alternate (bench, bare,
bench, bare, ...) in one process, so machine noise hits both; medians are reported.

With --device cuda both train on the GPU from data moved there once (what `train` does with
--data-placement auto when it fits), and a third row times siamese-bench with the data left on
the host (one copy per batch), for comparison.

    python benchmarks/throughput.py [--dataset mnist] [--epochs 2] [--repeats 3] [--threads 1] \
        [--one-per-step] [--log-every-step]
    python benchmarks/throughput.py --device cuda --precision bf16-mixed --matmul-precision high
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import time
import warnings

import torch

from siamese_bench.core.config import MATMUL_PRECISIONS, TrainConfig
from siamese_bench.data import load_dataset
from siamese_bench.evaluation.metrics import pair_metrics
from siamese_bench.training.batches import build_batches
from siamese_bench.training.build import build_module
from siamese_bench.training.device import matmul_precision, place_batches, training_device
from siamese_bench.training.module import STEP_GROUP, SiameseModule
from siamese_bench.training.run import EpochRecorder, make_trainer


class LogEveryStep(SiameseModule):
    """Lightning's usual way, for comparison: automatic optimization, one mini-batch per loader
    item, `self.log` of the statistics at every step."""

    def _step_schedules(self, interval, count):
        pass  # Lightning steps them itself under automatic optimization

    def on_before_optimizer_step(self, optimizer):
        pass  # and clips with Trainer(gradient_clip_val)

    def training_step(self, batch, batch_idx):
        result = self.objective.step(self.encoder, self.head, batch)
        self.log_dict(
            dict(zip(self.objective.stat_names, result.stats, strict=True)),
            on_step=False,
            on_epoch=True,
            batch_size=result.size,
        )
        return result.loss


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so the clock times it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_siamese(
    cfg: TrainConfig,
    data,
    progress: bool,
    device: torch.device,
    log_every_step: bool = False,
    host_data: bool = False,
    group: int = STEP_GROUP,
) -> tuple[float, int]:
    module = build_module(cfg, data.input_shape)
    batches = build_batches(cfg, data, module.objective)
    if device.type != "cpu" and not host_data:
        place_batches(batches, device)
    if log_every_step:
        module.__class__ = LogEveryStep
        module.automatic_optimization = True
        train_loader = batches["train"]
    else:  # as `train` gives it: groups of mini-batches (or another group size, for comparison)
        train_loader = module.train_loader(batches["train"], size=group)
    trainer = make_trainer(cfg, [EpochRecorder(None, None)], progress, len(train_loader), accelerator=device.type)
    sync(device)
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=batches["val"])
    sync(device)
    return time.perf_counter() - start, len(batches["train"].index) * cfg.epochs


def bench_bare(cfg: TrainConfig, data, device: torch.device) -> tuple[float, int]:
    """The same model, batches, optimizer and validation metrics driven by a hand-written loop."""
    module = build_module(cfg, data.input_shape).to(device)
    batches = build_batches(cfg, data, module.objective)
    if device.type != "cpu":
        place_batches(batches, device)
    optimizer = module.configure_optimizers()  # constant lr: the optimizer itself
    bf16 = cfg.precision == "bf16-mixed"  # what Lightning's bf16-mixed does: autocast, no loss scaling
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    sync(device)
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        module.train()
        for batch in batches["train"]:
            with autocast:
                out = module.compare(batch["x1"], batch["x2"])
                loss = module.loss(out, batch["y"]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        module.eval()
        with torch.no_grad(), autocast:  # the same validation work: loss, then accuracy, AUC, threshold
            outputs = [(module.compare(b["x1"], b["x2"]), b["y"]) for b in batches["val"]]
            [module.loss(out, y).loss for out, y in outputs]
            pair_metrics(torch.cat([o.dissimilarity for o, _ in outputs]), torch.cat([y for _, y in outputs]))
    sync(device)
    return time.perf_counter() - start, len(batches["train"].index) * cfg.epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--progress", action="store_true", help="show Lightning's progress bar (as `train` does)")
    p.add_argument(
        "--log-every-step",
        action="store_true",
        help="also time Lightning's usual way: automatic optimization, one mini-batch a step, self.log at every step",
    )
    p.add_argument(
        "--one-per-step",
        action="store_true",
        help=f"also time siamese-bench with one mini-batch per loader item instead of groups of {STEP_GROUP}",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="train on the CPU (default) or the first CUDA GPU, with the data moved there once",
    )
    p.add_argument(
        "--precision",
        choices=("32-true", "bf16-mixed"),
        default="32-true",
        help="Lightning's precision; the bare loop autocasts to bfloat16 alike",
    )
    p.add_argument(
        "--matmul-precision",
        choices=MATMUL_PRECISIONS,
        default="highest",
        help="torch's float32 matmul precision for both loops (high: TF32 on GPUs that have it)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1, as each sweep worker on 2 cores; with 2 threads any other "
        "process on a 2-core machine stalls OpenMP and the timings stop meaning anything)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU on this machine")
    # the machine's device, as `train` decides it; on a CPU-only machine this also stops torch's NVML check at
    # every optimizer step (a bare loop without Lightning imported never has it), for both loops alike
    machine = training_device()
    device = machine if args.device == "cuda" else torch.device("cpu")
    cfg = TrainConfig(
        dataset=args.dataset, epochs=args.epochs, precision=args.precision, matmul_precision=args.matmul_precision
    )
    data = load_dataset(cfg.dataset)
    rates: dict[str, list[float]] = {"siamese-bench": [], "bare PyTorch": []}
    if args.log_every_step:
        rates["log every step"] = []
    if args.one_per_step:
        rates["one per step"] = []
    if device.type == "cuda":
        rates["host data"] = []  # siamese-bench with one host-to-device copy per batch
    with matmul_precision(cfg.matmul_precision):
        for r in range(args.repeats):
            for name in rates:
                if name == "bare PyTorch":
                    seconds, pairs = bench_bare(cfg, data, device)
                else:
                    seconds, pairs = bench_siamese(
                        cfg,
                        data,
                        args.progress,
                        device,
                        log_every_step=name == "log every step",
                        host_data=name == "host data",
                        group=1 if name == "one per step" else STEP_GROUP,
                    )
                rates[name].append(pairs / seconds)
                print(f"repeat {r}: {name:<14} {pairs / seconds:>9.0f} pairs/s ({seconds:.1f} s)", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    # the ratio repeat by repeat (the two ran back to back), then its median: it holds when the
    # machine's speed drifts during the run, which a ratio of the two medians does not
    ratios = {
        k: statistics.median(a / b for a, b in zip(v, rates["bare PyTorch"], strict=True))
        for k, v in rates.items()
        if k != "bare PyTorch"
    }
    ratio = ratios["siamese-bench"]
    for name in ("log every step", "one per step"):
        if name in ratios:
            print(f"ratio {name} / bare: {ratios[name]:.3f} (median of the repeats' ratios)")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"torch threads {torch.get_num_threads()}"
    print(
        f"\ndataset {data.variant}, {cfg.epochs} epochs x {args.repeats} repeats, {where}, precision "
        f"{cfg.precision}, matmul {cfg.matmul_precision}"
    )
    for k, v in med.items():  # a pair is two images through the encoder
        print(f"median {k:<14} {v:>9.0f} pairs/s {2 * v:>9.0f} images/s")
    if "host data" in med:
        print(f"ratio device data / host data (siamese-bench): {med['siamese-bench'] / med['host data']:.3f}")
    print(
        f"ratio siamese-bench / bare: {ratio:.3f} (median of the repeats' ratios; of the medians "
        f"{med['siamese-bench'] / med['bare PyTorch']:.3f}; aim >= 0.95)"
    )


if __name__ == "__main__":
    main()
