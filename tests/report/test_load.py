"""Studies read back from MLflow-like runs: reruns, tuning runs, margins and the loss's tags."""

from __future__ import annotations

import numpy as np

EUC = "head=euclidean,loss=contrastive,margin=1"


def test_rerun_after_a_killed_run_counts_once_and_tune_runs_are_left_out(fake_run, fake_studies):
    from siamese_bench.report.findings import findings

    runs = [
        fake_run(EUC, 0, 0.50, start=1, status="KILLED", state="FAIL"),
        fake_run(EUC, 0, 0.95, start=2),
        fake_run(EUC, 1, 0.96, start=3),
        fake_run(EUC, 1, 0.40, start=4, status="FAILED", state="FAIL"),
        fake_run(EUC, 0, 0.10, start=5, phase="tune"),
        fake_run(EUC, 7, 0.10, start=6, phase="tune"),
    ]
    study = fake_studies({"s": runs}, ["s"])[0]
    assert study.tune_runs == 2 and len(study.runs) == 4 and 7 not in study.seeds
    done = study.complete
    assert sorted(done["seed"]) == [0, 1] and sorted(done["test/acc"]) == [0.95, 0.96]
    found = findings([study])[0]
    assert found.decided_on.acc.n == 2 and found.failed_runs == 0 and "not counted" not in found.reason


def test_complete_is_computed_once_per_runs_frame_and_callers_cannot_change_it(fake_run, fake_studies):
    import dataclasses

    runs = [fake_run(EUC, 0, 0.95, start=1), fake_run(EUC, 1, 0.96, start=2)]
    study = fake_studies({"s": runs}, ["s"])[0]
    first = study.complete
    first["test/acc"] = 0.0  # a caller's own column edit stays in its own frame
    first.drop(first.index, inplace=True)
    assert sorted(study.complete["test/acc"]) == [0.95, 0.96]
    study.runs = study.runs[study.runs["seed"] == 0]  # a new runs frame: computed again
    assert list(study.complete["seed"]) == [0]
    view = dataclasses.replace(study, runs=study.runs.iloc[0:0])  # a copy does not inherit the cache
    assert view.complete.empty and len(study.complete) == 1


def test_margin_params_none_and_decimal_parse(fake_run, fake_studies):
    runs = [
        fake_run(EUC, 0, 0.9, start=0, margin="1.0"),
        fake_run("head=euclidean,loss=bce,margin=1", 0, 0.9, start=1, margin="None"),
        fake_run("head=x,loss=contrastive,margin=1", 0, 0.9, start=2, margin=None),
    ]
    frame = fake_studies({"s": runs}, ["s"])[0].runs.set_index("cell")
    assert frame.loc[EUC, "margin"] == 1.0
    assert np.isnan(frame.loc["head=euclidean,loss=bce,margin=1", "margin"])
    assert np.isnan(frame.loc["head=x,loss=contrastive,margin=1", "margin"])


def test_the_run_says_whether_its_loss_takes_a_margin_and_untagged_runs_fall_back_to_the_margin(fake_run, fake_studies):
    """A loss's margin is what its run says (tag loss_uses_margin), not its name; runs from before
    the tag: whether a margin was recorded (training records None for a loss without one)."""
    no, pairs = {"loss_uses_margin": "false", "objective": "pairs"}, {"loss_uses_margin": "true", "objective": "pairs"}
    runs = [
        fake_run(EUC, 0, 0.9, start=0, tags=pairs),
        fake_run("head=x,loss=my-loss,margin=1", 0, 0.9, start=1, loss="my-loss", margin="None", tags=no),
        fake_run("head=y,loss=my-loss,margin=2", 0, 0.9, start=2, loss="my-loss", margin="2", tags=no),
        fake_run(
            "head=x,loss=triplet,margin=1",
            0,
            0.9,
            start=3,
            loss="triplet",
            tags={"loss_uses_margin": "true", "objective": "triplets"},
        ),
        fake_run("head=x,loss=bce,margin=1", 0, 0.9, start=4, loss="bce", margin="None"),  # untagged (older)
        fake_run("head=y,loss=contrastive,margin=2", 0, 0.9, start=5, margin="2"),
    ]
    frame = fake_studies({"s": runs}, ["s"])[0].runs.set_index("cell")
    uses = frame["loss_uses_margin"].to_dict()
    assert uses == {
        EUC: True,
        "head=x,loss=my-loss,margin=1": False,
        "head=y,loss=my-loss,margin=2": False,
        "head=x,loss=triplet,margin=1": True,
        "head=x,loss=bce,margin=1": False,
        "head=y,loss=contrastive,margin=2": True,
    }
    assert np.isnan(frame.loc["head=y,loss=my-loss,margin=2", "margin"])  # the tag wins over a stray margin
    assert frame.loc["head=y,loss=contrastive,margin=2", "margin"] == 2.0
    assert frame["objective"].to_dict() == {
        EUC: "pairs",
        "head=x,loss=my-loss,margin=1": "pairs",
        "head=y,loss=my-loss,margin=2": "pairs",
        "head=x,loss=triplet,margin=1": "triplets",
        "head=x,loss=bce,margin=1": "",
        "head=y,loss=contrastive,margin=2": "",
    }
    empty = fake_studies({"e": []}, ["e"])[0].runs
    assert {"loss_uses_margin", "objective", "margin"} <= set(empty.columns)
