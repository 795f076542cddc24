"""The findings table: one row per claim, what the source reports, what we measure, the verdict,
and the rule and reason that decided it (CSV columns for machines, a view for the PDF)."""

from __future__ import annotations

import math

import pandas as pd

from siamese_bench.report.evidence import RETRIEVAL_NAMES
from siamese_bench.report.findings import Finding
from siamese_bench.report.looks import ALPHA, ONE_LOOK, Looks
from siamese_bench.report.rules import rule_text
from siamese_bench.report.tables import Table


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


FINDINGS_COLUMNS = [
    "claim_id",
    "claim",
    "source",
    "cell",
    "study",
    "dataset_variant",
    "epochs",
    "n_seeds",
    "test_acc_mean",
    "test_acc_ci_low",
    "test_acc_ci_high",
    "test_auc_mean",
    "test_auc_ci_low",
    "test_auc_ci_high",
    "train_acc_mean",
    "collapsed_runs",
    "oneshot_acc_mean",
    "oneshot_pixels_acc",
    "oneshot_acc_ci_low",
    "oneshot_acc_ci_high",
    "diverged_seeds",
    "retrieval_precision_at_1",
    "retrieval_r_precision",
    "retrieval_map_at_r",
    "compared_with",
    "compared_metric",
    "smallest_effect",
    "diff_mean",
    "diff_ci_low",
    "diff_ci_high",
    "n_paired",
    "p_value",
    "p_holm",
    "all_evidence",
    "verdict",
    "rule",
    "reason",
]


def findings_table(found: list[Finding], missing: list[str], looks: Looks = ONE_LOOK) -> Table:
    level = looks.level()
    data, view = [], []
    for f in found:
        d = f.decided_on
        data.append(
            {
                "claim_id": f.row.id,
                "claim": f.row.claim,
                "source": f.row.source,
                "cell": d.cell if d else "",
                "study": d.study if d else "",
                "dataset_variant": d.variant if d else "",
                "epochs": d.epochs if d else None,
                "n_seeds": d.acc.n if d else 0,
                "test_acc_mean": _num(d.acc.mean) if d else None,
                "test_acc_ci_low": _num(d.acc.lo) if d else None,
                "test_acc_ci_high": _num(d.acc.hi) if d else None,
                "test_auc_mean": _num(d.auc.mean) if d else None,
                "test_auc_ci_low": _num(d.auc.lo) if d else None,
                "test_auc_ci_high": _num(d.auc.hi) if d else None,
                "train_acc_mean": _num(d.train.mean) if d else None,
                "collapsed_runs": d.collapsed if d else None,
                "oneshot_acc_mean": _num(d.oneshot.mean) if d and d.oneshot else None,
                "oneshot_pixels_acc": _num(d.oneshot_pixels) if d else None,
                "oneshot_acc_ci_low": _num(d.oneshot.lo) if d and d.oneshot else None,
                "oneshot_acc_ci_high": _num(d.oneshot.hi) if d and d.oneshot else None,
                "diverged_seeds": f.diverged,
                **{
                    f"retrieval_{k.split('/')[1]}": _num(d.retrieval[k].mean)
                    if d and d.retrieval and k in d.retrieval
                    else None
                    for k in RETRIEVAL_NAMES
                },
                "smallest_effect": f.row.delta if f.row.versus else None,
                "p_value": _num(f.p),
                "p_holm": _num(f.p_holm),
                "compared_with": f.versus_cell,
                "compared_metric": f.row.metric if f.row.versus else "",
                "diff_mean": _num(f.paired.diff.mean) if f.paired else None,
                "diff_ci_low": _num(f.paired.diff.lo) if f.paired else None,
                "diff_ci_high": _num(f.paired.diff.hi) if f.paired else None,
                "n_paired": f.paired.n if f.paired else None,
                "all_evidence": " | ".join(e.text() for e in f.evidence),
                "verdict": f.verdict,
                "rule": rule_text(f.row, looks),
                "reason": f.reason,
            }
        )
        ours = (
            "\n".join(("▸ " if e is d and len(f.evidence) > 1 else "") + e.text() for e in f.evidence)
            or "no finished run"
        )
        view.append(
            {
                "Claim": f"{f.row.id}: {f.row.claim}",
                "Source reports": f.row.source,
                "We measure": ours,
                "Verdict": f.verdict,
                "Rule, and why": f"Rule: {rule_text(f.row, looks)}.\nWhy: {f.reason}.",
            }
        )
    ci, alpha, per_look = f"{level * 100:.4g} %", ALPHA, looks.per_look()
    note = (
        f"Test accuracy at the fixed rule d < 0.5 with a {ci} t-interval over seeds (clipped to [0, 100]), "
        "and ROC AUC. ▸ marks the evidence that decided the verdict: the preferred data variant with two seeds "
        "or more (full MNIST, else mnist-5k, else digits; Omniglot at the largest image size). Comparison rows "
        "are decided on the seed-paired difference against the compared cell, named in the reason, with the "
        "smallest effect that matters (δ) per metric. Every row's verdict rests on one-sided tests at "
        f"{per_look * 100:.3g} % (equivalently, {ci} intervals)"
        + (
            f" at each of decide's {looks.describe()}, a level calibrated so that a false verdict over all of "
            f"them stays at {alpha * 100:.3g} %"
            if looks.sequential
            else ""
        )
        + ". Rows are corrected in families fixed by the claims file (a family: the rows whose id starts with "
        "the same word, e.g. C3's five heads): each reason gives the raw p-value"
        + (", its sequential p-value over the looks" if looks.sequential else "")
        + " and the Holm-adjusted one over its family (a cell picked as the best of m counting m times), and "
        f"a verdict whose adjusted p exceeds {alpha:.3g} is shown as inconclusive."
    )
    if missing:
        note += f" Not covered: {', '.join(missing)}."
    view_cols = ["Claim", "Source reports", "We measure", "Verdict", "Rule, and why"]
    return Table(
        "findings",
        "Findings",
        pd.DataFrame(data, columns=FINDINGS_COLUMNS),
        pd.DataFrame(view, columns=view_cols),
        widths={"Claim": 1.45, "Source reports": 1.15, "We measure": 2.85, "Verdict": 0.72, "Rule, and why": 2.75},
        note=note,
    )
