"""Build a report from MLflow: load the studies, compute the tables, draw the figures, write
CSV + Markdown per table, PNG per figure, report.md and report.pdf into <out>/<name>/."""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import seaborn as sns

from siamese_bench.report.claims import CLAIMS, ClaimRow
from siamese_bench.report.comparisons import comparisons_table
from siamese_bench.report.figures import Palettes, Plot
from siamese_bench.report.figures_artifacts import distance_histograms, embeddings, roc_curves
from siamese_bench.report.figures_curves import curves
from siamese_bench.report.figures_forest import forest, levers
from siamese_bench.report.figures_grid import accuracy_by_head, accuracy_by_margin
from siamese_bench.report.figures_oneshot import oneshot_by_run
from siamese_bench.report.findings import Finding, findings, not_covered
from siamese_bench.report.findings_table import findings_table
from siamese_bench.report.load import ArtifactCache, Study, load_curves, load_studies
from siamese_bench.report.looks import ONE_LOOK, Looks
from siamese_bench.report.pdf import RC, ReportPdf
from siamese_bench.report.provenance import hardware_table, missing_table, provenance_table
from siamese_bench.report.results import results_table
from siamese_bench.report.rules import CONTRADICTED, INCONCLUSIVE, REPRODUCED
from siamese_bench.report.tables import Table, slug

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    """What build_report wrote, and the findings it judged (for --json and decide)."""

    pdf: Path
    markdown: Path
    findings: list[Finding]

    def summary(self) -> dict[str, object]:
        return {
            "report": str(self.pdf),
            "markdown": str(self.markdown),
            "findings": [
                {
                    "id": f.row.id,
                    "verdict": f.verdict,
                    "study": f.decided_on.study if f.decided_on else None,
                    "data": f.decided_on.variant if f.decided_on else None,
                    "p": None if not math.isfinite(f.p) else f.p,
                    "p_holm": None if not math.isfinite(f.p_holm) else f.p_holm,
                }
                for f in self.findings
            ],
        }


VERDICT_FILLS = {REPRODUCED: "#d5eedb", CONTRADICTED: "#f6d5d0", INCONCLUSIVE: "#f9ecc4"}
PNG_DPI = 150


def _summary(study: Study) -> str:
    expected = len(study.cells) * len(study.seeds)
    return (
        f"{study.name}: {', '.join(study.variants) or 'no finished run'}; {len(study.cells)} cells x "
        f"{len(study.seeds)} seeds, {len(study.complete)} / {expected} grid runs finished"
    )


def by_variant(study: Study) -> list[Study]:
    """One view per data variant of a study that ran on several (figures never pool two data sets)."""
    if len(study.variants) < 2:
        return [study]
    return [
        dataclasses.replace(
            study,
            name=f"{study.name} on {variant}",
            runs=study.runs[study.runs["dataset_variant"] == variant].reset_index(drop=True),
        )
        for variant in study.variants
    ]


def _draw_figures(client, studies: list[Study], found, cache: ArtifactCache, level: float) -> list[Plot]:
    pal = Palettes.of(studies)
    plots: list[Plot | None] = []
    k = 0

    def add(plot: Plot | None) -> None:
        nonlocal k
        if plot is not None:
            plots.append(plot)
            k += 1

    add(forest(found, k + 1, level))
    add(levers(found, studies, k + 1))
    views = [view for study in studies for view in by_variant(study)]
    for study in views:
        if study.is_grid:  # grid figures only for factorial designs
            add(accuracy_by_head(study, pal, k + 1))
            add(accuracy_by_margin(study, pal, k + 1))
    for study in views:
        history = load_curves(client, study.complete) if not study.complete.empty else None
        if history is not None:
            for metric in ("val/auc", "train/loss"):
                add(curves(study, history, metric, pal, k + 1))
    add(oneshot_by_run(studies, pal, k + 1))
    add(roc_curves(found, cache, k + 1))
    add(distance_histograms(found, cache, k + 1))
    add(embeddings(studies, cache, k + 1))
    return [p for p in plots if p is not None]


