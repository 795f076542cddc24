"""Selecting a study's runs: rows matching a claim's settings, and cells ranked by their seeds' results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from siamese_bench.core.recipe import RECIPE as RECIPE_VALUES

RECIPE = {f"param.{k}": str(v) for k, v in RECIPE_VALUES.items() if k != "epochs"}


def match(frame: pd.DataFrame, select: dict[str, Any]) -> pd.DataFrame:
    """Rows whose head, loss, margin ... equal `select` (margin compared as a number); any other
    training option is read from the cell's factor tags; a key no run has matches nothing."""
    if frame.empty:
        return frame
    keep = pd.Series(True, index=frame.index)
    for key, value in select.items():
        if key not in frame and f"factor.{key}" in frame:  # a study factor that is not a column (decide's cells)
            key = f"factor.{key}"
        if key not in frame:
            return frame.iloc[0:0]
        if key == "margin":
            keep &= np.isclose(frame["margin"].astype(float), float(value))
        else:
            keep &= frame[key].astype(str) == str(value)
    return frame[keep]


def match_columns(frame: pd.DataFrame, select: dict[str, Any], *also: str) -> list[str]:
    """The columns of `frame` that match(frame, select) reads, then `also`: a caller that filters
    only these filters a narrow copy, many times cheaper than the whole runs frame."""
    wanted = [*select, *(f"factor.{k}" for k in select), *also]
    return [c for c in dict.fromkeys(wanted) if c in frame]


def rank_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """Matching cells, best first: closest to the recipe (score = recipe values kept), then most
    seeds, then by cell id (so the order of the rows never decides). Columns cell, score, n.
    Plain Python over the few rows a claim matches: a report ranks cells hundreds of times, and
    a pandas groupby costs ten times as much per call."""
    if rows.empty:
        return pd.DataFrame({"cell": pd.Series(dtype=str), "score": pd.Series(dtype=int), "n": pd.Series(dtype=int)})
    kept = [rows[k].astype(str).to_numpy() == v for k, v in RECIPE.items() if k in rows]
    scores = sum(k.astype(int) for k in kept) if kept else np.zeros(len(rows), dtype=int)
    best: dict[str, int] = {}
    seeds: dict[str, set[Any]] = {}
    for cell, score, seed in zip(rows["cell"].tolist(), scores.tolist(), rows["seed"].tolist(), strict=True):
        if pd.isna(cell):  # as groupby: a run without a cell is in no cell
            continue
        best[cell] = max(best.get(cell, score), score)
        seeds.setdefault(cell, set())
        if not pd.isna(seed):
            seeds[cell].add(seed)
    order = sorted(best, key=lambda c: (-best[c], -len(seeds[c]), str(c)))
    return pd.DataFrame(
        {
            "cell": pd.Series([str(c) for c in order], dtype=str),
            "score": pd.Series([int(best[c]) for c in order], dtype=int),
            "n": pd.Series([len(seeds[c]) for c in order], dtype=int),
        }
    )


def best_cell(rows: pd.DataFrame) -> str | None:
    """Of several matching cells, the one closest to the recipe, then with the most seeds."""
    ranked = rank_cells(rows)
    return None if ranked.empty else str(ranked["cell"].iloc[0])
