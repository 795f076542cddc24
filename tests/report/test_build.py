"""End-to-end reports built from a small real study (slow; the store is conftest.py's): PDF
sections and pages, CSV/MD/PNG files, missing and failed runs, unknown studies and stores; and
the `report` subcommand."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd
import pytest

from siamese_bench.core.errors import ConfigError
from siamese_bench.report.rules import INCONCLUSIVE, VERDICTS

CELL = "head={},loss=contrastive,margin=1"
SECTIONS = (
    "Findings",
    "Results by cell",
    "Pairwise comparisons",
    "Figures",
    "Provenance",
    "Missing or failed runs",
    "Hardware and software",
)


def _pdf_text(pdf: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(pdf)
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return len(reader.pages), text


def _flat(text: str) -> str:
    """Table cells wrap: compare with whitespace (and line breaks) collapsed."""
    return " ".join(text.split())


def _grid_runs(uri: str, study: str) -> pd.DataFrame:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(study)
    runs = client.search_runs([exp.experiment_id], filter_string="tags.phase = 'grid'")
    return pd.DataFrame(
        [
            {
                "run_id": r.info.run_id,
                "cell": r.data.tags["cell"],
                "seed": int(r.data.tags["seed"]),
                "acc": r.data.metrics["test/acc"],
            }
            for r in runs
        ]
    )


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
    runs = _grid_runs(store.uri, store.study)
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
    shutil.copytree(store.folder, copy)
    uri = f"sqlite:///{copy}/mlruns.db"
    runs = _grid_runs(uri, store.study)
    gone = runs[(runs["cell"] == CELL.format("euclidean")) & (runs["seed"] == 1)].iloc[0]
    broken = runs[(runs["cell"] == CELL.format("abs-diff-dense")) & (runs["seed"] == 0)].iloc[0]
    client = MlflowClient(uri)
    client.delete_run(gone["run_id"])
    client.set_terminated(broken["run_id"], status="FAILED")
    client.set_tag(broken["run_id"], "optuna_state", "FAIL")
    client.set_tag(broken["run_id"], "fail_reason", "DivergedError: loss is nan (injected by the test)")
    client.create_experiment("never-ran")  # a study with no run at all

    pdf = build_report(["never-ran", store.study], uri, tmp_path / "out", "holes").pdf
    missing = pd.read_csv(pdf.parent / "tables" / "missing.csv")
    assert len(missing) == 3
    by_cell = {(r.study, r.cell, str(r.seed)): r for r in missing.itertuples()}
    assert by_cell[(store.study, CELL.format("euclidean"), "1")].state == "MISSING"
    failed = by_cell[(store.study, CELL.format("abs-diff-dense"), "0")]
    assert failed.state.startswith("FAILED") and "injected by the test" in failed.fail_reason
    assert "no grid run" in by_cell[("never-ran", "all", "all")].fail_reason
    _, text = _pdf_text(pdf)
    assert "injected by the test" in _flat(text) and "MISSING" in text and "never-ran" in text
    findings = pd.read_csv(pdf.parent / "tables" / "findings.csv").set_index("claim_id")
    assert list(findings.index) == ["C1", "C2", "C3 abs-diff-dense"] and (findings["study"] == store.study).all()
    assert findings.loc["C1", "n_seeds"] == 1 and findings.loc["C1", "verdict"] == INCONCLUSIVE
    # the injected failure is a divergence: an outcome of the design, counted against its cell
    assert "diverged in 1 of 2 seeds (NaN loss), counted against it" in findings.loc["C3 abs-diff-dense", "reason"]
    assert findings.loc["C3 abs-diff-dense", "diverged_seeds"] == 1
    comparisons = pd.read_csv(pdf.parent / "tables" / f"comparisons-2-{store.study}.csv")
    assert (comparisons["n_paired_seeds"] < 3).all()
    assert comparisons["reading"].str.contains("too few seeds|no seed finished in both").all()
    assert comparisons["reading"].str.contains("too few seeds").any()


@pytest.mark.slow
def test_unknown_study_and_unreachable_store_are_config_errors(store, tmp_path):
    from siamese_bench.report import build_report

    with pytest.raises(ConfigError, match="no-such-study") as err:
        build_report([store.study, "no-such-study"], store.uri, tmp_path, "x")
    assert store.study in str(err.value)  # lists the studies the store does have
    absent = tmp_path / "nowhere" / "mlruns.db"
    with pytest.raises(ConfigError, match="nowhere"):
        build_report([store.study], f"sqlite:///{absent}", tmp_path, "x")
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


@pytest.mark.slow
def test_building_a_report_loads_no_torch(store, tmp_path):
    """Issue 20: the report never imports torch, a spec or a plugin, even to describe hardware."""
    import subprocess
    import sys

    code = (
        "import sys; from siamese_bench.cli import main; "
        f"main(['report', {store.study!r}, '--tracking-uri', {store.uri!r}, '--out', {str(tmp_path)!r}]); "
        "print('torch' in sys.modules, 'siamese_bench.sweep.spec' in sys.modules, "
        "'siamese_bench.training' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False False"