def build_report(
    studies: list[str],
    tracking_uri: str,
    out_dir: Path,
    name: str | None = None,
    claims: list[ClaimRow] | None = None,
    builtin: bool = True,
    looks: Looks = ONE_LOOK,
) -> Report:
    """Write the report of `studies` into out_dir/<name>/: the built-in claim rows (unless not
    `builtin`) and a user's `claims`, each judged with intervals at `looks`' level (decide's
    repeated looks, or one).

    Reads the tracking store only. Raises ConfigError (naming the study or the URI) when a
    study is unknown or the store cannot be read.
    """
    name = name or studies[0]
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    client, loaded = load_studies(list(studies), tracking_uri)
    folder = Path(out_dir) / slug(name)
    tables_dir, figures_dir = folder / "tables", folder / "figures"
    for d in (tables_dir, figures_dir):
        d.mkdir(parents=True, exist_ok=True)
        for old in list(d.glob("*.csv")) + list(d.glob("*.md")) + list(d.glob("*.png")):
            old.unlink()  # a rebuild must not leave tables or figures of an earlier one behind
    log.info("report %s: %s", name, "; ".join(_summary(s) for s in loaded))

    level = looks.level()
    found = findings(loaded, CLAIMS, looks) if builtin else []
    uncovered = not_covered(loaded, found) if builtin else []
    if claims:
        own = findings(loaded, claims, looks)
        found += own
        uncovered += not_covered(loaded, own, claims)
    t_findings = findings_table(found, uncovered, looks)
    t_findings.fills = {(i, "Verdict"): VERDICT_FILLS[f.verdict] for i, f in enumerate(found)}
    t_results = [results_table(s, i + 1) for i, s in enumerate(loaded)]
    t_compare = [comparisons_table(s, i + 1) for i, s in enumerate(loaded)]
    t_prov, t_missing, t_hw = provenance_table(loaded), missing_table(loaded), hardware_table(loaded, tracking_uri)
    all_tables = [t_findings, *t_results, *t_compare, t_prov, t_missing, t_hw]

    pdf_path = folder / "report.pdf"
    with (
        tempfile.TemporaryDirectory(prefix="siamese-bench-report-") as tmp,
        matplotlib.rc_context(RC),
        sns.axes_style("whitegrid"),
        sns.plotting_context("paper"),
    ):
        cache = ArtifactCache(client, Path(tmp))
        plots = _draw_figures(client, loaded, found, cache, level)
        for plot in plots:
            plot.figure.savefig(figures_dir / f"{plot.key}.png", dpi=PNG_DPI, bbox_inches="tight")
        doc = _assemble(name, loaded, found, t_findings, t_results, t_compare, t_prov, t_missing, t_hw, plots, level)
        doc.save(pdf_path, _title_lines(loaded, found, tracking_uri), name)

    runs = [s.runs.assign(study=s.name) for s in loaded if not s.runs.empty]
    if runs:
        import pandas as pd

        pd.concat(runs).to_csv(tables_dir / "runs.csv", index=False)
    for table in all_tables:
        table.write(tables_dir)
    (folder / "report.md").write_text(_markdown(name, loaded, all_tables, plots))
    log.info("report written to %s", folder)
    return Report(pdf_path, folder / "report.md", found)


