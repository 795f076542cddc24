"""The report: verdict rules on hand-made evidence (fast), and end-to-end reports built from a
small real study (slow): PDF sections and pages, CSV/MD/PNG files, missing and failed runs,
unknown studies and stores."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siamese_bench.config import ConfigError
from siamese_bench.report.findings import CLAIMS, CONTRADICTED, INCONCLUSIVE, REPRODUCED, VERDICTS, Evidence, judge
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
    a = {0: 0.50, 1: 0.52, 2: 0.51}
    b = {0: 0.90, 1: 0.93, 2: 0.91, 7: 0.1}  # seed 7 has no partner: ignored
    p = paired_comparison(a, b)
    assert p.n == 3 and p.diff.mean == pytest.approx(np.mean([0.40, 0.41, 0.40]))
    assert p.diff.lo > 0 and p.p < 0.05 and "higher" in p.reading("A", "B")
    few = paired_comparison({0: 0.5, 1: 0.6}, {0: 0.9, 1: 0.8})
    assert few.n == 2 and "too few seeds" in few.reading("A", "B")


def _evidence(variant: str, acc: list[float], auc: list[float]) -> Evidence:
    runs = pd.DataFrame({"seed": range(len(acc))})
    return Evidence("s", variant, "c", 20, runs, t_interval(acc), t_interval(auc), t_interval(acc))


RULE_OF = {row.id: row for row in CLAIMS}


@pytest.mark.parametrize(("claim", "evidence", "verdict"), [
    ("C1", [_evidence("mnist-full", [0.973], [0.99]), _evidence("mnist-5k", [0.93, 0.94, 0.935], [0.98] * 3)],
     REPRODUCED),
    ("C1", [_evidence("mnist-full", [0.95], [0.99]), _evidence("mnist-5k", [0.93, 0.94, 0.935], [0.98] * 3)],
     CONTRADICTED),  # works, but 2.4 points from 97.42
    ("C1", [_evidence("mnist-5k", [0.93, 0.94, 0.935], [0.98] * 3)], INCONCLUSIVE),  # no full-MNIST run
    ("C1", [_evidence("mnist-full", [0.974], [0.99])], INCONCLUSIVE),  # one seed: no interval
    ("C1", [_evidence("mnist-5k", [0.60, 0.62, 0.61], [0.7] * 3)], CONTRADICTED),
    ("C2", [_evidence("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], REPRODUCED),
    ("C2", [_evidence("mnist-5k", [0.80, 0.82, 0.81], [0.90, 0.91, 0.92])], CONTRADICTED),
    ("C2", [_evidence("mnist-5k", [0.40, 0.60], [0.40, 0.60])], INCONCLUSIVE),  # interval too wide
    ("C3 abs-diff-dense", [_evidence("mnist-5k", [0.89, 0.90, 0.91], [0.97, 0.972, 0.974])], REPRODUCED),
    ("C3 abs-diff-dense", [_evidence("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], CONTRADICTED),
    ("C3 one-minus-diff-dense", [_evidence("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], REPRODUCED),
])
def test_verdict_rules(claim, evidence, verdict):
    decided, got, reason = judge(RULE_OF[claim], evidence)
    assert got == verdict, reason
    preferred = next((e for e in evidence if e.acc.n >= 2), evidence[0])
    assert decided is preferred and f"on {preferred.variant}" in reason


# -- end to end on a small real study -------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, Path]:
    """A real sweep: 3 heads x 2 seeds on digits, 2 epochs (about 30 s)."""
    import siamese_bench.sweep.runner as runner
    from siamese_bench.sweep.spec import load_spec
    from siamese_bench.tracking import Tracker

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
    assert "not counted" in findings.loc["C3 abs-diff-dense", "reason"]
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
    from siamese_bench.report.cli import register

    parser = argparse.ArgumentParser(prog="siamese-bench")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "a", "b", "--name", "n", "--tracking-uri", "sqlite:///x.db", "--out", "o"])
    assert (args.studies, args.name, args.tracking_uri, args.out) == (["a", "b"], "n", "sqlite:///x.db", "o")
    assert callable(args.func)
    help_text = parser._subparsers._group_actions[0].choices["report"].format_help()
    assert "--tracking-uri" in help_text and "report.pdf" in help_text
