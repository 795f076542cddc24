"""Figures from studies of hand-made runs: views by data variant, labels, one-shot per run, and losses
with and without a margin, told apart by what their runs say (never by the name "bce")."""

from __future__ import annotations

import math

import pandas as pd
import pytest

EUC = "head=euclidean,loss=contrastive,margin=1"


def test_figures_split_a_study_by_data_variant_and_label_cells_by_what_varies(fake_run, fake_studies):
    from siamese_bench.report.build import by_variant
    from siamese_bench.report.figures import cell_labels

    runs = [
        fake_run("head=euclidean,loss=triplet,triplet_mining=semi-hard", s, 0.9, start=s, variant=v, loss="triplet")
        for s in (0, 1)
        for v in ("japanese-vowels", "mnist-5k-rows")
    ]
    runs += [
        fake_run(
            "head=euclidean,loss=triplet,triplet_mining=random",
            s,
            0.8,
            start=10 + s,
            variant="japanese-vowels",
            loss="triplet",
        )
        for s in (0, 1)
    ]
    (study,) = fake_studies({"seq": runs}, ["seq"])
    views = by_variant(study)
    assert [v.name for v in views] == ["seq on japanese-vowels", "seq on mnist-5k-rows"]
    assert set(views[1].complete["dataset_variant"]) == {"mnist-5k-rows"} and len(views[1].complete) == 2
    labels = cell_labels(views[0].complete)
    assert set(labels) == {"euclidean, semi-hard", "euclidean, random"}
    assert set(cell_labels(views[1].complete)) == {"euclidean"}  # nothing else varies there
    (single,) = fake_studies({"one": [r for r in runs if r.data.tags["dataset_variant"] == "japanese-vowels"]}, ["one"])
    assert by_variant(single) == [single]


def test_oneshot_figure_from_per_run_metrics(fake_run, fake_studies):
    from siamese_bench.report.figures import Palettes
    from siamese_bench.report.figures_oneshot import oneshot_by_run

    per_run = {f"oneshot/run{i:02d}": 0.3 + i / 100 for i in range(1, 21)}
    pixels = {f"oneshot_pixels/run{i:02d}": 0.2 for i in range(1, 21)}
    runs = [
        fake_run(
            "head=abs-diff-dense,loss=bce",
            s,
            0.9,
            start=s,
            variant="omniglot-full-35",
            loss="bce",
            metrics={**per_run, **pixels, "oneshot/acc": 0.4, "oneshot_pixels/acc": 0.2},
        )
        for s in (0, 1)
    ]
    studies = fake_studies({"k1": runs}, ["k1"])
    plot = oneshot_by_run(studies, Palettes.of(studies), 1)
    assert plot is not None and "92 %" in plot.caption
    ax = plot.figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["01", "02"]
    other = fake_studies({"c1": [fake_run(EUC, 0, 0.9, start=0)]}, ["c1"])
    assert oneshot_by_run(other, Palettes.of(studies), 1) is None


PAIRS = {"loss_uses_margin": "true", "objective": "pairs"}
NO_MARGIN = {"loss_uses_margin": "false", "objective": "pairs"}
TRIPLETS = {"loss_uses_margin": "true", "objective": "triplets"}
HEADS = ("abs-diff-dense", "subtract-dense")


def _grid(fake_run, no_margin_losses: tuple[str, ...], tagged: bool = True) -> list:
    """Two heads x (contrastive at margins 0.5, 1, 2; each loss without a margin; triplet at 1), 2 seeds."""
    cells = [
        (f"head={h},loss=contrastive,margin={m}", "contrastive", m, PAIRS) for h in HEADS for m in ("0.5", "1", "2")
    ]
    cells += [(f"head={h},loss={x},margin=1", x, "None", NO_MARGIN) for h in HEADS for x in no_margin_losses]
    cells += [(f"head={h},loss=triplet,margin=1", "triplet", "1", TRIPLETS) for h in HEADS]
    runs = []
    for trial, (cell, loss, margin, tags) in enumerate(cells):
        runs += [
            fake_run(
                cell,
                s,
                0.8 + s / 100,
                start=2 * trial + s,
                loss=loss,
                margin=margin,
                tags={**(tags if tagged else {}), "optuna_trial": str(2 * trial + s)},
            )
            for s in (0, 1)
        ]
    return runs


def _history(study) -> pd.DataFrame:
    rows = [
        (r.run_id, r.cell, r.seed, metric, epoch, 0.5 + epoch / 10)
        for r in study.complete.itertuples(index=False)
        for metric in ("val/auc", "train/loss")
        for epoch in (0, 1)
    ]
    return pd.DataFrame(rows, columns=["run_id", "cell", "seed", "metric", "epoch", "value"])


def _titles(plot) -> list[str]:
    return [ax.get_title(loc="left") for ax in plot.figure.axes if ax.get_title(loc="left")]


