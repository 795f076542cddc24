"""The pairwise comparisons table: within one study and one data variant, seeds paired."""

from __future__ import annotations

import pytest

SUB = "head=subtract-dense,loss=contrastive,margin=1"
ABS = "head=abs-diff-dense,loss=contrastive,margin=1"


def test_data_variants_are_kept_apart_in_dedup_results_and_comparisons(fake_run, fake_studies):
    from siamese_bench.report.comparisons import comparisons_table
    from siamese_bench.report.results import cell_summary

    runs = []
    for s in (0, 1, 2):
        runs += [
            fake_run(ABS, s, 0.95, start=s, variant="mnist-5k"),
            fake_run(SUB, s, 0.50, start=s, variant="mnist-5k"),
            fake_run(ABS, s, 0.99, start=10 + s, variant="mnist-full"),
        ]
    runs.append(fake_run(SUB, 0, 0.6, start=20, variant="mnist-full"))
    study = fake_studies({"s": runs}, ["s"])[0]
    assert len(study.complete) == 10  # the same cell x seed on two variants is two runs, not one
    summary = cell_summary(study).set_index(["cell", "dataset_variant"])
    assert summary.loc[(ABS, "mnist-full"), "n"] == 3 and summary.loc[(ABS, "mnist-5k"), "n"] == 3
    assert summary.loc[(ABS, "mnist-full"), "test/acc mean"] == pytest.approx(0.99)
    assert summary.loc[(ABS, "mnist-5k"), "test/acc mean"] == pytest.approx(0.95)
    comp = comparisons_table(study, 1).data
    assert set(comp["dataset_variant"]) == {"mnist-full", "mnist-5k"}
    full = comp[(comp["dataset_variant"] == "mnist-full") & (comp["metric"] == "test/acc_tuned")].iloc[0]
    assert full["n_paired_seeds"] == 1 and full["mean_a"] == pytest.approx(0.6)  # seed 0 on full only
    five = comp[(comp["dataset_variant"] == "mnist-5k") & (comp["metric"] == "test/acc_tuned")].iloc[0]
    assert five["n_paired_seeds"] == 3 and five["mean_b"] == pytest.approx(0.95)
