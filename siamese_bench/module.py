"""The LightningModule: built encoder, head and loss objects plus an optimizer factory.

Train, validation and test go through shared steps; metric keys are `stage/metric`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytorch_lightning as pl
import torch
from torch import nn

from siamese_bench.heads import Head, HeadOutput
from siamese_bench.losses import Loss
from siamese_bench.metrics import FIXED_THRESHOLD, pair_metrics
from siamese_bench.mining import mine

Batch = dict[str, torch.Tensor]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class SiameseModule(pl.LightningModule):
    def __init__(self, encoder: nn.Module, head: Head, loss: Loss,
                 optimizer_factory: OptimizerFactory,
                 eval_stages: tuple[str, ...] = ("test",), mining: str = "random") -> None:
        super().__init__()
        self.encoder, self.head, self.loss = encoder, head, loss
        self.optimizer_factory = optimizer_factory
        # Manual optimization on the raw optimizer: zero_grad, backward, step, as a bare loop
        # does. Lightning's closure and per-step hooks cost 10-15 % of a step of these small
        # models (benchmarks/throughput.py); Lightning still runs the loops, devices,
        # validation, test and callbacks. Training is 32-bit, so calling backward() directly
        # skips no precision plugin (AMP scaling).
        self.automatic_optimization = False
        self.eval_stages = eval_stages  # names of the test dataloaders, in order
        self.mining = mining  # triplets: "random" (as sampled), "batch-hard" or "semi-hard"
        self.val_threshold: float | None = None  # chosen on validation, used on test
        # stage -> batches of (dissimilarity, ranking, y); not `_buffers`, which nn.Module owns
        self._eval_outputs: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
        self.final_outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # stage -> (d, y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())

    def compare(self, x1: torch.Tensor, x2: torch.Tensor) -> HeadOutput:
        return self._compare(x1, x2)[0]

    def _compare(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[HeadOutput, torch.Tensor]:
        # One encoder pass over both sides: (2B, ...) -> (2B, D) -> two (B, D) halves.
        emb = self.encoder(torch.cat([x1, x2]))
        a, b = emb.split(len(x1))
        return self.head(a, b), emb

    def on_train_epoch_start(self) -> None:
        self._train_sums = torch.zeros(4, device=self.device)  # loss, acc, active, count

    def training_step(self, batch: Batch | list[Batch], batch_idx: int) -> None:
        """One optimizer step per mini-batch; a loader item may carry several consecutive
        mini-batches (TensorBatches(group=...)) to share Lightning's per-item overhead."""
        for minibatch in batch if isinstance(batch, list) else [batch]:
            self._optimizer_step(minibatch)

    def _optimizer_step(self, batch: Batch) -> None:
        if self.loss.sampling == "triplets" and self.mining != "random":
            d_ap, d_an = self._mined(batch)
            value = self.loss(d_ap, d_an)
            correct = (d_ap < d_an).float().mean()
        elif self.loss.sampling == "triplets":
            emb = self.encoder(torch.cat([batch["anchor"], batch["positive"], batch["negative"]]))
            a, p, n = emb.split(len(batch["anchor"]))  # 3 x (B, D)
            d_ap, d_an = self.head(a, p).dissimilarity, self.head(a, n).dissimilarity
            value = self.loss(d_ap, d_an)
            correct = (d_ap < d_an).float().mean()  # triplets ordered right
        else:
            out = self.compare(batch["x1"], batch["x2"])
            value = self.loss(out, batch["y"])
            correct = ((out.dissimilarity < FIXED_THRESHOLD).float() == batch["y"]).float().mean()
        # Running sums instead of self.log per step: Lightning's per-call bookkeeping costs
        # about as much as a training step of the MLP (measured by benchmarks/throughput.py).
        n = len(next(iter(batch.values())))
        stats = torch.stack([value.loss.detach(), correct.detach(), value.active_fraction.detach(),
                             torch.ones((), device=self.device)])
        self._train_sums += stats * n
        optimizer = self.optimizers().optimizer
        optimizer.zero_grad()
        value.loss.backward()
        optimizer.step()

    def _mined(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard triplets from the batch's anchors and positives (the sampled negatives are not
        used): the head scores every anchor against every candidate."""
        emb = self.encoder(torch.cat([batch["anchor"], batch["positive"]]))  # (2B, D)
        b, m = len(batch["anchor"]), len(emb)
        a = emb[:b, None, :].expand(b, m, emb.shape[1]).reshape(b * m, -1)  # (B M, D)
        c = emb[None, :, :].expand(b, m, emb.shape[1]).reshape(b * m, -1)
        d = self.head(a, c).dissimilarity.view(b, m)  # (B, M)
        labels = batch["label"]
        idx = torch.arange(b, device=d.device)
        d_ap, d_an, _ = mine(d, labels, torch.cat([labels, labels]), b + idx, idx, self.mining)
        return d_ap, d_an

    def train_epoch_metrics(self) -> dict[str, float]:
        """Means over the current epoch so far; read by callbacks, logged at epoch end."""
        loss, correct, active, count = (self._train_sums / self._train_sums[3].clamp_min(1)).tolist()
        acc_key = "train/triplet_order_acc" if self.loss.sampling == "triplets" else "train/acc"
        return {"train/loss": loss, acc_key: correct, "train/active_fraction": active}

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_epoch_metrics(), prog_bar=False)

    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        out, emb = self._compare(batch["x1"], batch["x2"])
        self._eval_outputs.setdefault(stage, []).append((out.dissimilarity.detach(), out.ranking.detach(), batch["y"]))
        # Spread of the embeddings (mean per-dimension sd): near 0 when a run has collapsed
        # every input to one point, the signature of a constant loss (PITFALLS.md).
        self.log(f"{stage}/embedding_spread", emb.float().std(dim=0).mean(), on_step=False, on_epoch=True,
                 add_dataloader_idx=False, batch_size=len(emb))
        if self.loss.sampling == "pairs":
            self.log(f"{stage}/loss", self.loss(out, batch["y"]).loss, on_step=False,
                     on_epoch=True, add_dataloader_idx=False, batch_size=len(batch["y"]))

    def _collect(self, stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dissimilarity, ranking, y) of every pair the stage saw."""
        parts = self._eval_outputs.pop(stage, [])
        return tuple(torch.cat([part[i] for part in parts]) for i in range(3))  # type: ignore[return-value]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        d, rank, y = self._collect("val")
        metrics = pair_metrics(d, y, ranking=rank)
        self.val_threshold = metrics["threshold"]
        self.log_dict({f"val/{k}": v for k, v in metrics.items()})

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(self.eval_stages[dataloader_idx], batch)

    def on_test_epoch_end(self) -> None:
        for stage in self.eval_stages:
            d, rank, y = self._collect(stage)
            self.final_outputs[stage] = (d.cpu(), y.cpu())
            metrics = pair_metrics(d, y, tuned_threshold=self.val_threshold, ranking=rank)
            self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, add_dataloader_idx=False)
