"""Ranking a claim's matching cells: recipe closeness, then seeds, then cell id, whatever the row order."""

from __future__ import annotations

import math

import pandas as pd

from siamese_bench.report.select import RECIPE, best_cell, match, match_columns, rank_cells


def runs(*rows: tuple[object, object, dict[str, str]]) -> pd.DataFrame:
    """(cell, seed, recipe overrides) per run; every recipe column present, as in a loaded study."""
    return pd.DataFrame([{"cell": cell, "seed": seed, **RECIPE, **changed} for cell, seed, changed in rows])


def test_recipe_score_then_seeds_then_cell_id():
    frame = runs(
        ("b", 0, {"param.lr": "0.01"}),  # one recipe value off in every run of b
        ("b", 1, {"param.lr": "0.01"}),
        ("b", 2, {"param.lr": "0.01"}),
        ("c", 0, {}),
        ("a", 0, {}),
        ("a", 1, {"param.lr": "0.01"}),  # a cell's score is its best run's
    )
    ranked = rank_cells(frame)
    assert ranked["cell"].tolist() == ["a", "c", "b"]  # a and c keep the whole recipe; a has two seeds
    assert ranked["score"].tolist() == [len(RECIPE), len(RECIPE), len(RECIPE) - 1]
    assert ranked["n"].tolist() == [2, 1, 3]
    shuffled = rank_cells(frame.sample(frac=1.0, random_state=3).reset_index(drop=True))
    assert shuffled.equals(ranked) and best_cell(frame) == "a"


def test_ties_go_to_the_first_cell_id_and_repeated_seeds_count_once():
    ranked = rank_cells(runs(("z", 0, {}), ("y", 0, {}), ("y", 0, {}), ("z", 1, {}), ("y", 1, {})))
    assert ranked["cell"].tolist() == ["y", "z"] and ranked["n"].tolist() == [2, 2]


def test_runs_without_a_cell_or_seed_are_not_counted():
    frame = runs(("a", 0, {}), (math.nan, 1, {}), ("a", math.nan, {}), ("b", 0, {"param.init": "torch"}))
    ranked = rank_cells(frame)
    assert ranked["cell"].tolist() == ["a", "b"] and ranked["n"].tolist() == [1, 1]


def test_columns_the_study_lacks_score_nothing_and_no_rows_rank_nothing():
    frame = pd.DataFrame({"cell": ["a", "b", "b"], "seed": [0, 0, 1]})
    ranked = rank_cells(frame)
    assert ranked["cell"].tolist() == ["b", "a"] and ranked["score"].tolist() == [0, 0]
    empty = rank_cells(frame.iloc[0:0])
    assert empty.empty and list(empty.columns) == ["cell", "score", "n"] and best_cell(frame.iloc[0:0]) is None


def test_match_columns_are_what_match_reads_present_once():
    frame = pd.DataFrame({"cell": ["a"], "head": ["euclidean"], "factor.lr": ["0.01"], "seed": [0]})
    select = {"head": "euclidean", "lr": "0.01", "loss": "bce"}
    columns = match_columns(frame, select, "seed", "head", "oneshot/acc")
    assert columns == ["head", "factor.lr", "seed"]  # no missing column, none twice
    assert match(frame[columns], {"head": "euclidean", "lr": "0.01"}).equals(
        match(frame, {"head": "euclidean", "lr": "0.01"})[columns]
    )
