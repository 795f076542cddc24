"""The LightningModule: built encoder, head and objective plus an optimizer factory.

Lightning runs the epochs, validation, callbacks, devices and precision. Each item of the
training loader is a group of up to STEP_GROUP mini-batches (`train_loader`), and
`training_step` takes one optimizer step per mini-batch through Lightning's manual
optimization: `manual_backward` (the precision plugin), the `LightningOptimizer` (its hooks,
`global_step`), gradient clipping in `on_before_optimizer_step` (after a grad scaler's
unscale, where automatic optimization clips) and the schedulers' steps at Lightning's
intervals and frequencies. `max_steps` stops inside a group. Why groups: Lightning's work per
loader item (fetching, batch hooks, progress, the closure) was 0.6 ms of a 5.3 ms C1 step on
one CPU thread; spread over 8 mini-batches, training runs at 0.95 of a bare PyTorch loop
instead of 0.87 (docs/performance.md). The optimizer steps, their order, the random draws and
so every result are those of one mini-batch per Lightning step (tests/training). Callbacks see
`on_train_batch_*` once per group; the optimizer's hooks and `global_step` once per step.

Training statistics are summed as tensors each step and logged once, as epoch means, at the
epoch's last step (a `self.log` per step cost 0.17 of the bare loop's throughput), so every
callback reads them from `trainer.callback_metrics` in its `on_train_epoch_end`. Metric keys
are `stage/metric`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from siamese_bench.core.errors import ConfigError
from siamese_bench.evaluation.metrics import pair_metrics
from siamese_bench.models.heads import Head, HeadOutput
from siamese_bench.training.augment import Augmentation
from siamese_bench.training.objective import Objective
from siamese_bench.training.samplers import PASS_THROUGH, TensorBatches

Batch = dict[str, torch.Tensor]
STEP_GROUP = 8  # mini-batches per item of the training loader: one optimizer step each
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
        gradient_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # training_step steps the optimizer once per mini-batch
        self.augment, self.seed, self.gradient_clip = augment, seed, gradient_clip
        self.steps_per_epoch: int | None = None  # mini-batches per epoch, set by train_loader
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

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name around every hook call; nn.Module's __setattr__ (its
        # Parameter/Module/buffer checks) took 4.5 us of it, a plain attribute takes 0.4
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def train_loader(self, batches: TensorBatches, size: int | None = None) -> StepGroups:
        """What to give `Trainer.fit` as the training loader: `batches` in groups of `size`
        (STEP_GROUP unless a comparison asks for another)."""
        self.steps_per_epoch = len(batches)
        return StepGroups(batches, size or STEP_GROUP)

    def configure_optimizers(self) -> Any:
        """The factory's optimizer (and schedule), told the run's number of optimizer steps."""
        return self.optimizer_factory(self.parameters(), self._total_steps())

    def _total_steps(self) -> int:
        if self._trainer is None:
            return 1
        trainer = self.trainer
        if self.steps_per_epoch is None:  # a loader of single mini-batches: Lightning counts them
            return int(trainer.estimated_stepping_batches)
        return total_steps(self.steps_per_epoch, trainer)

    def on_fit_start(self) -> None:
        refuse_plateau(self.trainer)

    def compare(self, x1: torch.Tensor, x2: torch.Tensor) -> HeadOutput:
        return self._compare(x1, x2)[0]

    def _compare(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[HeadOutput, torch.Tensor]:
        # One encoder pass over both sides: (2B, ...) -> (2B, D) -> two (B, D) halves.
        emb = self.encoder(torch.cat([x1, x2]))
        a, b = emb.split(len(x1))
        return self.head(a, b), emb

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Batches are gathered from in-memory tensors: moved only when they are elsewhere."""
        group = batch if isinstance(batch, list) else [batch]
        if all(isinstance(b, dict) and all(t.device == device for t in b.values()) for b in group):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training images distorted on the device, a whole batch at a time; evaluation sees them as they are."""
        if self.augment is None or not self.trainer.training:
            return batch
        if self._augment_gen is None:  # on the batch's device, seeded: the seed fixes the distortions too
            self._augment_gen = torch.Generator(device=self.device).manual_seed(self.seed)
        if isinstance(batch, list):  # a group: each mini-batch in order, as one at a time would be
            return [self._distort(b, self._augment_gen) for b in batch]
        return self._distort(batch, self._augment_gen)

    def _distort(self, batch: Batch, gen: torch.Generator) -> Batch:
        assert self.augment is not None
        return {k: v if k in PASS_THROUGH else self.augment(v, gen) for k, v in batch.items()}

    def on_train_epoch_start(self) -> None:
        self._stat_sums = torch.zeros(len(self.objective.stat_names) + 1, device=self.device)  # sums, then weight
        self._epoch_step = 0  # optimizer steps taken this epoch

    def training_step(self, batch: list[Batch] | Batch, batch_idx: int) -> None:
        trainer = self.trainer
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)  # the factory makes one optimizer
        autocast_off = torch.autocast(self.device.type, enabled=False)
        for mini_batch in batch if isinstance(batch, list) else [batch]:
            if 0 < trainer.max_steps <= trainer.global_step:
                break
            result = self.objective.step(self.encoder, self.head, mini_batch)
            optimizer.zero_grad()
            with autocast_off:  # backward outside autocast, where automatic optimization runs it
                self.manual_backward(result.loss)
            optimizer.step()  # on_before_optimizer_step clips; global_step advances
            self._epoch_step += 1
            self._step_schedules("step", self._epoch_step)
            self._stat_sums[:-1] += result.stats * result.size
            self._stat_sums[-1] += result.size
        last = batch_idx == trainer.num_training_batches - 1 or 0 < trainer.max_steps <= trainer.global_step
        if last:
            means = self._stat_sums[:-1] / self._stat_sums[-1]
            self.log_dict(
                dict(zip(self.objective.stat_names, means, strict=True)), on_step=False, on_epoch=True, batch_size=1
            )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.gradient_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip, gradient_clip_algorithm="norm")

    def on_train_epoch_end(self) -> None:
        self._step_schedules("epoch", self.trainer.current_epoch + 1)

    def _step_schedules(self, interval: str, count: int) -> None:
        step_schedules(self.trainer, interval, count)

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


def total_steps(steps_per_epoch: int, trainer: pl.Trainer) -> int:
    """Optimizer steps a fit takes: every epoch's mini-batches, cut at `max_steps`."""
    steps = steps_per_epoch * max(trainer.max_epochs or 1, 1)
    return min(steps, trainer.max_steps) if trainer.max_steps > 0 else steps


