"""Seed stacking: the seeds of one cell trained together as one batched model.

Each seed is built as today (`prepare_run`: its split, pairs, order and initialisation from its
seed); their parameters and buffers are stacked along a leading seed axis
(`torch.func.stack_module_state`) and one training step runs every seed's own mini-batch
through `torch.func.vmap` over `functional_call` of the one definition of encoder, head and
loss. The seeds never mix: the summed loss's gradient for seed k is seed k's own, every
optimizer here acts element by element (so one optimizer over the stacked tensors is K
optimizers with their own state), and gradient clipping is done per seed. Dropout draws
different masks per seed (`randomness="different"`) from the stack's generator, so a stacked
seed reproduces itself in the same stack, not the sequential run's masks.

Per epoch each seed's slice is copied into its own SiameseModule, which validates it, keeps its
curve, and stops it early by Lightning's EarlyStopping rule (a stopped or diverged seed keeps
the weights it had then; the stack trains on until every seed is done). The final test,
evaluations, artifacts and MLflow run of each seed are the sequential path's (`finish_run`).

A part whose usual form has data-dependent shapes offers a fixed-shape form of the same function,
which the stack's copy switches on (`fixed_shapes`): the LSTM encoder runs its steps masked
instead of packed, and batch-hard and semi-hard mining keep every anchor, weighting 0 the ones
without a negative. What vmap still cannot batch (some plugins) is found by one probe step on
the real first batches, and those seeds train one at a time, with one line saying which part
and why.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from siamese_bench.evaluation.metrics import pair_metrics
from siamese_bench.infra.run_tracker import RunTracker
from siamese_bench.training.module import Batch, SiameseModule, refuse_plateau, step_schedules, total_steps
from siamese_bench.training.run import (
    DivergedError,
    PreparedRun,
)
from siamese_bench.training.samplers import PASS_THROUGH, TensorBatches

log = logging.getLogger(__name__)

STACK_SIZE_TAG = "stack_size"  # MLflow tag: how many seeds trained together (1: alone)


class _Step(nn.Module):
    """Encoder, head and loss as one module whose forward is the objective's training step,
    so `functional_call` can swap in one seed's slice of the stacked tensors."""

    def __init__(self, module: SiameseModule) -> None:
        super().__init__()
        self.encoder, self.head, self.loss = module.encoder, module.head, module.loss
        self.objective = module.objective

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        result = self.objective.step(self.encoder, self.head, batch)
        return result.loss, result.stats


@dataclass
class SeedState:
    """One stacked seed's progress: its curve, early stopping, and why it stopped."""

    prep: PreparedRun
    tracker: RunTracker | None = None  # where its run is recorded
    run_id: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    best: float = math.nan
    wait: int = 0
    steps: int = 0  # optimizer steps taken until it stopped (or the end)
    done: bool = False
    error: BaseException | None = None


class StackedBatches:
    """The seeds' training batches side by side: each item is one mini-batch per seed, in the
    seed's own order (every TensorBatches draws its own epoch order and pairs)."""

    def __init__(self, batches: Sequence[TensorBatches]) -> None:
        self.batches = list(batches)

    def __len__(self) -> int:
        return len(self.batches[0])

    def __iter__(self) -> Iterator[list[Batch]]:
        yield from (list(step) for step in zip(*self.batches, strict=True))


def fixed_shape_form(step: _Step) -> _Step:
    """`step` with every part that has a fixed-shape form (a `fixed_shapes` attribute: the LSTM
    encoder, the batch miners, a plugin's) switched to it, for vmap; the same function."""
    parts: list[Any] = [*step.modules(), getattr(step.objective, "miner", None)]
    for part in parts:
        if hasattr(part, "fixed_shapes"):
            part.fixed_shapes = True
    return step


