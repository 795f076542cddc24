"""The per-cell results table and its note; a loss without a margin shows none, whatever its name."""

from __future__ import annotations

import pandas as pd


def test_best_cell_marks_every_displayed_tie(fake_run, fake_studies):
    from siamese_bench.report.results import results_table

    heads = {"euclidean": 0.99701, "subtract-dense": 0.99699, "abs-diff-dense": 0.5}
    runs = [fake_run(f"head={h},loss=contrastive,margin=1", s, a, start=s) for h, a in heads.items() for s in (0, 1)]
    table = results_table(fake_studies({"s": runs}, ["s"])[0], 1)
    auc = {i for i, col in table.best if col == "ROC AUC"}
    assert auc == {0, 1} and list(table.view["ROC AUC"][:2]) == ["0.997 ± 0.000"] * 2
    acc = {i for i, col in table.best if col.startswith("test acc % (d")}
    assert acc == {0, 1}  # 99.70 both


def test_results_table_names_collapsed_runs_and_shows_one_shot(fake_run, fake_studies):
    from siamese_bench.report.results import results_table

    runs = [
        fake_run(
            "head=euclidean,loss=triplet,mining=batch-hard",
            s,
            0.5,
            start=s,
            loss="triplet",
            metrics={"collapsed": float(s < 2)},
        )
        for s in (0, 1, 2)
    ]
    runs += [
        fake_run(
            "head=euclidean,loss=triplet,mining=random",
            s,
            0.9,
            start=10 + s,
            loss="triplet",
            metrics={"collapsed": 0.0},
        )
        for s in (0, 1, 2)
    ]
    (study,) = fake_studies({"m": runs}, ["m"])
    view = results_table(study, 1).view
    assert list(view["collapsed"]) == ["2 of 3", ""] and "20-way one-shot %" not in view
    k1 = [
        fake_run(
            "head=abs-diff-dense,loss=bce",
            s,
            0.9,
            start=s,
            loss="bce",
            variant="omniglot-full-28",
            metrics={"oneshot/acc": 0.3 + s / 100},
        )
        for s in (0, 1)
    ]
    (study,) = fake_studies({"k1": k1}, ["k1"])
    view = results_table(study, 1).view
    assert list(view["20-way one-shot %"]) == ["30.50 ± 0.71"] and "collapsed" not in view


def test_results_note_names_cells_that_auc_and_map_at_r_rank_differently():
    from siamese_bench.report.results import disagreements

    summary = pd.DataFrame(
        {
            "cell": ["a", "b", "c"],
            "dataset_variant": ["v"] * 3,
            "test/auc mean": [0.95, 0.90, 0.80],
            "retrieval/map_at_r mean": [0.40, 0.60, 0.20],
            "retrieval/map_at_r n": [3, 3, 3],
        }
    )
    text = disagreements(summary, "test/auc", "retrieval/map_at_r")
    assert "disagree on 1 pair of cells: a over b by AUC, the reverse by MAP@R" in text
    summary["retrieval/map_at_r mean"] = [0.6, 0.4, 0.2]
    assert disagreements(summary, "test/auc", "retrieval/map_at_r") == "AUC and MAP@R rank the cells the same way."


def test_results_show_no_margin_for_a_loss_without_one_whatever_its_name(fake_run, fake_studies):
    from siamese_bench.report.results import cell_summary, results_table

    no = {"loss_uses_margin": "false", "objective": "pairs"}
    runs = [
        fake_run("head=abs-diff-dense,loss=my-loss,margin=1", s, 0.9, start=s, loss="my-loss", margin="None", tags=no)
        for s in (0, 1)
    ]
    runs += [
        fake_run(
            "head=abs-diff-dense,loss=contrastive,margin=1",
            s,
            0.8,
            start=10 + s,
            tags={"loss_uses_margin": "true", "objective": "pairs"},
        )
        for s in (0, 1)
    ]
    runs += [
        fake_run("head=abs-diff-dense,loss=bce,margin=1", s, 0.85, start=20 + s, loss="bce", margin="None")
        for s in (0, 1)
    ]  # untagged, as runs from before the tags
    (study,) = fake_studies({"s": runs}, ["s"])
    view = results_table(study, 1).view.assign(cell=study.cells).set_index("cell")
    assert view["margin"].to_dict() == {
        "head=abs-diff-dense,loss=my-loss,margin=1": "–",
        "head=abs-diff-dense,loss=contrastive,margin=1": "1",
        "head=abs-diff-dense,loss=bce,margin=1": "–",
    }
    assert list(cell_summary(study)["loss_uses_margin"]) == [False, True, False]
