"""Which study, cell and data a claim row's evidence comes from (runs made by hand, no training)."""

from __future__ import annotations

import pandas as pd
import pytest

from siamese_bench.report.rules import CONTRADICTED, INCONCLUSIVE, REPRODUCED

EUC = "head=euclidean,loss=contrastive,margin=1"


def test_evidence_does_not_depend_on_the_order_studies_are_listed(fake_run, fake_studies):
    from siamese_bench.report.findings import findings

    # same cell and seeds in both; "tune" ran it with a tuned lr (not the recipe), "ablation" with the recipe
    experiments = {
        "tune": [fake_run(EUC, s, 0.99, start=s, lr="0.005") for s in (0, 1, 2)],
        "ablation": [fake_run(EUC, s, 0.93 + s / 100, start=s) for s in (0, 1, 2)],
    }
    a = findings(fake_studies(experiments, ["tune", "ablation"]))
    b = findings(fake_studies(experiments, ["ablation", "tune"]))
    assert [(f.decided_on.study, f.verdict, f.reason) for f in a] == [
        (f.decided_on.study, f.verdict, f.reason) for f in b
    ]
    assert a[0].decided_on.study == "ablation"  # the recipe's cell wins the seed-count tie
    # recipe wins even against more seeds; a full tie goes to the study name, not the listing order
    experiments["tune"].append(fake_run(EUC, 3, 0.99, start=3, lr="0.005"))
    assert findings(fake_studies(experiments, ["tune", "ablation"]))[0].decided_on.study == "ablation"
    twin = {
        "b": [fake_run(EUC, s, 0.95, start=s) for s in (0, 1)],
        "a": [fake_run(EUC, s, 0.96, start=s) for s in (0, 1)],
    }
    assert {findings(fake_studies(twin, order))[0].decided_on.study for order in (["a", "b"], ["b", "a"])} == {"a"}


def test_a_cell_on_other_data_is_no_evidence_for_an_mnist_claim(fake_run, fake_studies):
    """C4's baseline (euclidean + contrastive, m = 1, on vector pairs) must not decide C1."""
    from siamese_bench.report.findings import findings

    csv_only = {"c4": [fake_run(EUC, s, 0.55, start=s, variant="csv") for s in (0, 1, 2)]}
    assert findings(fake_studies(csv_only, ["c4"])) == []  # C1 not covered at all
    mixed = {**csv_only, "mnist": [fake_run(EUC, s, 0.93 + s / 100, start=s) for s in (0, 1, 2)]}
    (c1,) = findings(fake_studies(mixed, ["c4", "mnist"]))
    assert [e.variant for e in c1.evidence] == ["mnist-5k"] and c1.decided_on.variant == "mnist-5k"
    assert c1.verdict == "inconclusive"  # C1 also needs a full-MNIST run to be reproduced


def test_variant_prefixes():
    from siamese_bench.report.evidence import in_variants

    col = pd.Series(["omniglot-full-35", "omniglot-full-105", "omniglot-small-35", "mnist-5k"])
    assert in_variants(col, ("omniglot-full-*",)).tolist() == [True, True, False, False]
    assert in_variants(col, ("mnist-5k", "omniglot-small-35")).tolist() == [False, False, True, True]


def test_k1_bar_takes_the_best_cell_of_a_lever_study_and_names_the_lever_that_mattered_most(fake_run, fake_studies):
    from siamese_bench.report.findings import findings

    cells = {  # the base design, and one lever changed in each other cell
        "loss=triplet": 0.72,
        "loss=triplet,augment=affine": 0.73,
        "loss=triplet,epochs=10": 0.85,
        "loss=contrastive,margin=1": 0.58,
        "loss=bce,head=abs-diff-dense": 0.40,
    }
    runs = [
        fake_run(
            cell,
            s,
            0.9,
            start=10 * i + s,
            loss=cell.split("loss=")[1].split(",")[0],
            variant="omniglot-full-28",
            params={"encoder": "conv4"},
            metrics={"oneshot/acc": acc + (s - 1) / 100, "oneshot/trials": 400, "oneshot_pixels/acc": 0.215},
        )
        for i, (cell, acc) in enumerate(cells.items())
        for s in (0, 1, 2)
    ]
    found = {f.row.id: f for f in findings(fake_studies({"k1": runs}, ["k1"]))}
    bar = found["K1 bar"]
    assert bar.decided_on.cell == "loss=triplet,epochs=10" and bar.decided_on.oneshot.mean == pytest.approx(0.85)
    assert "against the base cell loss=triplet (72.0 %, n = 3)" in bar.reason
    assert "epochs=10 85.0 % (+13.0, n = 3)" in bar.reason and "augment=affine 73.0 % (+1.0, n = 3)" in bar.reason
    assert "the lever that mattered most: loss=bce, head=abs-diff-dense (-32.0 points)" in bar.reason
    # 84-86 % over 3 seeds, 400 trials each, but the best of 5 cells: tested at 2.5 % / 5, its interval
    # reaches below 70 %; the same numbers from a study of that one cell clear the bar
    assert bar.decided_on.selected_from == 5 and "the best of 5 cells" in bar.reason
    assert bar.verdict == INCONCLUSIVE
    alone = [r for r in runs if r.data.tags["cell"] == "loss=triplet,epochs=10"]
    assert {f.row.id: f for f in findings(fake_studies({"k1": alone}, ["k1"]))}["K1 bar"].verdict == REPRODUCED
    near = [
        fake_run(
            "head=euclidean,loss=triplet",
            s,
            0.9,
            start=s,
            loss="triplet",
            variant="omniglot-full-28",
            metrics={"oneshot/acc": 0.71 + s / 100},
        )
        for s in (0, 1, 2)
    ]
    assert {f.row.id: f for f in findings(fake_studies({"k": near}, ["k"]))}["K1 bar"].verdict == INCONCLUSIVE
    low = [
        fake_run(
            "head=euclidean,loss=triplet",
            s,
            0.9,
            start=s,
            loss="triplet",
            variant="omniglot-full-28",
            metrics={"oneshot/acc": 0.50 + s / 100},
        )
        for s in (0, 1, 2)
    ]
    assert {f.row.id: f for f in findings(fake_studies({"k": low}, ["k"]))}["K1 bar"].verdict == CONTRADICTED
    c6_only = [
        fake_run("head=euclidean,loss=triplet", s, 0.7, start=s, loss="triplet", variant="omniglot-full-28")
        for s in (0, 1, 2)
    ]
    assert "K1 bar" not in {f.row.id for f in findings(fake_studies({"c6": c6_only}, ["c6"]))}  # no one-shot runs
