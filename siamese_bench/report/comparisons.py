"""The pairwise comparisons that matter, as data, and their paired statistics.

Each comparison is A vs B within one study (same data variant, same seeds): the per-seed
difference B - A, its mean, a 95 % paired t-interval, the paired t-test p-value and d_z.
Accuracy is compared at the validation-chosen threshold (heads differ in scale, so the
fixed d < 0.5 rule would favour some), and ROC AUC needs no threshold at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from siamese_bench.report.load import Study
from siamese_bench.report.select import best_cell, match
from siamese_bench.report.stats import MIN_SEEDS_TO_TELL, paired_comparison
from siamese_bench.report.tables import Table, slug

COMPARED_METRICS = (("test/acc_tuned", "acc % (val. thr.)", 100.0), ("test/auc", "ROC AUC", 1.0))
M1 = {"loss": "contrastive", "margin": 1}


@dataclass(frozen=True)
class Comparison:
    label: str
    a: dict[str, Any]
    b: dict[str, Any]
    why: str


COMPARISONS: list[Comparison] = [
    Comparison(
        "subtract-dense vs abs-diff-dense",
        {"head": "subtract-dense", **M1},
        {"head": "abs-diff-dense", **M1},
        "C3: does a symmetric |a − b| fix C2?",
    ),
    Comparison(
        "subtract-dense vs subtract-mlp",
        {"head": "subtract-dense", **M1},
        {"head": "subtract-mlp", **M1},
        "C3: do hidden layers after the subtraction fix C2?",
    ),
    Comparison(
        "euclidean vs abs-diff-dense",
        {"head": "euclidean", **M1},
        {"head": "abs-diff-dense", **M1},
        "a fixed distance against a learned weighted |a − b|",
    ),
]


def per_head_loss_comparisons(study: Study) -> list[Comparison]:
    """contrastive vs triplet at margin 1, for every head the study ran with both."""
    done = study.complete
    if done.empty:
        return []
    heads = list(dict.fromkeys(done["head"]))
    out = []
    for head in heads:
        a, b = {"head": head, **M1}, {"head": head, "loss": "triplet", "margin": 1}
        if not match(done, a).empty and not match(done, b).empty:
            out.append(Comparison(f"{head}: contrastive vs triplet", a, b, "loss at margin 1, same head"))
    return out


def _values(done: pd.DataFrame, select: dict[str, Any], metric: str) -> tuple[str | None, dict[int, float]]:
    """The best matching cell's per-seed values in `done` (the finished runs of one data variant)."""
    rows = match(done, select)
    cell = best_cell(rows)
    if cell is None:
        return None, {}
    rows = rows[rows["cell"] == cell]
    return cell, {int(s): float(v) for s, v in zip(rows["seed"], rows[metric], strict=True)}


def comparisons_table(study: Study, index: int) -> Table:
    """The comparisons one study can make (both cells ran), one row per comparison x metric."""
    data, view = [], []
    done = study.complete
    multi = len(study.variants) > 1
    # A comparison pairs runs of one data variant only: seeds pair up on the same data, never across.
    for variant in study.variants:
        here = done[done["dataset_variant"] == variant]
        for comp in COMPARISONS + per_head_loss_comparisons(study):
            for metric, title, scale in COMPARED_METRICS:
                cell_a, a = _values(here, comp.a, metric)
                cell_b, b = _values(here, comp.b, metric)
                if not a or not b:
                    continue
                p = paired_comparison(a, b)
                name_a, name_b = comp.label.split(" vs ")[0].split(": ")[-1], comp.label.split(" vs ")[1]
                data.append(
                    {
                        "study": study.name,
                        "dataset_variant": variant,
                        "comparison": comp.label,
                        "why": comp.why,
                        "metric": metric,
                        "cell_a": cell_a,
                        "cell_b": cell_b,
                        "n_paired_seeds": p.n,
                        "mean_a": p.mean_a,
                        "mean_b": p.mean_b,
                        "diff_b_minus_a": p.diff.mean,
                        "diff_ci_low": p.diff.lo,
                        "diff_ci_high": p.diff.hi,
                        "d_z": p.d_z,
                        "p_paired_t": p.p,
                        "reading": p.reading(name_a, name_b),
                    }
                )
                digits = 3 if scale == 1 else 2
                ci = (
                    f"[{p.diff.lo * scale:+.{digits}f}, {p.diff.hi * scale:+.{digits}f}]"
                    if p.diff.has_interval
                    else "–"
                )
                view.append(
                    {
                        **({"data": variant} if multi else {}),
                        "A vs B": comp.label,
                        "metric": title,
                        "n": p.n,
                        "A": f"{p.mean_a * scale:.{digits}f}",
                        "B": f"{p.mean_b * scale:.{digits}f}",
                        "B − A": f"{p.diff.mean * scale:+.{digits}f}",
                        "95 % CI (paired t)": ci,
                        "d_z": f"{p.d_z:.2f}" if math.isfinite(p.d_z) else "–",
                        "p": f"{p.p:.3f}" if math.isfinite(p.p) else "–",
                        "reading": p.reading(name_a, name_b),
                    }
                )
    note = (
        "B − A over seeds run in both cells (a seed fixes the split, the pairs and the initialisation, so "
        "the seeds pair up); d_z = mean / sd of the per-seed differences; p from a paired t-test. "
        f"With fewer than {MIN_SEEDS_TO_TELL} paired seeds a difference is shown but not read. "
        "Accuracy is at the validation-chosen threshold, so heads of different scales compare fairly."
    )
    variants = ", ".join(study.variants)
    return Table(
        f"comparisons-{index}-{slug(study.name)}",
        f"Pairwise comparisons in {study.name} ({variants})",
        pd.DataFrame(data),
        pd.DataFrame(view),
        widths={
            "data": 0.7,
            "A vs B": 1.9,
            "metric": 0.95,
            "n": 0.25,
            "A": 0.55,
            "B": 0.55,
            "B − A": 0.6,
            "95 % CI (paired t)": 1.15,
            "d_z": 0.45,
            "p": 0.45,
            "reading": 1.75,
        },
        note=note,
    )
