"""The LightningModule: built encoder, head and objective plus an optimizer factory.

Lightning runs the loop as designed: automatic optimization (its closure, zero_grad,
backward through the precision plugin, gradient clipping, optimizer and scheduler steps), one
mini-batch per step, so `global_step`, `max_steps`, step-based schedulers and callbacks count
real optimizer steps. Training statistics are summed as tensors each step and logged once, as
epoch means, at the epoch's last step (a `self.log` per step cost 0.17 of the bare loop's
throughput: 0.69 against 0.86, `benchmarks/throughput.py --log-every-step`), so every
callback reads them from `trainer.callback_metrics` in its `on_train_epoch_end`. Metric keys
are `stage/metric`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from siamese_bench.evaluation.metrics import pair_metrics
from siamese_bench.models.heads import Head, HeadOutput
from siamese_bench.training.augment import Augmentation
from siamese_bench.training.objective import Objective
from siamese_bench.training.samplers import PASS_THROUGH

Batch = dict[str, torch.Tensor]
# (parameters, total optimizer steps) -> an optimizer, or Lightning's {"optimizer", "lr_scheduler"} dict
OptimizerFactory = Callable[[Iterable[nn.Parameter], int], Any]


class SiameseModule(pl.LightningModule):
    def __init__(
        self,
        encoder: nn.Module,
        head: Head,
        objective: Objective,
        optimizer_factory: OptimizerFactory,
        eval_stages: tuple[str, ...] = ("test",),
        augment: Augmentation | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.augment, self.seed = augment, seed
        self._augment_gen: torch.Generator | None = None
        self.encoder, self.head = encoder, head
        self.objective = objective
        self.loss = objective.loss  # a submodule, so its state moves with the model
        self.optimizer_factory = optimizer_factory
        self.eval_stages = eval_stages  # names of the test dataloaders, in order
        self.val_threshold: float | None = None  # chosen on validation, used on test
        # stage -> batches of (dissimilarity, ranking, y); not `_buffers`, which nn.Module owns
        self._eval_outputs: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
        self.final_outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # stage -> (d, y)

    def configure_optimizers(self) -> Any:
        steps = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        return self.optimizer_factory(self.parameters(), steps)

    def compare(self, x1: torch.Tensor, x2: torch.Tensor) -> HeadOutput:
        return self._compare(x1, x2)[0]

    def _compare(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[HeadOutput, torch.Tensor]:
        # One encoder pass over both sides: (2B, ...) -> (2B, D) -> two (B, D) halves.
        emb = self.encoder(torch.cat([x1, x2]))
        a, b = emb.split(len(x1))
        return self.head(a, b), emb

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Batches are gathered from in-memory tensors: moved only when they are elsewhere."""
        if isinstance(batch, dict) and all(t.device == device for t in batch.values()):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training images distorted on the device, a whole batch at a time; evaluation sees them as they are."""
        if self.augment is None or not self.trainer.training:
            return batch
        if self._augment_gen is None:  # on the batch's device, seeded: the seed fixes the distortions too
            self._augment_gen = torch.Generator(device=self.device).manual_seed(self.seed)
        return {k: v if k in PASS_THROUGH else self.augment(v, self._augment_gen) for k, v in batch.items()}

    def on_train_epoch_start(self) -> None:
        trainer = self.trainer
        steps_left = trainer.max_steps - trainer.global_step if trainer.max_steps > 0 else trainer.num_training_batches
        self._last_batch = min(trainer.num_training_batches, steps_left) - 1  # where the epoch's means are logged
        self._stat_sums = torch.zeros(len(self.objective.stat_names) + 1, device=self.device)  # sums, then weight

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        result = self.objective.step(self.encoder, self.head, batch)
        self._stat_sums[:-1] += result.stats * result.size
        self._stat_sums[-1] += result.size
        if batch_idx == self._last_batch:
            means = self._stat_sums[:-1] / self._stat_sums[-1]
            self.log_dict(
                dict(zip(self.objective.stat_names, means, strict=True)), on_step=False, on_epoch=True, batch_size=1
            )
        return result.loss

    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        out, emb = self._compare(batch["x1"], batch["x2"])
        self._eval_outputs.setdefault(stage, []).append((out.dissimilarity.detach(), out.ranking.detach(), batch["y"]))
        # Spread of the embeddings (mean per-dimension sd): near 0 when a run has collapsed
        # every input to one point, the signature of a constant loss (PITFALLS.md).
        self.log(
            f"{stage}/embedding_spread",
            emb.float().std(dim=0).mean(),
            on_step=False,
            on_epoch=True,
            add_dataloader_idx=False,
            batch_size=len(emb),
        )
        loss = self.objective.eval_loss(out, batch["y"])
        if loss is not None:
            self.log(
                f"{stage}/loss",
                loss,
                on_step=False,
                on_epoch=True,
                add_dataloader_idx=False,
                batch_size=len(batch["y"]),
            )

    def _collect(self, stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dissimilarity, ranking, y) of every pair the stage saw."""
        parts = self._eval_outputs.pop(stage, [])
        return tuple(torch.cat([part[i] for part in parts]) for i in range(3))  # type: ignore[return-value]  # mypy cannot count a generator's length

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
            self.final_outputs[stage] = (d.float().cpu(), y.cpu())  # bf16-mixed gives bfloat16, which numpy lacks
            metrics = pair_metrics(d, y, tuned_threshold=self.val_threshold, ranking=rank)
            self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, add_dataloader_idx=False)
