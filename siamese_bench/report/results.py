"""The per-cell results table of a study: head x loss (x margin ...) by test accuracy at the
fixed rule, ROC AUC and accuracy at the validation-chosen threshold, mean ± sd over seeds."""

from __future__ import annotations

import math

import pandas as pd

from siamese_bench.report.load import Study, parse_cell
from siamese_bench.report.stats import UNIT, t_interval
from siamese_bench.report.tables import Table, slug

# (metric, column title, scale, digits)
RESULT_METRICS = (
    ("test/acc", "test acc % (d < 0.5)", 100.0, 2),
    ("test/auc", "ROC AUC", 1.0, 3),
    ("test/acc_tuned", "test acc % (val. threshold)", 100.0, 2),
)


def cell_summary(study: Study) -> pd.DataFrame:
    """One row per expected cell: factor values, n, and mean/sd/CI of each result metric."""
    done = study.complete
    rows = []
    for cell in study.cells:
        runs = done[done["cell"] == cell] if not done.empty else done
        row = {"study": study.name, "cell": cell, **parse_cell(cell),
               "dataset_variant": ",".join(sorted(set(runs["dataset_variant"]))) if len(runs) else "",
               "n": len(runs), "seeds": " ".join(str(s) for s in sorted(runs["seed"])) if len(runs) else ""}
        for metric, *_ in RESULT_METRICS:
            iv = t_interval(runs[metric], bounds=UNIT) if len(runs) else t_interval([])
            row.update({f"{metric} mean": iv.mean, f"{metric} sd": iv.sd,
                        f"{metric} ci_low": iv.lo, f"{metric} ci_high": iv.hi})
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(mean: float, sd: float, n: int, scale: float, digits: int) -> str:
    if n == 0 or not math.isfinite(mean):
        return "–"
    if n == 1 or not math.isfinite(sd):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {sd * scale:.{digits}f}"


def results_table(study: Study, index: int) -> Table:
    summary = cell_summary(study)
    factors = study.factors
    view = summary[factors].copy() if not summary.empty else pd.DataFrame(columns=factors)
    if "margin" in view and "loss" in view:  # bce has no margin: its margin=1 cell stands for it
        view.loc[view["loss"] == "bce", "margin"] = "–"
    view["n"] = summary["n"].astype(int) if not summary.empty else []
    best: set[tuple[int, str]] = set()
    for metric, title, scale, digits in RESULT_METRICS:
        if summary.empty:
            view[title] = []
            continue
        view[title] = [_fmt(m, s, n, scale, digits) for m, s, n in
                       zip(summary[f"{metric} mean"], summary[f"{metric} sd"], summary["n"], strict=True)]
        means = summary[f"{metric} mean"]
        if means.notna().any():
            top = means.max()
            best |= {(i, title) for i, m in enumerate(means) if math.isfinite(m) and m >= top - 1e-12}
    variants = ", ".join(study.variants) or "no finished run"
    seeds = ", ".join(str(s) for s in study.seeds)
    note = (f"Mean ± sd over seeds ({seeds}); a single value where one seed finished, – where none did. "
            "Best cell per column marked (bold in Markdown, * in the PDF). Accuracy at d < 0.5 is the "
            "sources' rule; the validation threshold is chosen on held-out training images.")
    return Table(f"results-{index}-{slug(study.name)}", f"Results of {study.name} ({variants})", summary, view,
                 best=best, note=note)
