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
ONESHOT = ("oneshot/acc", "20-way one-shot %", 100.0, 2)  # a column only where a study logged it
MIX = ("mix/acc_tuned", "mix acc % (val. threshold)", 100.0, 2)  # C6's pairs across both splits, where logged
# Retrieval on the test embeddings (Musgrave et al. 2020), columns where logged
RETRIEVAL = (
    ("retrieval/precision_at_1", "P@1", 1.0, 3),
    ("retrieval/r_precision", "R-prec.", 1.0, 3),
    ("retrieval/map_at_r", "MAP@R", 1.0, 3),
)


def cell_summary(study: Study) -> pd.DataFrame:
    """One row per expected cell and data variant (variants are never pooled): factor values, n,
    and mean/sd/CI of each result metric. A cell with no finished run gets one empty row, under
    the study's first variant."""
    done = study.complete
    variants = study.variants
    first = variants[0] if variants else ""
    finished = set(done["cell"]) if not done.empty else set()
    # whether a cell's loss takes a margin, as its runs say (a cell with no run: as its id says)
    uses_margin: pd.Series | dict[str, bool] = (
        study.runs.groupby("cell")["loss_uses_margin"].any() if not study.runs.empty else {}
    )
    rows = []
    for variant in variants or [""]:
        here = done[done["dataset_variant"] == variant] if not done.empty else done
        for cell in study.cells:
            runs = here[here["cell"] == cell] if not here.empty else here
            if runs.empty and (variant != first or cell in finished):
                continue  # finished on another variant only (its rows are there), or already listed
            row = {
                "study": study.name,
                "cell": cell,
                **parse_cell(cell),
                "dataset_variant": variant,
                "loss_uses_margin": bool(uses_margin.get(cell, True)),
                "n": len(runs),
                "seeds": " ".join(str(s) for s in sorted(runs["seed"])) if len(runs) else "",
            }
            for metric, *_ in (*RESULT_METRICS, MIX, ONESHOT, *RETRIEVAL):
                values: pd.Series | list[float] = runs[metric].dropna() if len(runs) and metric in runs else []
                iv = t_interval(values, bounds=UNIT)
                row.update(
                    {
                        f"{metric} mean": iv.mean,
                        f"{metric} sd": iv.sd,
                        f"{metric} n": iv.n,
                        f"{metric} ci_low": iv.lo,
                        f"{metric} ci_high": iv.hi,
                    }
                )
            row["collapsed"] = int((runs["collapsed"] > 0).sum()) if len(runs) and "collapsed" in runs else 0
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(mean: float, sd: float, n: int, scale: float, digits: int) -> str:
    if n == 0 or not math.isfinite(mean):
        return "–"
    if n == 1 or not math.isfinite(sd):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {sd * scale:.{digits}f}"


def _best_rows(summary: pd.DataFrame, metric: str, scale: float, digits: int) -> set[int]:
    """Row positions holding the best mean of `metric` per data variant, compared as displayed
    (rounded to `digits` at `scale`), so every displayed tie is marked."""
    shown = [round(m * scale, digits) if math.isfinite(m) else math.nan for m in summary[f"{metric} mean"]]
    out: set[int] = set()
    for variant in dict.fromkeys(summary["dataset_variant"]):
        rows = [i for i, v in enumerate(summary["dataset_variant"]) if v == variant and math.isfinite(shown[i])]
        if rows:
            top = max(shown[i] for i in rows)
            out |= {i for i in rows if shown[i] == top}
    return out


