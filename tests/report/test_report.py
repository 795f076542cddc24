"""The report: verdict rules on hand-made evidence (fast), and end-to-end reports built from a
small real study (slow): PDF sections and pages, CSV/MD/PNG files, missing and failed runs,
unknown studies and stores."""

from __future__ import annotations

import argparse
import math
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siamese_bench.core.errors import ConfigError
from siamese_bench.report.claims import CLAIMS
from siamese_bench.report.evidence import Evidence
from siamese_bench.report.findings import judge
from siamese_bench.report.rules import CONTRADICTED, INCONCLUSIVE, REPRODUCED, VERDICTS, rule_text
from siamese_bench.report.stats import paired_comparison, t_interval

STUDY = "report-tiny"
SPEC = f"""
    name: {STUDY}
    base: {{dataset: digits, epochs: 2}}
    factors:
      head: [euclidean, subtract-dense, abs-diff-dense]
      loss: [contrastive]
      margin: [1]
    seeds: [0, 1]
"""
CELL = "head={},loss=contrastive,margin=1"
SECTIONS = ("Findings", "Results by cell", "Pairwise comparisons", "Figures", "Provenance", "Missing or failed runs",
            "Hardware and software")


# -- statistics and rules on hand-made numbers ----------------------------------------------------

def test_t_interval_matches_hand_computation():
    iv = t_interval([0.90, 0.92, 0.94])
    # mean 0.92, sd 0.02, t(0.975, 2) = 4.302653 -> half width 0.0496824
    assert iv.mean == pytest.approx(0.92) and iv.sd == pytest.approx(0.02)
    assert (iv.lo, iv.hi) == pytest.approx((0.92 - 0.0496824, 0.92 + 0.0496824), abs=1e-6)
    one = t_interval([0.5])
    assert one.n == 1 and not one.has_interval and "no interval" in one.text()
    assert t_interval([0.2, 0.99], bounds=(0, 1)).hi == 1.0


def test_paired_comparison_pairs_by_seed_and_refuses_to_read_two_seeds():
    a = {2: 0.51, 0: 0.50, 1: 0.52}  # inserted in another order than b: pairing is by seed
    b = {7: 0.1, 1: 0.93, 0: 0.90, 2: 0.91}  # seed 7 has no partner: ignored
    p = paired_comparison(a, b)
    assert p.n == 3 and p.diff.mean == pytest.approx(np.mean([0.40, 0.41, 0.40]))
    assert p.diff.sd == pytest.approx(np.std([0.40, 0.41, 0.40], ddof=1))  # same pairs as sorted input
    assert (p.mean_a, p.mean_b) == pytest.approx((0.51, np.mean([0.90, 0.93, 0.91])))
    assert p.diff.lo > 0 and p.p < 0.05 and "higher" in p.reading("A", "B")
    few = paired_comparison({0: 0.5, 1: 0.6}, {0: 0.9, 1: 0.8})
    assert few.n == 2 and "too few seeds" in few.reading("A", "B")


def _evidence(variant: str, acc: list[float], auc: list[float]) -> Evidence:
    runs = pd.DataFrame({"seed": range(len(acc))})
    return Evidence("s", variant, "c", 20, runs, t_interval(acc), t_interval(auc), t_interval(acc))


RULE_OF = {row.id: row for row in CLAIMS}


FIVE_K_WORKS = [0.93, 0.94, 0.935]


