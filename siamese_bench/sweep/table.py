"""Per-cell results of a grid study as a pandas table (mean and spread over seeds)."""

from __future__ import annotations

from typing import cast

import optuna
import pandas as pd
from optuna.trial import TrialState

METRICS = ("test/acc", "test/acc_tuned", "test/auc", "train_eval/acc")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per COMPLETE trial: cell, factor values, seed and final metrics."""
    rows = [dict(t.user_attrs, trial=t.number) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return pd.DataFrame(rows)


def cell_table(frame: pd.DataFrame, factors: list[str], metrics=METRICS) -> pd.DataFrame:
    """Mean, standard deviation and count over seeds for each cell."""
    if frame.empty:
        return pd.DataFrame()
    present = [m for m in metrics if m in frame]
    frame = frame.assign(**{f: frame[f] if f in frame else "" for f in factors})  # keys some cells lack
    grouped = frame.groupby(factors, dropna=False, sort=False)[present]
    table = grouped.agg(["mean", "std", "count"])
    columns = cast(pd.MultiIndex, table.columns)  # (metric, stat); pandas-stubs types every columns as Index[str]
    table.columns = [f"{m} {stat}" for m, stat in columns]
    return table.reset_index()


def _factor_text(value) -> str:
    """Factor values as a reader writes them: '–' where a cell does not set the factor."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_cell_table(table: pd.DataFrame, factors: list[str]) -> str:
    """Accuracy as percent, 'mean ± sd (n)'."""
    if table.empty:
        return "(no finished trials)"
    out = table[factors].map(_factor_text)
    for metric in METRICS:
        if f"{metric} mean" in table:
            mean, sd, n = table[f"{metric} mean"], table[f"{metric} std"].fillna(0), table[f"{metric} count"]
            scale = 1 if metric.endswith("auc") else 100
            out[metric] = [f"{m * scale:.2f} ± {s * scale:.2f} ({int(k)})" for m, s, k in zip(mean, sd, n, strict=True)]
    return out.to_string(index=False)
