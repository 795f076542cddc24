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
    assert spec.tune is not None, "a tuning study belongs to a spec with a tune section"
    seed = int(hashlib.sha256(tune_study_name(spec, cell).encode()).hexdigest()[:8], 16)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, spec.tune.trials_per_cell))


def open_tuning_study(spec: StudySpec, cell: Cell, storage: optuna.storages.BaseStorage) -> optuna.Study:
    assert spec.tune is not None, "a tuning study belongs to a spec with a tune section"
    return optuna.create_study(
        study_name=tune_study_name(spec, cell),
        storage=storage,
        direction="maximize",
        sampler=tune_sampler(spec, cell),
        pruner=make_pruner(spec.tune.pruner),
        load_if_exists=True,
    )


def suggest(trial: optuna.Trial, tune: TuneSpec) -> dict[str, float]:
    return {name: trial.suggest_float(name, r.low, r.high, log=r.log) for name, r in tune.params.items()}


def _value(trial: optuna.trial.FrozenTrial) -> float:
    assert trial.value is not None, "a COMPLETE trial of a single-objective study has its value"
    return trial.value


def best_params(study: optuna.Study) -> dict[str, float] | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(complete, key=_value).params if complete else None


def epochs_spent(study: optuna.Study, epochs: int) -> tuple[int, int]:
    """(epochs run, epochs budgeted) over a cell's finished tuning trials: what pruning saved."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    return sum(t.user_attrs.get("epochs_run", 0) for t in trials), len(trials) * epochs