@pytest.mark.parametrize(("claim", "evidence", "verdict"), [
    ("C1", [_evidence("mnist-full", [0.972, 0.975, 0.974], [0.99] * 3),
            _evidence("mnist-5k", FIVE_K_WORKS, [0.98] * 3)], REPRODUCED),  # full MNIST CI inside 97.42 +- 1.5
    ("C1", [_evidence("mnist-full", [0.973], [0.99]), _evidence("mnist-5k", FIVE_K_WORKS, [0.98] * 3)],
     INCONCLUSIVE),  # one full-MNIST seed is consistent, but cannot reproduce
    ("C1", [_evidence("mnist-full", [0.95, 0.951, 0.949], [0.99] * 3),
            _evidence("mnist-5k", FIVE_K_WORKS, [0.98] * 3)], CONTRADICTED),  # works; full MNIST wholly below
    ("C1", [_evidence("mnist-full", [0.95], [0.99]), _evidence("mnist-5k", FIVE_K_WORKS, [0.98] * 3)],
     INCONCLUSIVE),  # one far seed cannot contradict either
    ("C1", [_evidence("mnist-5k", FIVE_K_WORKS, [0.98] * 3)], INCONCLUSIVE),  # no full-MNIST run
    ("C1", [_evidence("mnist-full", [0.974], [0.99])], INCONCLUSIVE),  # one seed: no interval
    ("C1", [_evidence("mnist-5k", [0.60, 0.62, 0.61], [0.7] * 3)], CONTRADICTED),
    ("C2", [_evidence("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], REPRODUCED),
    ("C2", [_evidence("mnist-5k", [0.80, 0.82, 0.81], [0.90, 0.91, 0.92])], CONTRADICTED),
    ("C2", [_evidence("mnist-5k", [0.20, 0.22, 0.21], [0.30, 0.31, 0.29])], CONTRADICTED),  # inverted, not chance
    ("C2", [_evidence("mnist-5k", [0.40, 0.60], [0.40, 0.60])], INCONCLUSIVE),  # interval too wide
    ("C2", [_evidence("mnist-5k", [0.5] * 3, [0.46, 0.47, 0.45])], INCONCLUSIVE),  # overlaps the band's edge
    ("C3 abs-diff-dense", [_evidence("mnist-5k", [0.89, 0.90, 0.91], [0.97, 0.972, 0.974])], REPRODUCED),
    ("C3 abs-diff-dense", [_evidence("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], CONTRADICTED),
    ("C3 one-minus-diff-dense", [_evidence("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], REPRODUCED),
    ("C3 one-minus-diff-dense", [_evidence("mnist-5k", [0.3] * 3, [0.30, 0.31, 0.29])], CONTRADICTED),
])
def test_verdict_rules(claim, evidence, verdict):
    decided, got, reason = judge(RULE_OF[claim], evidence)
    assert got == verdict, reason
    preferred = next((e for e in evidence if e.acc.n >= 2), evidence[0])
    assert decided is preferred and f"on {preferred.variant}" in reason


def test_at_chance_is_two_sided_and_an_inverted_signal_is_named():
    """Issue 11: an AUC interval far below 0.5 used to count as 'at chance'."""
    _, verdict, reason = judge(RULE_OF["C2"], [_evidence("mnist-5k", [0.2] * 3, [0.30, 0.31, 0.29])])
    assert verdict == CONTRADICTED and "inverted signal" in reason
    assert "chance band [0.45, 0.55]" in rule_text(RULE_OF["C2"])


def test_c1_full_mnist_gap_contradicts_whatever_the_first_verdict():
    # inconclusive on 5k (CI straddles 90 %), but the full-MNIST CI is 10 points from 97.42 %: contradicted
    ev = [_evidence("mnist-full", [0.87, 0.871], [0.95] * 2), _evidence("mnist-5k", [0.85, 0.95], [0.95, 0.96])]
    decided, verdict, reason = judge(RULE_OF["C1"], ev)
    assert decided is ev[0] and verdict == CONTRADICTED and "wholly below 97.42 ± 1.5 %" in reason
    assert "contradicted whenever the full-MNIST CI lies wholly outside" in rule_text(RULE_OF["C1"])
    # inside the band, an inconclusive first verdict stays inconclusive
    ev = [_evidence("mnist-full", [0.85, 0.99], [0.99] * 2), _evidence("mnist-5k", [0.85, 0.95], [0.95, 0.96])]
    assert judge(RULE_OF["C1"], ev)[1] == INCONCLUSIVE


def test_missing_values_show_a_dash_and_a_missing_auc_is_named():
    ev = _evidence("mnist-5k", [0.50, 0.51, 0.49], [])
    assert "nan" not in ev.text() and "AUC – (not logged)" in ev.text()
    _, verdict, reason = judge(RULE_OF["C2"], [ev])
    assert verdict == INCONCLUSIVE and "no AUC logged" in reason and "no interval" not in reason
    blank = Evidence("s", "digits", "c", 2, pd.DataFrame({"seed": [0]}), t_interval([0.5]), t_interval([0.6]),
                     t_interval([]))
    assert "nan" not in blank.text() and "train acc –" in blank.text()


# -- studies from hand-made runs (no training) ----------------------------------------------------

RECIPE_PARAMS = {"encoder": "mlp", "optimizer": "rmsprop-keras", "init": "keras", "lr": "0.001",
                 "batch_size": "128"}


def _run(cell: str, seed: int, acc: float, *, start: int, variant: str = "mnist-5k", status: str = "FINISHED",
         phase: str = "grid", margin: str | None = "1", lr: str = "0.001", state: str = "COMPLETE",
         loss: str = "contrastive", params: dict | None = None, metrics: dict | None = None,
         tags: dict | None = None):
    from types import SimpleNamespace

    head = cell.split(",")[0].split("=")[1]
    extra_params = params or {}
    params = {**RECIPE_PARAMS, "lr": lr, "seed": str(seed), "head": head, "loss": loss, "epochs": "2",
              "dataset": variant, **extra_params}
    if margin is not None:
        params["margin"] = margin
    tags = {"cell": cell, "seed": str(seed), "phase": phase, "dataset_variant": variant, "head": head,
            "loss": loss, "optuna_state": state, **(tags or {})}
    metrics = {"test/acc": acc, "test/auc": acc, "test/acc_tuned": acc, "train_eval/acc": acc, **(metrics or {})}
    rid = f"{cell}-{seed}-{variant}-{start}-{phase}"
    info = SimpleNamespace(run_id=rid, run_name=rid, status=status, start_time=start, end_time=start + 1,
                           artifact_uri="")
    return SimpleNamespace(info=info, data=SimpleNamespace(tags=tags, params=params, metrics=metrics))


class _Page(list):
    token = None


class _FakeClient:
    """The few MlflowClient calls load_study makes, over hand-made runs per experiment name."""

    def __init__(self, experiments: dict[str, list]):
        from types import SimpleNamespace

        self.runs = experiments
        self.exps = {n: SimpleNamespace(name=n, experiment_id=n, lifecycle_stage="active") for n in experiments}

    def get_experiment_by_name(self, name):
        return self.exps.get(name)

    def search_experiments(self, *a, **k):
        return list(self.exps.values())

    def search_runs(self, ids, **k):
        return _Page(self.runs[ids[0]])


def _studies(experiments: dict[str, list], order: list[str]):
    from siamese_bench.report.load import load_study

    client = _FakeClient(experiments)
    return [load_study(client, name, "fake://") for name in order]


EUC = "head=euclidean,loss=contrastive,margin=1"
SUB = "head=subtract-dense,loss=contrastive,margin=1"
ABS = "head=abs-diff-dense,loss=contrastive,margin=1"


def test_evidence_does_not_depend_on_the_order_studies_are_listed():
    from siamese_bench.report.findings import findings

    # same cell and seeds in both; "tune" ran it with a tuned lr (not the recipe), "ablation" with the recipe
    experiments = {
        "tune": [_run(EUC, s, 0.99, start=s, lr="0.005") for s in (0, 1, 2)],
        "ablation": [_run(EUC, s, 0.93 + s / 100, start=s) for s in (0, 1, 2)],
    }
    a = findings(_studies(experiments, ["tune", "ablation"]))
    b = findings(_studies(experiments, ["ablation", "tune"]))
    assert [(f.decided_on.study, f.verdict, f.reason) for f in a] == \
        [(f.decided_on.study, f.verdict, f.reason) for f in b]
    assert a[0].decided_on.study == "ablation"  # the recipe's cell wins the seed-count tie
    # recipe wins even against more seeds; a full tie goes to the study name, not the listing order
    experiments["tune"].append(_run(EUC, 3, 0.99, start=3, lr="0.005"))
    assert findings(_studies(experiments, ["tune", "ablation"]))[0].decided_on.study == "ablation"
    twin = {"b": [_run(EUC, s, 0.95, start=s) for s in (0, 1)], "a": [_run(EUC, s, 0.96, start=s) for s in (0, 1)]}
    assert {findings(_studies(twin, order))[0].decided_on.study for order in (["a", "b"], ["b", "a"])} == {"a"}


def test_a_cell_on_other_data_is_no_evidence_for_an_mnist_claim():
    """C4's baseline (euclidean + contrastive, m = 1, on vector pairs) must not decide C1."""
    from siamese_bench.report.findings import findings

    csv_only = {"c4": [_run(EUC, s, 0.55, start=s, variant="csv") for s in (0, 1, 2)]}
    assert findings(_studies(csv_only, ["c4"])) == []  # C1 not covered at all
    mixed = {**csv_only, "mnist": [_run(EUC, s, 0.93 + s / 100, start=s) for s in (0, 1, 2)]}
    (c1,) = findings(_studies(mixed, ["c4", "mnist"]))
    assert [e.variant for e in c1.evidence] == ["mnist-5k"] and c1.decided_on.variant == "mnist-5k"
    assert c1.verdict == "inconclusive"  # C1 also needs a full-MNIST run to be reproduced


def test_rerun_after_a_killed_run_counts_once_and_tune_runs_are_left_out():
    from siamese_bench.report.findings import findings

    runs = [_run(EUC, 0, 0.50, start=1, status="KILLED", state="FAIL"),
            _run(EUC, 0, 0.95, start=2), _run(EUC, 1, 0.96, start=3),
            _run(EUC, 1, 0.40, start=4, status="FAILED", state="FAIL"),
            _run(EUC, 0, 0.10, start=5, phase="tune"), _run(EUC, 7, 0.10, start=6, phase="tune")]
    study = _studies({"s": runs}, ["s"])[0]
    assert study.tune_runs == 2 and len(study.runs) == 4 and 7 not in study.seeds
    done = study.complete
    assert sorted(done["seed"]) == [0, 1] and sorted(done["test/acc"]) == [0.95, 0.96]
    found = findings([study])[0]
    assert found.decided_on.acc.n == 2 and found.failed_runs == 0 and "not counted" not in found.reason


def test_margin_params_none_and_decimal_parse():
    runs = [_run(EUC, 0, 0.9, start=0, margin="1.0"), _run("head=euclidean,loss=bce,margin=1", 0, 0.9, start=1,
                                                            margin="None"),
            _run("head=x,loss=contrastive,margin=1", 0, 0.9, start=2, margin=None)]
    frame = _studies({"s": runs}, ["s"])[0].runs.set_index("cell")
    assert frame.loc[EUC, "margin"] == 1.0
    assert np.isnan(frame.loc["head=euclidean,loss=bce,margin=1", "margin"])
    assert np.isnan(frame.loc["head=x,loss=contrastive,margin=1", "margin"])


def test_data_variants_are_kept_apart_in_dedup_results_and_comparisons():
    from siamese_bench.report.comparisons import comparisons_table
    from siamese_bench.report.results import cell_summary

    runs = []
    for s in (0, 1, 2):
        runs += [_run(ABS, s, 0.95, start=s, variant="mnist-5k"), _run(SUB, s, 0.50, start=s, variant="mnist-5k"),
                 _run(ABS, s, 0.99, start=10 + s, variant="mnist-full")]
    runs.append(_run(SUB, 0, 0.6, start=20, variant="mnist-full"))
    study = _studies({"s": runs}, ["s"])[0]
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


def test_best_cell_marks_every_displayed_tie():
    from siamese_bench.report.results import results_table

    heads = {"euclidean": 0.99701, "subtract-dense": 0.99699, "abs-diff-dense": 0.5}
    runs = [_run(f"head={h},loss=contrastive,margin=1", s, a, start=s) for h, a in heads.items() for s in (0, 1)]
    table = results_table(_studies({"s": runs}, ["s"])[0], 1)
    auc = {i for i, col in table.best if col == "ROC AUC"}
    assert auc == {0, 1} and list(table.view["ROC AUC"][:2]) == ["0.997 ± 0.000"] * 2
    acc = {i for i, col in table.best if col.startswith("test acc % (d")}
    assert acc == {0, 1}  # 99.70 both


# -- end to end on a small real study -------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, Path]:
    """A real sweep: 3 heads x 2 seeds on digits, 2 epochs (about 30 s)."""
    import siamese_bench.sweep.runner as runner
    from siamese_bench.infra.tracking import Tracker
    from siamese_bench.sweep.spec import load_spec

    tmp = tmp_path_factory.mktemp("report-store")
    spec = tmp / f"{STUDY}.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    uri = f"sqlite:///{tmp}/mlruns.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "available_cores", lambda: 1)  # one torch thread in the worker
        summary = runner.Sweep(load_spec(spec), str(tmp / "optuna.journal"), Tracker(uri), workers=1,
                               progress=False).run()
    assert summary.completed == 6 and summary.failed == 0
    return uri, tmp


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> Path:
    from siamese_bench.report import build_report

    return build_report([STUDY], store[0], tmp_path_factory.mktemp("reports"), "tiny")


def _pdf_text(pdf: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(pdf)
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return len(reader.pages), text


def _flat(text: str) -> str:
    """Table cells wrap: compare with whitespace (and line breaks) collapsed."""
    return " ".join(text.split())


def _grid_runs(uri: str) -> pd.DataFrame:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([exp.experiment_id], filter_string="tags.phase = 'grid'")
    return pd.DataFrame([{"run_id": r.info.run_id, "cell": r.data.tags["cell"], "seed": int(r.data.tags["seed"]),
                          "acc": r.data.metrics["test/acc"]} for r in runs])


@pytest.mark.slow
def test_pdf_has_title_sections_and_a_page_per_figure(report):
    folder = report.parent
    assert report.name == "report.pdf" and folder.name == "tiny"
    pages, text = _pdf_text(report)
    for title in SECTIONS:
        assert title in text, title
    assert "Siamese-network ablations: tiny" in text and "Contents" in text
    pngs = sorted((folder / "figures").glob("*.png"))
    assert len(pngs) >= 5  # accuracy by head, two curve figures, ROC, histograms, embeddings
    captions = {n for n in range(1, 50) if f"Figure {n}." in text}
    assert captions == set(range(1, len(pngs) + 1))  # one caption per PNG, numbered in order
    assert pages >= 1 + 1 + 1 + 1 + len(pngs) + 1  # title, findings, results, comparisons, figures, provenance
    assert "missing" not in text.split("Figures", 1)[1].split("Provenance", 1)[0].lower()  # artifacts all found


@pytest.mark.slow
def test_findings_table_has_a_verdict_per_covered_claim(report, store):
    findings = pd.read_csv(report.parent / "tables" / "findings.csv")
    assert list(findings["claim_id"]) == ["C1", "C2", "C3 abs-diff-dense"]  # the cells this study ran
    assert set(findings["verdict"]) <= set(VERDICTS)
    assert (findings["n_seeds"] == 2).all() and (findings["dataset_variant"] == "digits").all()
    assert findings["rule"].str.contains("reproduced if").all()
    runs = _grid_runs(store[0])
    for cell, expected in (("euclidean", "C1"), ("subtract-dense", "C2")):
        mean = runs[runs["cell"] == CELL.format(cell)]["acc"].mean()
        row = findings[findings["claim_id"] == expected].iloc[0]
        assert row["test_acc_mean"] == pytest.approx(mean, abs=1e-6)
        assert row["test_acc_ci_low"] <= mean <= row["test_acc_ci_high"]
    md = (report.parent / "tables" / "findings.md").read_text()
    assert "| C1: " in md and "Rule:" in md


@pytest.mark.slow
def test_every_table_has_csv_and_markdown_and_figures_are_png(report):
    folder = report.parent
    tables = folder / "tables"
    stems = {p.stem for p in tables.glob("*.md")}
    assert {"findings", "provenance", "missing", "hardware"} <= stems
    assert any(s.startswith("results-") for s in stems) and any(s.startswith("comparisons-") for s in stems)
    for stem in stems:
        assert (tables / f"{stem}.csv").stat().st_size > 0
    results = pd.read_csv(next(tables.glob("results-*.csv")))
    assert len(results) == 3 and (results["n"] == 2).all()
    for png in (folder / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    md = (folder / "report.md").read_text()
    assert "](figures/" in md and "## Findings" in md


@pytest.mark.slow
def test_studies_with_a_deleted_run_a_failed_run_or_no_run_still_report_and_name_them(store, tmp_path):
    from mlflow.tracking import MlflowClient

    from siamese_bench.report import build_report

    copy = tmp_path / "store"
    shutil.copytree(store[1], copy)
    uri = f"sqlite:///{copy}/mlruns.db"
    runs = _grid_runs(uri)
    gone = runs[(runs["cell"] == CELL.format("euclidean")) & (runs["seed"] == 1)].iloc[0]
    broken = runs[(runs["cell"] == CELL.format("abs-diff-dense")) & (runs["seed"] == 0)].iloc[0]
    client = MlflowClient(uri)
    client.delete_run(gone["run_id"])
    client.set_terminated(broken["run_id"], status="FAILED")
    client.set_tag(broken["run_id"], "optuna_state", "FAIL")
    client.set_tag(broken["run_id"], "fail_reason", "DivergedError: loss is nan (injected by the test)")
    client.create_experiment("never-ran")  # a study with no run at all

    pdf = build_report(["never-ran", STUDY], uri, tmp_path / "out", "holes")
    missing = pd.read_csv(pdf.parent / "tables" / "missing.csv")
    assert len(missing) == 3
    by_cell = {(r.study, r.cell, str(r.seed)): r for r in missing.itertuples()}
    assert by_cell[(STUDY, CELL.format("euclidean"), "1")].state == "MISSING"
    failed = by_cell[(STUDY, CELL.format("abs-diff-dense"), "0")]
    assert failed.state.startswith("FAILED") and "injected by the test" in failed.fail_reason
    assert "no grid run" in by_cell[("never-ran", "all", "all")].fail_reason
    _, text = _pdf_text(pdf)
    assert "injected by the test" in _flat(text) and "MISSING" in text and "never-ran" in text
    findings = pd.read_csv(pdf.parent / "tables" / "findings.csv").set_index("claim_id")
    assert list(findings.index) == ["C1", "C2", "C3 abs-diff-dense"] and (findings["study"] == STUDY).all()
    assert findings.loc["C1", "n_seeds"] == 1 and findings.loc["C1", "verdict"] == INCONCLUSIVE
    # the injected failure is a divergence: an outcome of the design, counted against its cell
    assert "diverged in 1 of 2 seeds (NaN loss), counted against it" in findings.loc["C3 abs-diff-dense", "reason"]
    assert findings.loc["C3 abs-diff-dense", "diverged_seeds"] == 1
    comparisons = pd.read_csv(pdf.parent / "tables" / f"comparisons-2-{STUDY}.csv")
    assert (comparisons["n_paired_seeds"] < 3).all()
    assert comparisons["reading"].str.contains("too few seeds|no seed finished in both").all()
    assert comparisons["reading"].str.contains("too few seeds").any()


@pytest.mark.slow
def test_unknown_study_and_unreachable_store_are_config_errors(store, tmp_path):
    from siamese_bench.report import build_report

    with pytest.raises(ConfigError, match="no-such-study") as err:
        build_report([STUDY, "no-such-study"], store[0], tmp_path, "x")
    assert STUDY in str(err.value)  # lists the studies the store does have
    absent = tmp_path / "nowhere" / "mlruns.db"
    with pytest.raises(ConfigError, match="nowhere"):
        build_report([STUDY], f"sqlite:///{absent}", tmp_path, "x")
    assert not absent.exists()  # reading never creates a store
    assert not (tmp_path / "x").exists()


def test_cli_registers_report_with_help():
    from siamese_bench.cli.report import register

    parser = argparse.ArgumentParser(prog="siamese-bench")
    register(parser.add_subparsers(dest="command"), full=True)
    args = parser.parse_args(["report", "a", "b", "--name", "n", "--tracking-uri", "sqlite:///x.db", "--out", "o"])
    assert (args.studies, args.name, args.tracking_uri, args.out) == (["a", "b"], "n", "sqlite:///x.db", "o")
    assert callable(args.func)
    help_text = parser._subparsers._group_actions[0].choices["report"].format_help()
    assert "--tracking-uri" in help_text and "report.pdf" in help_text


# -- claims beyond MNIST: comparison rows, one-shot, collapse -------------------------------------

TRIPLET_PARAMS = {"triplet_mining": "random", "encoder": "cnn-small"}


def _c6_study(triplet_any: list[float], contrastive: list[float], variant: str = "omniglot-full-35",
              other: list[float] | None = None):
    runs = [_run("head=distance-bn-dense,loss=contrastive", s, v, start=s, variant=variant,
                 params={"triplet_negatives": "other", **TRIPLET_PARAMS}) for s, v in enumerate(contrastive)]
    runs += [_run("head=euclidean,loss=triplet,negatives=any", s, v, start=10 + s, variant=variant, loss="triplet",
                  params={"triplet_negatives": "any", **TRIPLET_PARAMS}) for s, v in enumerate(triplet_any)]
    for s, v in enumerate(other or []):
        runs.append(_run("head=euclidean,loss=triplet,negatives=other", s, v, start=20 + s, variant=variant,
                         loss="triplet", params={"triplet_negatives": "other", **TRIPLET_PARAMS}))
    return _studies({"omniglot-c6": runs}, ["omniglot-c6"])


@pytest.mark.parametrize(("triplet", "contrastive", "verdict"), [
    ([0.66, 0.67, 0.68], [0.53, 0.52, 0.54], REPRODUCED),
    ([0.50, 0.52, 0.51], [0.60, 0.61, 0.62], CONTRADICTED),  # differences must vary: zero spread decides nothing
    ([0.60, 0.50, 0.70], [0.60, 0.60, 0.60], INCONCLUSIVE),
    ([0.66], [0.53], INCONCLUSIVE),  # one paired seed: no interval
])
def test_c6_is_judged_on_the_seed_paired_difference(triplet, contrastive, verdict):
    from siamese_bench.report.findings import findings

    (c6,) = [f for f in findings(_c6_study(triplet, contrastive)) if f.row.id == "C6"]
    assert c6.verdict == verdict, c6.reason
    assert c6.paired.n == len(triplet) and "head=distance-bn-dense,loss=contrastive" in c6.reason
    assert c6.paired.diff.mean == pytest.approx(np.mean(triplet) - np.mean(contrastive))


def test_c6_mix_row_reads_the_mix_split_and_runs_without_it_decide_nothing():
    """The source's conclusion swaps its test and mix figures: the mix row must read mix/acc_tuned,
    not the test split, and studies recorded before the mix split existed leave it inconclusive."""
    from siamese_bench.report.findings import findings

    def study(mix_triplet, mix_contrastive):
        variant, runs = "omniglot-full-35", []
        for s, (t, c) in enumerate(zip(mix_triplet, mix_contrastive, strict=True)):
            runs.append(_run("head=distance-bn-dense,loss=contrastive", s, 0.60 + s / 100, start=s, variant=variant,
                             params={"triplet_negatives": "other", **TRIPLET_PARAMS},
                             metrics={} if c is None else {"mix/acc_tuned": c}))
            runs.append(_run("head=euclidean,loss=triplet,negatives=any", s, 0.60 + s / 90, start=10 + s,
                             variant=variant, loss="triplet", params={"triplet_negatives": "any", **TRIPLET_PARAMS},
                             metrics={} if t is None else {"mix/acc_tuned": t}))
        return {f.row.id: f for f in findings(_studies({"omniglot-c6": runs}, ["omniglot-c6"]))}

    found = study([0.83, 0.85, 0.84], [0.67, 0.66, 0.69])
    assert found["C6 mix"].verdict == REPRODUCED, found["C6 mix"].reason
    assert found["C6 mix"].paired.diff.mean == pytest.approx(0.84 - 0.6733, abs=1e-3)
    assert found["C6"].verdict != REPRODUCED  # test-split differences of under a point: another reading
    assert study([0.60, 0.61, 0.59], [0.70, 0.72, 0.71])["C6 mix"].verdict == CONTRADICTED
    older = study([None] * 3, [None] * 3)["C6 mix"]
    assert older.verdict == INCONCLUSIVE and older.paired.n == 0


def test_c6_rows_need_omniglot_data_and_the_caveat_row_compares_negative_policies():
    from siamese_bench.report.findings import findings

    assert not [f for f in findings(_c6_study([0.7, 0.7], [0.5, 0.5], variant="mnist-5k")) if "C6" in f.row.id]
    found = {f.row.id: f for f in findings(_c6_study([0.66, 0.67, 0.68], [0.5, 0.5, 0.5],
                                                     other=[0.70, 0.72, 0.71]))}
    caveat = found["C6 negatives"]
    assert caveat.verdict == REPRODUCED and caveat.versus_cell == "head=euclidean,loss=triplet,negatives=any"
    assert caveat.decided_on.cell == "head=euclidean,loss=triplet,negatives=other"


def test_k1_rule_on_oneshot_accuracy_and_collapse_is_named():
    k1 = RULE_OF["K1"]
    runs = pd.DataFrame({"seed": [0, 1]})

    def ev(oneshot):
        return Evidence("s", "omniglot-full-35", "c", 6, runs, t_interval([0.9] * 2), t_interval([0.95] * 2),
                        t_interval([0.9] * 2), oneshot=t_interval(oneshot), oneshot_pixels=0.2075)

    assert judge(k1, [ev([0.85, 0.87])])[1] == REPRODUCED
    assert judge(k1, [ev([0.40, 0.42])])[1] == CONTRADICTED
    assert judge(k1, [ev([0.60, 0.80])])[1] == INCONCLUSIVE
    assert judge(k1, [ev([0.86])])[1] == INCONCLUSIVE
    assert "pixel nearest neighbour 20.75 %; trained on the 30 background alphabets" in ev([0.4, 0.42]).text()
    collapsed = Evidence("s", "mnist-5k", "c", 6, runs, t_interval([0.5] * 2), t_interval([0.5] * 2),
                         t_interval([0.5] * 2), collapsed=2)
    assert "COLLAPSED in 2 of 2 runs" in collapsed.text()


def test_variant_prefixes():
    from siamese_bench.report.evidence import in_variants

    col = pd.Series(["omniglot-full-35", "omniglot-full-105", "omniglot-small-35", "mnist-5k"])
    assert in_variants(col, ("omniglot-full-*",)).tolist() == [True, True, False, False]
    assert in_variants(col, ("mnist-5k", "omniglot-small-35")).tolist() == [False, False, True, True]


def test_a_comparison_that_flips_between_data_variants_is_inconclusive():
    from siamese_bench.report.findings import findings

    def runs(variant, semi, rand, start):
        out = [_run("head=euclidean,loss=triplet,mining=semi-hard", s, v, start=start + s, variant=variant,
                    loss="triplet", params={"triplet_mining": "semi-hard"}) for s, v in enumerate(semi)]
        return out + [_run("head=euclidean,loss=triplet,mining=random", s, v, start=start + 10 + s, variant=variant,
                           loss="triplet", params={"triplet_mining": "random"}) for s, v in enumerate(rand)]

    agree = {"m": runs("mnist-5k", [0.99, 0.98, 0.99], [0.96, 0.94, 0.965], 0)
             + runs("japanese-vowels", [0.99, 0.98, 0.985], [0.90, 0.91, 0.9], 100)}
    (semi,) = [f for f in findings(_studies(agree, ["m"])) if f.row.id == "C5 semi-hard"]
    assert semi.verdict == REPRODUCED and semi.decided_on.variant == "mnist-5k"
    assert "on japanese-vowels" in semi.reason  # every variant is shown
    flip = {"m": runs("mnist-5k", [0.99, 0.98, 0.99], [0.96, 0.94, 0.965], 0)
            + runs("japanese-vowels", [0.80, 0.82, 0.79], [0.90, 0.91, 0.9], 100)}
    (semi,) = [f for f in findings(_studies(flip, ["m"])) if f.row.id == "C5 semi-hard"]
    assert semi.verdict == INCONCLUSIVE and "depends on the data" in semi.reason


def test_figures_split_a_study_by_data_variant_and_label_cells_by_what_varies():
    from siamese_bench.report.build import by_variant
    from siamese_bench.report.figures import cell_labels

    runs = [_run("head=euclidean,loss=triplet,triplet_mining=semi-hard", s, 0.9, start=s, variant=v, loss="triplet")
            for s in (0, 1) for v in ("japanese-vowels", "mnist-5k-rows")]
    runs += [_run("head=euclidean,loss=triplet,triplet_mining=random", s, 0.8, start=10 + s, variant="japanese-vowels",
                  loss="triplet") for s in (0, 1)]
    (study,) = _studies({"seq": runs}, ["seq"])
    views = by_variant(study)
    assert [v.name for v in views] == ["seq on japanese-vowels", "seq on mnist-5k-rows"]
    assert set(views[1].complete["dataset_variant"]) == {"mnist-5k-rows"} and len(views[1].complete) == 2
    labels = cell_labels(views[0].complete)
    assert set(labels) == {"euclidean, semi-hard", "euclidean, random"}
    assert set(cell_labels(views[1].complete)) == {"euclidean"}  # nothing else varies there
    (single,) = _studies({"one": [r for r in runs if r.data.tags["dataset_variant"] == "japanese-vowels"]}, ["one"])
    assert by_variant(single) == [single]


def test_oneshot_figure_from_per_run_metrics():
    from siamese_bench.report.figures import Palettes, oneshot_by_run

    per_run = {f"oneshot/run{i:02d}": 0.3 + i / 100 for i in range(1, 21)}
    pixels = {f"oneshot_pixels/run{i:02d}": 0.2 for i in range(1, 21)}
    runs = [_run("head=abs-diff-dense,loss=bce", s, 0.9, start=s, variant="omniglot-full-35", loss="bce",
                 metrics={**per_run, **pixels, "oneshot/acc": 0.4, "oneshot_pixels/acc": 0.2}) for s in (0, 1)]
    studies = _studies({"k1": runs}, ["k1"])
    plot = oneshot_by_run(studies, Palettes.of(studies), 1)
    assert plot is not None and "92 %" in plot.caption
    ax = plot.figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["01", "02"]
    assert oneshot_by_run(_studies({"c1": [_run(EUC, 0, 0.9, start=0)]}, ["c1"]), Palettes.of(studies), 1) is None


def test_results_table_names_collapsed_runs_and_shows_one_shot():
    from siamese_bench.report.results import results_table

    runs = [_run("head=euclidean,loss=triplet,mining=batch-hard", s, 0.5, start=s, loss="triplet",
                 metrics={"collapsed": float(s < 2)}) for s in (0, 1, 2)]
    runs += [_run("head=euclidean,loss=triplet,mining=random", s, 0.9, start=10 + s, loss="triplet",
                  metrics={"collapsed": 0.0}) for s in (0, 1, 2)]
    (study,) = _studies({"m": runs}, ["m"])
    view = results_table(study, 1).view
    assert list(view["collapsed"]) == ["2 of 3", ""] and "20-way one-shot %" not in view
    k1 = [_run("head=abs-diff-dense,loss=bce", s, 0.9, start=s, loss="bce", variant="omniglot-full-28",
               metrics={"oneshot/acc": 0.3 + s / 100}) for s in (0, 1)]
    (study,) = _studies({"k1": k1}, ["k1"])
    view = results_table(study, 1).view
    assert list(view["20-way one-shot %"]) == ["30.50 ± 0.71"] and "collapsed" not in view


def test_k1_below_the_bar_on_a_reduced_setup_is_not_a_contradiction():
    from siamese_bench.report.findings import findings

    def k1(encoder, acc, variant="omniglot-full-28", width="1.0"):
        return [_run("head=abs-diff-dense,loss=bce", s, 0.8, start=s, loss="bce", variant=variant,
                     params={"encoder": encoder, "encoder.width": width}, metrics={"oneshot/acc": acc + s / 100})
                for s in (0, 1, 2)]

    (small,) = [f for f in findings(_studies({"k": k1("cnn-small", 0.28)}, ["k"])) if f.row.id == "K1"]
    assert small.verdict == INCONCLUSIVE and "reduced setup" in small.reason
    narrow = k1("koch", 0.28, variant="omniglot-full-105", width="0.25")  # Koch's layers, a quarter wide
    (koch,) = [f for f in findings(_studies({"k": narrow}, ["k"])) if f.row.id == "K1"]
    assert koch.verdict == INCONCLUSIVE
    full = k1("koch", 0.28, variant="omniglot-full-105")
    (koch,) = [f for f in findings(_studies({"k": full}, ["k"])) if f.row.id == "K1"]
    assert koch.verdict == CONTRADICTED
    (good,) = [f for f in findings(_studies({"k": k1("cnn-small", 0.85)}, ["k"])) if f.row.id == "K1"]
    assert good.verdict == REPRODUCED  # reaching the bar with less is still a reproduction


def test_k1_bar_takes_the_best_cell_of_a_lever_study_and_names_the_lever_that_mattered_most():
    from siamese_bench.report.findings import findings

    cells = {  # the base design, and one lever changed in each other cell
        "loss=triplet": 0.72,
        "loss=triplet,augment=affine": 0.73,
        "loss=triplet,epochs=10": 0.76,
        "loss=contrastive,margin=1": 0.58,
        "loss=bce,head=abs-diff-dense": 0.40,
    }
    runs = [_run(cell, s, 0.9, start=10 * i + s, loss=cell.split("loss=")[1].split(",")[0],
                 variant="omniglot-full-28", params={"encoder": "conv4"},
                 metrics={"oneshot/acc": acc + (s - 1) / 100, "oneshot/trials": 400, "oneshot_pixels/acc": 0.215})
            for i, (cell, acc) in enumerate(cells.items()) for s in (0, 1, 2)]
    found = {f.row.id: f for f in findings(_studies({"k1": runs}, ["k1"]))}
    bar = found["K1 bar"]
    assert bar.decided_on.cell == "loss=triplet,epochs=10" and bar.decided_on.oneshot.mean == pytest.approx(0.76)
    assert "against the base cell loss=triplet (72.0 %, n = 3)" in bar.reason
    assert "epochs=10 76.0 % (+4.0, n = 3)" in bar.reason and "augment=affine 73.0 % (+1.0, n = 3)" in bar.reason
    assert "the lever that mattered most: loss=bce, head=abs-diff-dense (-32.0 points)" in bar.reason
    assert bar.verdict == REPRODUCED  # 75-77 % over 3 seeds, 400 trials each: CI low above 70 %
    near = [_run("head=euclidean,loss=triplet", s, 0.9, start=s, loss="triplet", variant="omniglot-full-28",
                 metrics={"oneshot/acc": 0.71 + s / 100}) for s in (0, 1, 2)]
    assert {f.row.id: f for f in findings(_studies({"k": near}, ["k"]))}["K1 bar"].verdict == INCONCLUSIVE
    low = [_run("head=euclidean,loss=triplet", s, 0.9, start=s, loss="triplet", variant="omniglot-full-28",
                metrics={"oneshot/acc": 0.50 + s / 100}) for s in (0, 1, 2)]
    assert {f.row.id: f for f in findings(_studies({"k": low}, ["k"]))}["K1 bar"].verdict == CONTRADICTED
    c6_only = [_run("head=euclidean,loss=triplet", s, 0.7, start=s, loss="triplet", variant="omniglot-full-28")
               for s in (0, 1, 2)]
    assert "K1 bar" not in {f.row.id for f in findings(_studies({"c6": c6_only}, ["c6"]))}  # no one-shot runs


def test_a_paired_difference_with_zero_spread_decides_nothing():
    """Every seed 0.1 apart: a zero-width interval 'excludes 0', but nothing varies to read
    (issue 11); the row says so instead of 'reproduced'."""
    from siamese_bench.report.rules import INCONCLUSIVE, paired_judgement

    shifted = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.6, 1: 0.7, 2: 0.8})
    assert shifted.no_spread and not shifted.identical
    assert paired_judgement(shifted, 0.01).verdict == INCONCLUSIVE and "zero spread" in shifted.reading("a", "b")
    same = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.5, 1: 0.6, 2: 0.7})
    assert same.identical and paired_judgement(same, 0.01).verdict == INCONCLUSIVE
    assert "identical" in same.reading("a", "b")
    varied = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.61, 1: 0.7, 2: 0.82})
    assert not varied.no_spread and paired_judgement(varied, 0.01).verdict != INCONCLUSIVE


def test_failed_runs_counted_are_the_compared_cells_on_the_deciding_data():
    """Issue 11: the count named only the claimed cell's failures on every variant, and never the
    compared ('versus') cell's."""
    from siamese_bench.report.findings import findings

    def run(cell, mining, seed, value, start, variant="mnist-5k", **kw):
        return _run(cell, seed, value, start=start, variant=variant, loss="triplet",
                    params={"triplet_mining": mining}, **kw)

    semi, rand = "head=euclidean,loss=triplet,mining=semi-hard", "head=euclidean,loss=triplet,mining=random"
    runs = [run(semi, "semi-hard", s, v, s) for s, v in enumerate([0.99, 0.98, 0.985])]
    runs += [run(rand, "random", s, v, 10 + s) for s, v in enumerate([0.95, 0.96, 0.94])]
    runs += [run(rand, "random", 3, 0.5, 20, status="FAILED", state="FAIL")]  # the compared cell: counts
    runs += [run(semi, "semi-hard", s, 0.5, 30 + s, variant="mnist-rows", status="FAILED", state="FAIL")
             for s in (0, 1)]  # other data, never finished there: not this verdict's business
    (row,) = [f for f in findings(_studies({"m": runs}, ["m"])) if f.row.id == "C5 semi-hard"]
    assert row.decided_on.variant == "mnist-5k" and row.versus_cell == rand
    assert row.failed_runs == 1 and "1 cell x seed run of the compared cells failed" in row.reason


def test_a_tiny_significant_difference_is_not_reproduced_and_within_the_band_contradicts():
    """Issue 11: with a smallest effect that matters (0.01 AUC), ten seeds of +0.002 AUC are 'no
    difference that matters' (contradicted), not 'reproduced'."""
    from siamese_bench.report.rules import paired_judgement

    a = {s: 0.90 + 0.01 * (s % 3) for s in range(10)}
    tiny = paired_comparison(a, {s: v + 0.002 + 0.0005 * (s % 2) for s, v in a.items()})
    assert tiny.diff.lo > 0  # significant ...
    j = paired_judgement(tiny, 0.01)
    assert j.verdict == CONTRADICTED and "no difference that matters" in j.why and j.p < 0.025
    big = paired_comparison(a, {s: v + 0.03 + 0.005 * (s % 2) for s, v in a.items()})
    assert paired_judgement(big, 0.01).verdict == REPRODUCED
    # significant, above 0, mean below delta, CI reaching past delta: undecided
    mid = paired_comparison(a, {s: v + 0.008 + 0.006 * (s % 2) - 0.003 * (s % 3) for s, v in a.items()})
    assert mid.diff.lo > 0 and mid.diff.mean < 0.01 < mid.diff.hi
    assert paired_judgement(mid, 0.01).verdict == INCONCLUSIVE


def test_holm_adjustment_by_hand():
    from siamese_bench.report.stats import holm

    # sorted 0.01, 0.02, 0.04 over m=3: 0.03, max(0.03, 0.04)=0.04, max(0.04, 0.04)=0.04
    assert holm([0.04, 0.01, math.nan, 0.02]) == pytest.approx([0.04, 0.03, math.nan, 0.04], nan_ok=True)
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_holm_turns_a_marginal_row_inconclusive_and_shows_raw_and_adjusted_p():
    from siamese_bench.report.findings import Finding, _holm_gate

    rows = [Finding(CLAIMS[0], [], None, REPRODUCED, "r", 0, p=0.02),
            Finding(CLAIMS[1], [], None, REPRODUCED, "r", 0, p=0.001),
            Finding(CLAIMS[2], [], None, INCONCLUSIVE, "r", 0, p=0.3)]
    marginal, strong, undecided = _holm_gate(rows)
    assert strong.verdict == REPRODUCED and strong.p_holm == pytest.approx(0.003)
    assert marginal.verdict == INCONCLUSIVE and marginal.p_holm == pytest.approx(0.04)
    assert "p = 0.02, Holm-adjusted over 3 rows p = 0.04 > 0.025" in marginal.reason
    assert undecided.verdict == INCONCLUSIVE and undecided.p_holm == pytest.approx(0.3)  # (3 - 2) * 0.3


def test_interval_tests_agree_with_the_interval():
    iv = t_interval([0.91, 0.93, 0.92, 0.95])
    assert (iv.lo >= 0.9) == (iv.p_above(0.9) <= 0.025)
    assert iv.p_above(iv.lo) == pytest.approx(0.025) and iv.p_below(iv.hi) == pytest.approx(0.025)
    assert iv.p_within(iv.lo, iv.hi) == pytest.approx(0.025)


def test_one_shot_interval_adds_the_binomial_error_of_400_fixed_trials():
    from siamese_bench.report.stats import oneshot_interval

    seeds = [0.70, 0.71, 0.705]
    plain, with_trials = t_interval(seeds), oneshot_interval(seeds, 400)
    var = 0.705 * 0.295 / 400
    assert with_trials.se == pytest.approx(math.sqrt(plain.sd ** 2 / 3 + var))
    assert with_trials.hi - with_trials.lo > 3 * (plain.hi - plain.lo)  # the trials dominate here
    # a K1 row reads it: identical seeds at 72 % no longer clear the 70 % bar
    runs = pd.DataFrame({"seed": [0, 1, 2]})
    ev = Evidence("s", "omniglot-full-35", "c", 6, runs, t_interval([0.9] * 3), t_interval([0.95] * 3),
                  t_interval([0.9] * 3), oneshot=oneshot_interval([0.72, 0.72, 0.721], 400))
    assert judge(RULE_OF["K1"], [ev])[1] == INCONCLUSIVE


def test_one_shot_interval_covers_95_percent_with_welch_satterthwaite_degrees_of_freedom():
    """The binomial variance of the shared trials is known, not estimated from the seeds: only
    the seeds' spread has n - 1 degrees of freedom. Simulated: 3 seeds scored on one shared
    sample of 400 trials, true accuracy 0.75, seed sd 0.01. The interval must cover the truth
    about 95 % of the time; reading all of it at t(2) covers nearly always (too wide)."""
    from scipy import stats as sps

    from siamese_bench.report.stats import oneshot_interval

    rng = np.random.default_rng(0)
    covered, covered_t2 = 0, 0
    reps = 3000
    for _ in range(reps):
        shared = rng.binomial(400, 0.75) / 400 - 0.75  # the fixed trials' own sampling error
        seeds = 0.75 + shared + rng.normal(0, 0.01, 3)
        iv = oneshot_interval(seeds, 400)
        covered += iv.lo <= 0.75 <= iv.hi
        half_t2 = sps.t.ppf(0.975, 2) * iv.se
        covered_t2 += abs(iv.mean - 0.75) <= half_t2
    assert 0.93 <= covered / reps <= 0.975
    assert covered_t2 / reps > 0.99  # the old reading: far wider than 95 %
    iv = oneshot_interval([0.70, 0.71, 0.705], 400)
    assert 2 < iv.df < 1e6 and iv.p_above(iv.lo) == pytest.approx(0.025, abs=1e-6)
    assert oneshot_interval([0.7, 0.7, 0.7], 400).df > 1e6  # no spread: the known variance alone (normal)


def test_diverged_seeds_count_against_the_cell_and_block_reproduced():
    """Issue 11: a NaN loss is an outcome of the design under test, not missing data."""
    from siamese_bench.report.findings import findings

    def run(cell, mining, seed, value, start, **kw):
        return _run(cell, seed, value, start=start, loss="triplet", params={"triplet_mining": mining}, **kw)

    semi, rand = "head=euclidean,loss=triplet,mining=semi-hard", "head=euclidean,loss=triplet,mining=random"
    runs = [run(semi, "semi-hard", s, v, s, metrics={"test/auc": v}) for s, v in enumerate([0.99, 0.98, 0.985])]
    runs += [run(rand, "random", s, v, 10 + s, metrics={"test/auc": v}) for s, v in enumerate([0.95, 0.96, 0.94])]
    clean = [f for f in findings(_studies({"m": runs}, ["m"])) if f.row.id == "C5 semi-hard"][0]
    assert clean.verdict == REPRODUCED and clean.diverged == 0
    runs += [run(semi, "semi-hard", 3, math.nan, 20, status="FAILED", state="FAIL",
                 tags={"fail_reason": "DivergedError: training loss is nan at epoch 2"})]
    (row,) = [f for f in findings(_studies({"m": runs}, ["m"])) if f.row.id == "C5 semi-hard"]
    assert row.diverged == 1 and row.failed_runs == 0  # an outcome, not a lost run
    assert row.verdict == INCONCLUSIVE and "diverged in 1 of 4 seeds" in row.reason
    assert "DIVERGED in 1 of 4 seeds" in row.decided_on.text()


def test_results_note_names_cells_that_auc_and_map_at_r_rank_differently():
    from siamese_bench.report.results import disagreements

    summary = pd.DataFrame({"cell": ["a", "b", "c"], "dataset_variant": ["v"] * 3,
                            "test/auc mean": [0.95, 0.90, 0.80], "retrieval/map_at_r mean": [0.40, 0.60, 0.20],
                            "retrieval/map_at_r n": [3, 3, 3]})
    text = disagreements(summary, "test/auc", "retrieval/map_at_r")
    assert "disagree on 1 pair of cells: a over b by AUC, the reverse by MAP@R" in text
    summary["retrieval/map_at_r mean"] = [0.6, 0.4, 0.2]
    assert disagreements(summary, "test/auc", "retrieval/map_at_r") == "AUC and MAP@R rank the cells the same way."


def test_claim_rows_come_from_their_data_file_and_bad_rows_are_named(tmp_path):
    from siamese_bench.report.claims import CLAIM_ROWS, load_claim_rows
    from siamese_bench.report.rules import RULES

    rows = load_claim_rows(CLAIM_ROWS)
    assert [r.id for r in rows] == [r.id for r in CLAIMS] and all(r.rule in RULES for r in rows)
    assert {r.id.split()[0] for r in rows} >= {"C1", "C2", "C3", "C4", "C5", "C6", "K1"}
    bad = tmp_path / "rows.yaml"
    for text, message in (("rows: [{id: X, claim: c, source: s, select: {head: l1}, rule: wins}]",
                           "line 1: rows[0].rule: should be 'works', 'chance', 'learns', 'above-chance', 'oneshot' "
                           "or 'better', got 'wins'"),
                          ("rows: [{id: X, claim: c, source: s, select: {}, rule: works, colour: red}]",
                           "rows[0]: unknown key(s) colour"),
                          ("rows: [{id: X, claim: c, rule: works}]", "rows[0]: missing required key 'source'")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                           .replace("]", r"\]")):
            load_claim_rows(bad)
