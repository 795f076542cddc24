"""Several seeds of one configuration: in stacks of K where they can stack, else one at a time.

`run_seeds` is what `train --seeds` calls: it prepares each seed as `run_training` would,
groups them into stacks of `stack_size` (the measured rule of `default_stack_size` unless
given), probes each stack once (`stack_blocker`) and trains it as one batched model, or its
seeds one by one with one line saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


@dataclass
class SeedOutcome:
    """One seed of a stack: its result, or what stopped it (the others went on)."""

    seed: int
    result: RunResult | None
    error: BaseException | None = None


def train_stack(
    preps: Sequence[PreparedRun],
    *,
    tracker: RunTracker | None = None,
    experiment: str,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    progress: bool = True,
    on_done: Callable[[SeedOutcome], None] | None = None,
) -> list[SeedOutcome]:
    """Train `preps` (one cell's seeds, prepared) as one stack; each seed its own tracked run,
    ended FINISHED, FAILED (diverged) or KILLED/FAILED with the stack."""
    started = time.perf_counter()
    tags = {**(extra_tags or {}), STACK_SIZE_TAG: str(len(preps))}
    states = [SeedState(p) for p in preps]
    cfg = preps[0].cfg
    ended: set[int] = set()
    outcomes: list[SeedOutcome] = []
    try:  # from the first run started on: none is left RUNNING by this process
        for state in states:
            state.run_id = start_tracking(state.prep, tracker, experiment, run_name, parent_run_id, tags)
        pl.seed_everything(cfg.seed, verbose=False)  # the stack's dropout masks: fixed by its first seed
        module = StackedModule(states, tracker)
        loader = StepGroups(StackedBatches([p.batches["train"] for p in preps]), STEP_GROUP)  # type: ignore[arg-type]
        trainer = make_trainer(cfg, [], progress, len(loader))
        with matmul_precision(cfg.matmul_precision):
            trainer.fit(module, train_dataloaders=loader)
        module.finish_states()
        fit_seconds = time.perf_counter() - started
        for k, state in enumerate(states):
            outcome = _finish_seed(state, fit_seconds / len(states), tracker, run_name)
            ended.add(k)
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    except BaseException as err:
        status = failed_status(err)
        for k, state in enumerate(states):
            if k not in ended and tracker and state.run_id:
                tracker.set_tags(state.run_id, fail_reason(err))
                tracker.end_run(state.run_id, status)
        raise
    return outcomes


def _finish_seed(state: SeedState, fit_seconds: float, tracker: RunTracker | None, run_name: str | None) -> SeedOutcome:
    """Test, evaluate and record one stacked seed; its run ended whatever happens. `seconds`
    is its share of the stack's fitting plus its own evaluation."""
    prep, run_id = state.prep, state.run_id
    status = "FAILED"
    try:
        if state.error is not None:
            raise state.error
        started = time.perf_counter() - fit_seconds
        tester = make_trainer(prep.cfg, [], False, 1)
        result = finish_run(prep, tester, state.history, state.steps, started, tracker, run_id, run_name)
        status = "FINISHED"
        return SeedOutcome(prep.cfg.seed, result)
    except Exception as err:
        if tracker and run_id:
            tracker.set_tags(run_id, fail_reason(err))
        return SeedOutcome(prep.cfg.seed, None, err)
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


def cpu_stacks(cfg: TrainConfig) -> bool:
    """The cells that ran at least 0.95x as fast stacked as sequential on 2 CPU cores."""
    return cfg.encoder == "mlp" and cfg.batch_size <= 128


def run_seeds(
    cfg: TrainConfig,
    seeds: Sequence[int],
    *,
    stack_size: int | None = None,
    tracker: RunTracker | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    data: LabelledData | PairedData | None = None,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    extra_tags: dict[str, str] | None = None,
    progress: bool = True,
    accelerator: str = "cpu",
    on_done: Callable[[SeedOutcome], None] | None = None,
) -> list[SeedOutcome]:
    """Each seed of `cfg` trained and recorded once, in stacks of `stack_size` seeds; the
    outcomes in seed order. A seed that diverges or fails does not stop the others; an error of
    a stack's fitting itself (or Ctrl-C) ends its seeds' runs FAILED (KILLED) and is raised."""
    if stack_size is not None and stack_size < 1:
        raise ConfigError(f"--stack-seeds {stack_size}: expected 1 or more")
    data = data or load_dataset(cfg.dataset)
    size = stack_size or default_stack_size(cfg, len(seeds), accelerator)
    outcomes: list[SeedOutcome] = []

    def done(outcome: SeedOutcome) -> None:
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    for start in range(0, len(seeds), size):
        group = list(seeds[start : start + size])
        preps = [prepare_run(cfg.model_copy(update={"seed": s}), data) for s in group] if len(group) > 1 else []
        why = stack_blocker(preps) if preps else None
        if preps and why is None:
            log.info("seeds %s: one stack of %d", ",".join(map(str, group)), len(group))
            train_stack(
                preps,
                tracker=tracker,
                experiment=experiment,
                run_name=run_name,
                parent_run_id=parent_run_id,
                extra_tags=extra_tags,
                progress=progress,
                on_done=done,
            )
            continue
        if why:
            log.warning("seed stacking off: %s; seeds %s train one at a time", why, ",".join(map(str, group)))
        del preps  # their K copies of the data and models, before the seeds train one by one
        for seed in group:
            try:
                result = run_training(
                    cfg.model_copy(update={"seed": seed}),
                    tracker=tracker,
                    experiment=experiment,
                    data=data,
                    run_name=run_name,
                    parent_run_id=parent_run_id,
                    extra_tags={**(extra_tags or {}), STACK_SIZE_TAG: "1"},
                    progress=progress,
                )
                done(SeedOutcome(seed, result))
            except ConfigError:  # the configuration, not the seed: one line for the user, as without --seeds
                raise
            except Exception as err:
                done(SeedOutcome(seed, None, err))
    return outcomes