def test_a_loss_without_a_margin_is_drawn_as_bce_whatever_its_name(fake_run, fake_studies):
    """What a run says of its loss decides (tag loss_uses_margin, a NaN margin), never the name "bce"."""
    from siamese_bench.report.figures import KIND_COLOURS, Palettes, cell_title, loss_order
    from siamese_bench.report.figures_curves import curves
    from siamese_bench.report.figures_grid import accuracy_by_head, accuracy_by_margin

    (study,) = fake_studies({"mine": _grid(fake_run, ("my-loss",))}, ["mine"])
    pal = Palettes.of([study])
    assert loss_order(study.complete) == ["contrastive", "my-loss", "triplet"]  # where bce would be
    assert pal.losses["my-loss"] == KIND_COLOURS[("pairs", False)]  # bce's colour, bce being absent
    margin = accuracy_by_margin(study, pal, 1)
    assert margin is not None and all(t.startswith("contrastive: ") for t in _titles(margin))  # no my-loss panel
    assert [t.get_text() for t in margin.figure.axes[0].get_xticklabels()] == ["0.5", "1", "2"]
    head = accuracy_by_head(study, pal, 1)
    legend = [t.get_text() for t in head.figure.axes[0].get_legend().get_texts()]
    assert legend == ["contrastive", "my-loss", "triplet"] and "margin 1 (my-loss has no margin)" in head.caption
    plot = curves(study, _history(study), "val/auc", pal, 1)
    assert [t.get_text() for t in plot.figure.legends[0].get_texts()] == ["0.5", "1", "2", "–"]
    assert _titles(plot)[:3] == ["abs-diff-dense + contrastive", "abs-diff-dense + my-loss", "abs-diff-dense + triplet"]
    assert cell_title("abs-diff-dense", "my-loss", math.nan) == "abs-diff-dense + my-loss"
    assert cell_title("euclidean", "contrastive", 1.0) == "euclidean + contrastive, m=1"
    (both,) = fake_studies({"both": _grid(fake_run, ("bce", "my-loss"))}, ["both"])
    pal = Palettes.of([both])
    assert loss_order(both.complete) == ["contrastive", "bce", "my-loss", "triplet"]
    assert pal.losses["bce"] == KIND_COLOURS[("pairs", False)] and pal.losses["my-loss"] not in KIND_COLOURS.values()
    assert "(bce and my-loss have no margin)" in accuracy_by_head(both, pal, 1).caption


def test_runs_without_the_loss_tags_still_draw_and_a_missing_margin_still_means_none(fake_run, fake_studies):
    """Runs from before the tags: a loss that recorded no margin takes none."""
    from siamese_bench.report.figures import Palettes
    from siamese_bench.report.figures_curves import curves
    from siamese_bench.report.figures_grid import accuracy_by_head, accuracy_by_margin

    (study,) = fake_studies({"old": _grid(fake_run, ("bce",), tagged=False)}, ["old"])
    assert not study.runs["loss_uses_margin"][study.runs["loss"] == "bce"].any()
    assert (study.runs["objective"] == "").all()
    pal = Palettes.of([study])
    assert set(pal.losses) == {"contrastive", "bce", "triplet"}
    margin = accuracy_by_margin(study, pal, 1)
    assert {t.split(":")[0] for t in _titles(margin)} == {"contrastive"}  # bce has none, triplet ran at one
    assert [t.get_text() for t in margin.figure.axes[0].get_xticklabels()] == ["0.5", "1", "2"]
    head = accuracy_by_head(study, pal, 1)
    assert "bce" in [t.get_text() for t in head.figure.axes[0].get_legend().get_texts()]
    assert "margin 1 (bce has no margin)" in head.caption
    for metric in ("val/auc", "train/loss"):
        plot = curves(study, _history(study), metric, pal, 1)
        assert [t.get_text() for t in plot.figure.legends[0].get_texts()] == ["0.5", "1", "2", "–"]


def test_forest_plots_fit_any_design_and_grids_only_factorial_ones(fake_run, fake_studies):
    """Issue 21: the K1 lever study drew 2 of its 8 cells in a head x loss grid and 16 panels said
    'not in the study'. A lever study is not a grid: it gets a forest plot of what its rows compare
    and each lever's effect against the base cell."""
    from siamese_bench.report.figures_forest import forest, lever_lines, levers
    from siamese_bench.report.findings import findings

    cells = {"loss=triplet": 0.72, "loss=triplet,epochs=10": 0.76, "loss=bce,head=abs-diff-dense": 0.40}
    runs = [
        fake_run(
            cell,
            s,
            0.9,
            start=10 * i + s,
            loss=cell.split("loss=")[1].split(",")[0],
            variant="omniglot-full-28",
            params={"encoder": "conv4"},
            metrics={"oneshot/acc": acc + (s - 1) / 100 + s * i / 1000, "oneshot/trials": 400},
        )
        for i, (cell, acc) in enumerate(cells.items())
        for s in (0, 1, 2)
    ]
    (lever_study,) = fake_studies({"k1": runs}, ["k1"])
    assert not lever_study.is_grid
    lines = lever_lines(lever_study, "omniglot-full-28")
    assert [ln.label for ln in lines] == ["epochs=10", "loss=bce, head=abs-diff-dense"]
    assert lines[0].estimate.mean == pytest.approx(4.0 + 0.1, abs=0.2) and lines[1].estimate.mean < -30
    found = findings([lever_study])
    assert forest(found, 1, 0.95) is not None and levers(found, [lever_study], 2) is not None
    grid = [
        fake_run(f"head={h},loss=contrastive,margin=1", s, 0.9, start=s) for h in ("euclidean", "l1") for s in (0, 1)
    ]
    assert fake_studies({"g": grid}, ["g"])[0].is_grid