def results_table(study: Study, index: int) -> Table:
    summary = cell_summary(study)
    factors = study.factors
    # a factor a cell does not set (one-factor-at-a-time studies) shows "–": the base value
    view = summary[factors].astype(object).fillna("–") if not summary.empty else pd.DataFrame(columns=factors)
    if "margin" in view and not summary.empty:  # a loss without a margin (bce): its margin=1 cell stands for it
        view.loc[~summary["loss_uses_margin"].astype(bool), "margin"] = "–"
    view["n"] = summary["n"].astype(int) if not summary.empty else []
    best: set[tuple[int, str]] = set()
    for metric, title, scale, digits in RESULT_METRICS:
        if summary.empty:
            view[title] = []
            continue
        view[title] = [
            _fmt(m, s, n, scale, digits)
            for m, s, n in zip(summary[f"{metric} mean"], summary[f"{metric} sd"], summary["n"], strict=True)
        ]
        best |= {(i, title) for i in _best_rows(summary, metric, scale, digits)}
    for metric, title, scale, digits in (MIX, ONESHOT, *RETRIEVAL):
        if not summary.empty and summary[f"{metric} n"].sum() > 0:
            view[title] = [
                _fmt(m, sd, n, scale, digits)
                for m, sd, n in zip(
                    summary[f"{metric} mean"], summary[f"{metric} sd"], summary[f"{metric} n"], strict=True
                )
            ]
    if not summary.empty and summary["collapsed"].sum() > 0:  # a collapse is named, not a bare number
        view["collapsed"] = [
            f"{c} of {n}" if c else "" for c, n in zip(summary["collapsed"], summary["n"], strict=True)
        ]
    multi = len(study.variants) > 1
    if multi:  # variants are never pooled: each row is one cell on one variant
        view.insert(0, "data", list(summary["dataset_variant"]))
    variants = ", ".join(study.variants) or "no finished run"
    seeds = ", ".join(str(s) for s in study.seeds)
    note = (
        f"Mean ± sd over seeds ({seeds}); a single value where one seed finished, – where none did. "
        f"Best cell per column{' and data variant' if multi else ''} marked, all of them on a tie as shown "
        "(bold in Markdown, * in the PDF). Accuracy at d < 0.5 is the "
        'sources\' rule; the validation threshold is chosen on held-out training images. "collapsed": runs whose '
        "embeddings shrank to nearly one point (their numbers are a collapse, not a model)."
    )
    if any(title in view for _, title, *_ in RETRIEVAL):
        note += (
            " P@1, R-precision and MAP@R: retrieval of each test item's class among the others by the "
            "Euclidean distance of their embeddings (Musgrave et al. 2020). "
            + disagreements(summary, "test/auc", "retrieval/map_at_r")
        )
    return Table(
        f"results-{index}-{slug(study.name)}",
        f"Results of {study.name} ({variants})",
        summary,
        view,
        best=best,
        note=note,
    )


def disagreements(summary: pd.DataFrame, first: str, second: str, limit: int = 6) -> str:
    """Where two metrics rank a study's cells differently (per data variant, on the means, ties
    as displayed at 3 digits ignored): the sentence the results note carries."""
    pairs = []
    for variant, rows in summary.groupby("dataset_variant", sort=False):
        rows = rows[rows[f"{first} mean"].notna() & rows[f"{second} mean"].notna()]
        a = rows[f"{first} mean"].round(3).to_numpy()
        b = rows[f"{second} mean"].round(3).to_numpy()
        cells = list(rows["cell"])
        for i in range(len(cells)):
            for j in range(i + 1, len(cells)):
                if (a[i] - a[j]) * (b[i] - b[j]) < 0:
                    hi, lo = (i, j) if a[i] > a[j] else (j, i)
                    pairs.append(
                        f"{cells[hi]} over {cells[lo]} by AUC, the reverse by MAP@R"
                        + (f" ({variant})" if summary["dataset_variant"].nunique() > 1 else "")
                    )
    if summary.empty or summary[f"{second} n"].sum() == 0:
        return ""
    if not pairs:
        return "AUC and MAP@R rank the cells the same way."
    more = f"; and {len(pairs) - limit} more" if len(pairs) > limit else ""
    return (
        f"AUC and MAP@R disagree on {len(pairs)} pair{'s' if len(pairs) > 1 else ''} of cells: "
        + "; ".join(pairs[:limit])
        + more
        + "."
    )