def stack_blocker(preps: Sequence[PreparedRun]) -> str | None:
    """Why these seeds cannot train as one stack (None when they can): their training sets
    differ in shape, or a part does not run under vmap (one probe step on the real first
    batches, on copies: nothing of the seeds' state changes)."""
    sizes = {(len(p.batches["train"].index), p.batches["train"].batch_size) for p in preps}
    if len(sizes) > 1:
        return f"the seeds' training sets differ in size ({', '.join(str(s[0]) for s in sorted(sizes))} items)"
    cfg = preps[0].cfg
    steps = [_Step(copy.deepcopy(p.module)) for p in preps]
    params, buffers = stack_module_state(steps)
    batch = _stack([p.batches["train"].peek() for p in preps])
    base = fixed_shape_form(steps[0])
    try:
        losses, _ = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), randomness="different")(
            params, buffers, batch
        )
        losses.sum().backward()
        return None
    except Exception as err:  # vmap's errors are RuntimeErrors, a plugin's may be anything
        reason = str(err).splitlines()[0][:160]
    first = next(k for k in batch if k not in PASS_THROUGH)
    try:  # which part: the encoder alone on the first input field
        vmap(_encoder_call(base), randomness="different")(params, buffers, batch[first])
    except Exception:
        return f"the {cfg.encoder} encoder cannot run batched under torch.func.vmap ({reason})"
    if cfg.triplet_mining != "random":
        return f"{cfg.triplet_mining} mining cannot run batched under torch.func.vmap ({reason})"
    return f"the {cfg.head} head or the {cfg.loss} loss cannot run batched under torch.func.vmap ({reason})"


def _encoder_call(base: _Step) -> Callable[..., torch.Tensor]:
    """(stacked params, buffers, x) -> the encoder's output, for one seed's slice."""

    def call(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        own = {k.removeprefix("encoder."): v for k, v in {**p, **b}.items() if k.startswith("encoder.")}
        return functional_call(base.encoder, own, (x,))

    return call


def _stack(per_seed: Sequence[Batch]) -> Batch:
    """(K, B, ...) tensors from K batches of equal shapes."""
    return {key: torch.stack([b[key] for b in per_seed]) for key in per_seed[0]}


class StackedModule(pl.LightningModule):
    """K seeds of one design as one LightningModule: the stacked parameters are its own, each
    seed's SiameseModule (validation, the final evaluation) receives its slice at each epoch end."""

    def __init__(self, states: Sequence[SeedState]) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.states = list(states)
        first = states[0].prep.module
        self.optimizer_factory, self.gradient_clip = first.optimizer_factory, first.gradient_clip
        self.objective = first.objective
        steps = [_Step(s.prep.module) for s in states]
        params, buffers = stack_module_state(steps)
        self.param_names, self.buffer_names = list(params), list(buffers)
        self.stacked = nn.ParameterList([nn.Parameter(params[n]) for n in self.param_names])
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"stacked_buffer_{i}", buffers[name])
        object.__setattr__(self, "base", fixed_shape_form(copy.deepcopy(steps[0])))  # not a submodule
        self._step = vmap(self._one_seed, randomness="different")
        self._augment_gens: list[torch.Generator] | None = None

    def _one_seed(self, p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], batch: Batch) -> Any:
        return functional_call(self.base, (p, b), (batch,))  # type: ignore[arg-type]  # base is an nn.Module

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        buffers = [getattr(self, f"stacked_buffer_{i}") for i in range(len(self.buffer_names))]
        return dict(zip(self.param_names, self.stacked, strict=True)), dict(
            zip(self.buffer_names, buffers, strict=True)
        )

    def configure_optimizers(self) -> Any:
        steps = total_steps(len(self.states[0].prep.batches["train"]), self.trainer)
        return self.optimizer_factory(self.stacked.parameters(), steps)

    def on_fit_start(self) -> None:
        refuse_plateau(self.trainer)
        for state in self.states:
            state.prep.module.to(self.device)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Each seed's images distorted with its own generator, in its own order: the sequential run's distortions."""
        augment = self.states[0].prep.module.augment
        if augment is None:
            return batch
        if self._augment_gens is None:
            self._augment_gens = [torch.Generator(device=self.device).manual_seed(s.prep.cfg.seed) for s in self.states]
        return [
            [
                {k: v if k in PASS_THROUGH else augment(v, gen) for k, v in seed_batch.items()}
                for seed_batch, gen in zip(step, self._augment_gens, strict=True)
            ]
            for step in batch
        ]

    def on_train_epoch_start(self) -> None:
        k, width = len(self.states), len(self.objective.stat_names) + 1
        self._stat_sums = torch.zeros(k, width, device=self.device)  # per seed: sums, then weight
        self._epoch_step = 0

    def training_step(self, batch: list[list[Batch]], batch_idx: int) -> None:
        trainer = self.trainer
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)
        autocast_off = torch.autocast(self.device.type, enabled=False)
        for per_seed in batch:
            if 0 < trainer.max_steps <= trainer.global_step:
                break
            stacked = _stack(per_seed)
            params, buffers = self._tensors()
            losses, stats = self._step(params, buffers, stacked)  # (K,), (K, S)
            optimizer.zero_grad()
            with autocast_off:
                self.manual_backward(losses.sum())  # seed k's gradient is its own loss's
            optimizer.step()
            self._epoch_step += 1
            step_schedules(trainer, "step", self._epoch_step)
            size = len(next(iter(per_seed[0].values())))
            self._stat_sums[:, :-1] += stats.detach() * size
            self._stat_sums[:, -1] += size

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Each seed's gradients clipped by their own norm, as clip_grad_norm_ does for one model."""
        if self.gradient_clip is None:
            return
        grads = [p.grad for p in self.stacked if p.grad is not None]
        per_tensor = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # (P, K)
        total = torch.linalg.vector_norm(per_tensor, dim=0)  # (K,): clip_grad_norm_'s norm of norms
        coef = (self.gradient_clip / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *[1] * (g.dim() - 1)).to(g.dtype))

    def on_train_epoch_end(self) -> None:
        trainer = self.trainer
        means = (self._stat_sums[:, :-1] / self._stat_sums[:, -1:]).tolist()
        params, buffers = self._tensors()
        for k, state in enumerate(self.states):
            if state.done:
                continue
            self._copy_slice(k, state.prep.module, {**params, **buffers})
            metrics = dict(zip(self.objective.stat_names, means[k], strict=True))
            metrics.update(validate(state.prep.module, state.prep.batches["val"], trainer))
            state.history.append(metrics)
            state.steps = trainer.global_step
            if state.tracker and state.run_id:
                state.tracker.log_metrics(state.run_id, metrics, step=trainer.current_epoch)
            loss = metrics.get("train/loss", 0.0)
            if not math.isfinite(loss):
                state.error = DivergedError(f"training loss is {loss} at epoch {trainer.current_epoch}")
                state.done = True
            elif self._stops_early(state, metrics):
                state.done = True
        step_schedules(trainer, "epoch", trainer.current_epoch + 1)
        if all(s.done for s in self.states):
            trainer.should_stop = True

    def _stops_early(self, state: SeedState, metrics: dict[str, float]) -> bool:
        """Lightning's EarlyStopping rule (min_delta 0, stop on a non-finite monitor), per seed."""
        patience = state.prep.cfg.early_stopping_patience
        if patience is None:
            return False
        monitor, mode = self.objective.monitor
        current = metrics.get(monitor, math.nan)
        if not math.isfinite(current):
            return True
        better = math.isnan(state.best) or (current < state.best if mode == "min" else current > state.best)
        if better:
            state.best, state.wait = current, 0
            return False
        state.wait += 1
        return state.wait >= patience

    def _copy_slice(self, k: int, module: SiameseModule, tensors: dict[str, torch.Tensor]) -> None:
        """Seed k's parameters and buffers written into its own module."""
        step = _Step(module)
        own = dict(step.named_parameters()) | dict(step.named_buffers())
        with torch.no_grad():
            for name, value in tensors.items():
                own[name].copy_(value[k])

    def finish_states(self) -> None:
        """After fitting: the seeds still training take the stack's last weights."""
        params, buffers = self._tensors()
        for k, state in enumerate(self.states):
            if not state.done:
                self._copy_slice(k, state.prep.module, {**params, **buffers})
                state.steps = self.trainer.global_step