def step_schedules(trainer: pl.Trainer, interval: str, count: int) -> None:
    """Lightning's rule: a scheduler steps every `frequency`-th step or epoch of its interval."""
    for config in trainer.lr_scheduler_configs:
        if config.interval == interval and count % config.frequency == 0:
            config.scheduler.step()  # type: ignore[call-arg]  # on_fit_start refused ReduceLROnPlateau


def refuse_plateau(trainer: pl.Trainer) -> None:
    """ReduceLROnPlateau steps on a monitored metric, which manual optimization here never passes it."""
    for config in trainer.lr_scheduler_configs:
        if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ConfigError(
                f"lr schedule: {type(config.scheduler).__name__} steps on a monitored metric, which "
                "siamese-bench's training step does not support; use a step or epoch schedule"
            )


class StepGroups:
    """A training loader of groups: lists of up to `size` consecutive mini-batches of `batches`,
    in their order (the module takes one optimizer step per mini-batch)."""

    def __init__(self, batches: TensorBatches, size: int) -> None:
        self.batches, self.size = batches, size

    def __len__(self) -> int:
        return -(-len(self.batches) // self.size)

    def __iter__(self) -> Iterator[list[Batch]]:
        group: list[Batch] = []
        for batch in self.batches:
            group.append(batch)
            if len(group) == self.size:
                yield group
                group = []
        if group:
            yield group
