"""Fair hyperparameter tuning: every cell gets its own TPE study with the same trial budget,
pruned on a validation metric, so no variant wins by getting more tuning."""

from __future__ import annotations

import hashlib

import optuna

from siamese_bench.sweep.spec import Cell, StudySpec, TuneSpec


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2)
    return optuna.pruners.NopPruner()


def tune_study_name(spec: StudySpec, cell: Cell) -> str:
    return f"{spec.name}/tune/{cell.id}"


def tune_sampler(spec: StudySpec, cell: Cell) -> optuna.samplers.TPESampler:
    seed = int(hashlib.sha256(tune_study_name(spec, cell).encode()).hexdigest()[:8], 16)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, spec.tune.trials_per_cell))


def suggest(trial: optuna.Trial, tune: TuneSpec) -> dict[str, float]:
    return {name: trial.suggest_float(name, r.low, r.high, log=r.log) for name, r in tune.params.items()}


def best_params(study: optuna.Study) -> dict[str, float] | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value).params if complete else None
