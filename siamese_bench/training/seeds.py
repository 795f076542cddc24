"""Several seeds of one configuration: in stacks of K where they can stack, else one at a time.

`run_seeds` is what `train --seeds` calls: it prepares each seed as `run_training` would,
groups them into stacks of `stack_size` (the measured rule of `default_stack_size` unless
given), probes each stack once (`stack_blocker`) and trains it as one batched model, or its
seeds one by one with one line saying why.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.data import LabelledData, PairedData, load_dataset
from siamese_bench.infra.run_tracker import RunTracker
from siamese_bench.training.device import matmul_precision
from siamese_bench.training.module import STEP_GROUP, StepGroups
from siamese_bench.training.run import (
    DEFAULT_EXPERIMENT,
    PreparedRun,
    RunResult,
    fail_reason,
    failed_status,
    finish_run,
    make_trainer,
    prepare_run,
    run_training,
    start_tracking,
)
from siamese_bench.training.stacked import STACK_SIZE_TAG, SeedState, StackedBatches, StackedModule, stack_blocker

log = logging.getLogger(__name__)

MAX_STACK = 32  # seeds per stack at most by default


@dataclass(frozen=True)
class SeedRun:
    """One seed to train and where its run is recorded (what run_training takes besides the
    configuration): a sweep gives each seed its own run name, tags and tracker."""

    seed: int
    tracker: RunTracker | None = None
    experiment: str = DEFAULT_EXPERIMENT
    run_name: str | None = None
    parent_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def seed_runs(seeds: Sequence[int], **tracking: Any) -> list[SeedRun]:
    """The seeds, all recorded alike (`tracking`: SeedRun's other fields)."""
    return [SeedRun(s, **tracking) for s in seeds]


@dataclass
class SeedOutcome:
    """One seed of a stack: its result, or what stopped it (the others went on)."""

    seed: int
    result: RunResult | None
    error: BaseException | None = None
    epochs: int = 0  # epochs it trained (validated), the result's or up to its failure


def train_stack(
    preps: Sequence[PreparedRun],
    runs: Sequence[SeedRun],
    *,
    progress: bool = True,
    callbacks: Sequence[pl.Callback] = (),
    on_done: Callable[[SeedOutcome], None] | None = None,
) -> list[SeedOutcome]:
    """Train `preps` (one cell's seeds, prepared) as one stack, `runs[k]` saying where seed k is
    recorded; each seed its own tracked run, ended FINISHED, FAILED (diverged) or KILLED/FAILED
    with the stack. `callbacks` go to the stack's trainer (they see the stack, not a seed)."""
    started = time.perf_counter()
    states = [SeedState(p, run.tracker) for p, run in zip(preps, runs, strict=True)]
    cfg = preps[0].cfg
    ended: set[int] = set()
    outcomes: list[SeedOutcome] = []
    try:  # from the first run started on: none is left RUNNING by this process
        for state, run in zip(states, runs, strict=True):
            tags = {**run.tags, STACK_SIZE_TAG: str(len(preps))}
            where = (run.experiment, run.run_name, run.parent_run_id)
            state.run_id = start_tracking(state.prep, run.tracker, *where, tags)
        pl.seed_everything(cfg.seed, verbose=False)  # the stack's dropout masks: fixed by its first seed
        module = StackedModule(states)
        loader = StepGroups(StackedBatches([p.batches["train"] for p in preps]), STEP_GROUP)  # type: ignore[arg-type]
        trainer = make_trainer(cfg, callbacks, progress, len(loader))
        with matmul_precision(cfg.matmul_precision):
            trainer.fit(module, train_dataloaders=loader)
        module.finish_states()
        fit_seconds = time.perf_counter() - started
        for k, (state, run) in enumerate(zip(states, runs, strict=True)):
            outcome = _finish_seed(state, fit_seconds / len(states), run.run_name)
            ended.add(k)
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    except BaseException as err:
        status = failed_status(err)
        for k, state in enumerate(states):
            if k not in ended and state.tracker and state.run_id:
                state.tracker.set_tags(state.run_id, fail_reason(err))
                state.tracker.end_run(state.run_id, status)
        raise
    return outcomes


def _finish_seed(state: SeedState, fit_seconds: float, run_name: str | None) -> SeedOutcome:
    """Test, evaluate and record one stacked seed; its run ended whatever happens. `seconds`
    is its share of the stack's fitting plus its own evaluation."""
    prep, run_id, tracker = state.prep, state.run_id, state.tracker
    status = "FAILED"
    try:
        if state.error is not None:
            raise state.error
        started = time.perf_counter() - fit_seconds
        tester = make_trainer(prep.cfg, [], False, 1)
        result = finish_run(prep, tester, state.history, state.steps, started, tracker, run_id, run_name)
        status = "FINISHED"
        return SeedOutcome(prep.cfg.seed, result, epochs=len(state.history))
    except Exception as err:
        if tracker and run_id:
            tracker.set_tags(run_id, fail_reason(err))
        return SeedOutcome(prep.cfg.seed, None, err, epochs=len(state.history))
    finally:
        if tracker and run_id:
            tracker.end_run(run_id, status)


def parse_seeds(text: str) -> list[int]:
    """'0-7', '0,3,5' or '2' -> the seeds, in order, each once; ConfigError naming --seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            lo, hi = int(first), int(last) if dash else int(first)
            if lo < 0 or hi < lo:
                raise ValueError
            seeds.extend(s for s in range(lo, hi + 1) if s not in seeds)
    except ValueError:
        raise ConfigError(
            f"--seeds {text!r}: expected seeds as 0-7, 0,3,5 or 2 (non-negative, ranges ascending)"
        ) from None
    return seeds


def default_stack_size(cfg: TrainConfig, n_seeds: int, accelerator: str) -> int:
    """How many seeds to stack when the user does not say (a rule from measurements on 2 CPU
    cores, docs/performance.md): on a GPU as many as there are (up to MAX_STACK); on a CPU
    only where a step is small enough that per-step overhead, not arithmetic, bounds it."""
    if accelerator == "cuda":
        return max(1, min(n_seeds, MAX_STACK))
    return max(1, min(n_seeds, 8)) if cpu_stacks(cfg) else 1


def claim_size(
    cfg: TrainConfig, open_in_cell: int, open_total: int, idle: int, stack_seeds: int | None, accelerator: str
) -> int:
    """How many of a cell's `open_in_cell` open seeds a sweep's worker claims as one stack: up to
    `stack_seeds` (else the measured rule), the cell's seeds split into stacks of equal size,
    and no more than leaves work for every one of the `idle` workers (`open_total` points open)."""
    most = stack_seeds or default_stack_size(cfg, open_in_cell, accelerator)
    most = max(1, min(most, open_in_cell))
    equal = math.ceil(open_in_cell / math.ceil(open_in_cell / most))  # 10 seeds, K 8: 5 + 5, not 8 + 2
    return max(1, min(equal, math.ceil(open_total / max(1, idle))))


def cpu_stacks(cfg: TrainConfig) -> bool:
    """The cells that ran at least 0.95x as fast stacked as sequential on 2 CPU cores: the MLP
    without in-batch mining (semi-hard on mnist-5k ran 0.87x; the LSTM's masked form, 0.68x)."""
    return cfg.encoder == "mlp" and cfg.batch_size <= 128 and cfg.triplet_mining == "random"


def run_seeds(
    cfg: TrainConfig,
    runs: Sequence[SeedRun],
    *,
    stack_size: int | None = None,
    data: LabelledData | PairedData | None = None,
    progress: bool = True,
    accelerator: str = "cpu",
    callbacks: Sequence[pl.Callback] = (),
    on_done: Callable[[SeedOutcome], None] | None = None,
) -> list[SeedOutcome]:
    """Each seed of `runs` trained with `cfg` and recorded once, in stacks of `stack_size` seeds;
    the outcomes in seed order. A seed that diverges or fails does not stop the others; an error
    of a stack's fitting itself (or Ctrl-C) ends its seeds' runs FAILED (KILLED) and is raised."""
    if stack_size is not None and stack_size < 1:
        raise ConfigError(f"--stack-seeds {stack_size}: expected 1 or more")
    data = data or load_dataset(cfg.dataset)
    size = stack_size or default_stack_size(cfg, len(runs), accelerator)
    outcomes: list[SeedOutcome] = []

    def done(outcome: SeedOutcome) -> None:
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    for start in range(0, len(runs), size):
        group = list(runs[start : start + size])
        seeds = ",".join(str(r.seed) for r in group)
        preps = [prepare_run(cfg.model_copy(update={"seed": r.seed}), data) for r in group] if len(group) > 1 else []
        why = stack_blocker(preps) if preps else None
        if preps and why is None:
            log.info("seeds %s: one stack of %d", seeds, len(group))
            train_stack(preps, group, progress=progress, callbacks=callbacks, on_done=done)
            continue
        if why:
            log.warning("seed stacking off: %s; seeds %s train one at a time", why, seeds)
        del preps  # their K copies of the data and models, before the seeds train one by one
        for run in group:
            done(_train_alone(cfg.model_copy(update={"seed": run.seed}), run, data, progress, callbacks))
    return outcomes


def _train_alone(
    cfg: TrainConfig, run: SeedRun, data: LabelledData | PairedData, progress: bool, callbacks: Sequence[pl.Callback]
) -> SeedOutcome:
    """One seed by the single-seed path, tagged stack_size 1; a ConfigError is the configuration's
    (raised: one line for the user, as without --seeds), any other error the seed's."""
    history = EpochCount()
    try:
        result = run_training(
            cfg,
            tracker=run.tracker,
            experiment=run.experiment,
            data=data,
            run_name=run.run_name,
            parent_run_id=run.parent_run_id,
            extra_tags={**run.tags, STACK_SIZE_TAG: "1"},
            callbacks=[history, *callbacks],
            progress=progress,
        )
        return SeedOutcome(run.seed, result, epochs=history.epochs)
    except ConfigError:
        raise
    except Exception as err:
        return SeedOutcome(run.seed, None, err, epochs=history.epochs)


class EpochCount(pl.Callback):
    """Epochs validated so far: what a failed seed had trained."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.epochs += 1