@torch.no_grad()
def validate(module: SiameseModule, batches: TensorBatches, trainer: pl.Trainer) -> dict[str, float]:
    """What Lightning's validation loop logs for the module (val/embedding_spread, val/loss,
    val/acc, auc, acc_tuned, threshold), as batch-size-weighted epoch means; sets its threshold."""
    was_training = module.training
    module.eval()
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    spread = loss = torch.zeros((), device=module.device)
    n_emb = n_pairs = 0
    with trainer.precision_plugin.val_step_context():
        for batch in batches:
            out, emb = module._compare(batch["x1"], batch["x2"])
            parts.append((out.dissimilarity, out.ranking, batch["y"]))
            spread = spread + emb.float().std(dim=0).mean() * len(emb)
            n_emb += len(emb)
            value = module.objective.eval_loss(out, batch["y"])
            if value is not None:
                loss, n_pairs = loss + value.float() * len(batch["y"]), n_pairs + len(batch["y"])
    module.train(was_training)
    d, rank, y = (torch.cat([p[i] for p in parts]) for i in range(3))
    metrics = pair_metrics(d, y, ranking=rank)
    module.val_threshold = metrics["threshold"]
    logged = {"val/embedding_spread": float(spread / n_emb)}
    if n_pairs:
        logged["val/loss"] = float(loss / n_pairs)
    return {**logged, **{f"val/{k}": v for k, v in metrics.items()}}