def _title_lines(studies: list[Study], found, uri: str) -> list[tuple[str, str]]:
    counts = Counter(f.verdict for f in found)
    verdicts = ", ".join(f"{counts[v]} {v}" for v in (REPRODUCED, CONTRADICTED, INCONCLUSIVE) if counts[v])
    per_claim = "; ".join(f"{f.row.id} {f.verdict}" for f in found)
    versions = sorted({v for s in studies if not s.runs.empty for v in s.runs["package_version"] if v})
    commits = sorted({c[:10] for s in studies if not s.runs.empty for c in s.runs["git_commit"] if c})
    return [
        ("Studies", "\n".join(_summary(s) for s in studies)),
        ("Findings", f"{verdicts or 'no claim covered'}" + (f" — {per_claim}" if per_claim else "")),
        ("Tracking store", uri),
        ("Runs made by", f"siamese-bench {', '.join(versions) or '?'} at {', '.join(commits) or '?'}"),
        ("Built", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC") + ", from the tracking store alone (no retraining)"),
    ]


def _assemble(
    name, studies, found, t_findings, t_results, t_compare, t_prov, t_missing, t_hw, plots, level: float
) -> ReportPdf:
    doc = ReportPdf(
        f"Siamese-network ablations: {name}",
        "Heads, losses and margins, measured against the documented claims (CLAIMS.md)",
    )
    doc.heading("1", "Findings", landscape=True)
    doc.paragraph(
        "One row per documented claim these studies test. Each verdict follows the rule written in its "
        f"row, applied to {level * 100:.4g} % t-intervals over seeds (a single seed gives no interval). The "
        "source's number is on its data; ours on the data variant named beside it."
    )
    doc.table(t_findings, size=7.2)

    doc.heading("2", "Results by cell")
    tuned = sum(s.tune_runs for s in studies)
    text = (
        "Every cell of each study: test accuracy at the sources' fixed rule (same when d < 0.5), ROC AUC, and "
        "accuracy at a threshold chosen on validation data, as mean ± sd over seeds."
    )
    text += (
        f" Only grid runs are reported; the {tuned} tuning runs chose hyperparameters and are not results."
        if tuned
        else " These studies had no tuning phase: every cell uses the recipe's hyperparameters."
    )
    doc.paragraph(text)
    for i, table in enumerate(t_results, start=1):
        doc.heading(f"2.{i}", studies[i - 1].name, level=2)
        doc.table(table)

    doc.heading("3", "Pairwise comparisons")
    doc.paragraph(
        "The comparisons that decide between the accounts of C2 and C3, and contrastive against triplet "
        "loss per head, each within one study. B − A in points of accuracy or in AUC."
    )
    for i, table in enumerate(t_compare, start=1):
        doc.heading(f"3.{i}", studies[i - 1].name, level=2)
        if table.view.empty:
            doc.paragraph("None of the compared cell pairs ran in this study.")
        else:
            doc.table(table, size=7)

    for i, plot in enumerate(plots, start=1):
        doc.figure(
            plot.figure, f"4.{i}", plot.title, plot.caption, plot.bottom, section=("4", "Figures") if i == 1 else None
        )

    doc.heading("5", "Provenance")
    doc.paragraph(
        "What produced these numbers, read from the runs' tags and parameters, and every expected "
        "cell x seed that has no finished run."
    )
    doc.heading("5.1", "Runs", level=2)
    doc.table(t_prov)
    doc.heading("5.2", "Missing or failed runs", level=2)
    if t_missing.view.empty:
        doc.paragraph("None: every expected cell x seed has a finished run.")
        if t_missing.note and "re-run" in t_missing.note:
            doc.paragraph(t_missing.note, italic=True)
    else:
        doc.table(t_missing)
    doc.heading("5.3", "Hardware and software", level=2)
    doc.table(t_hw)
    return doc


def _markdown(name: str, studies: list[Study], tables: list[Table], plots: list[Plot]) -> str:
    parts = [f"# Siamese-network ablations: {name}", "", "Studies: " + "; ".join(_summary(s) for s in studies), ""]
    for table in tables:
        parts += [f"## {table.title}", "", table.markdown(), ""]
        if table.note:
            parts += [table.note, ""]
    parts += ["## Figures", ""]
    for plot in plots:
        parts += [f"### {plot.title}", "", f"![{plot.title}](figures/{plot.key}.png)", "", plot.caption, ""]
    return "\n".join(parts)
