"""Claim verdicts: the rules, as data, that turn measured intervals into
reproduced / contradicted / inconclusive for the claims of CLAIMS.md.

A claim row names a cell (head, loss, margin), the source's number and data, and a rule.
Evidence comes from the most preferred dataset variant that has at least two seeds (full
MNIST, else the mnist-5k subset, else digits); every variant measured is shown beside it.
The rule text goes into the table, so a reader sees what decided each verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from siamese_bench.report.load import Study, best_cell, match, variant_rank
from siamese_bench.report.stats import Interval, t_interval
from siamese_bench.report.tables import Table

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)

WORKS_ACC = 0.90  # "it works": test accuracy at the fixed rule, CI lower bound at least this
CHANCE_ACC = 0.55  # "chance": accuracy CI upper bound at most this ...
CHANCE_AUC = 0.60  # ... and ROC AUC CI upper bound at most this
FULL_MNIST = "mnist-full"
MIN_SEEDS = 2  # a t-interval needs two values


@dataclass(frozen=True)
class Evidence:
    """One cell's finished runs on one dataset variant."""

    study: str
    variant: str
    cell: str
    epochs: int
    runs: pd.DataFrame
    acc: Interval  # test/acc, fixed rule d < 0.5
    auc: Interval  # test/auc
    train: Interval  # train_eval/acc

    def text(self) -> str:
        auc = self.auc.text(scale=1, digits=3) if self.auc.has_interval else f"{self.auc.mean:.3f}"
        return (f"{self.variant} ({self.study}, {self.epochs} epochs): test acc {self.acc.text()} %, "
                f"AUC {auc}; train acc {self.train.mean * 100:.2f} %")


@dataclass(frozen=True)
class Rule:
    text: str
    judge: Callable[[Evidence], tuple[str, str]]


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def _works(ev: Evidence) -> tuple[str, str]:
    a = ev.acc
    if not a.has_interval:
        return INCONCLUSIVE, f"n={a.n}: no interval"
    if a.lo >= WORKS_ACC:
        return REPRODUCED, f"acc CI lower bound {_pct(a.lo)} ≥ {_pct(WORKS_ACC)}"
    if a.hi < WORKS_ACC:
        return CONTRADICTED, f"acc CI upper bound {_pct(a.hi)} < {_pct(WORKS_ACC)}"
    return INCONCLUSIVE, f"acc CI [{_pct(a.lo)}, {_pct(a.hi)}] straddles {_pct(WORKS_ACC)}"


def _chance(ev: Evidence) -> tuple[str, str]:
    a, u = ev.acc, ev.auc
    if not (a.has_interval and u.has_interval):
        return INCONCLUSIVE, f"n={a.n}: no interval"
    if a.hi <= CHANCE_ACC and u.hi <= CHANCE_AUC:
        return REPRODUCED, f"acc CI upper {_pct(a.hi)} ≤ {_pct(CHANCE_ACC)} and AUC CI upper {u.hi:.3f} ≤ {CHANCE_AUC}"
    if a.lo > CHANCE_ACC or u.lo > CHANCE_AUC:
        return CONTRADICTED, (f"it learns: acc CI lower {_pct(a.lo)}, AUC CI lower {u.lo:.3f} "
                              f"(above {_pct(CHANCE_ACC)} or {CHANCE_AUC})")
    return INCONCLUSIVE, f"acc CI [{_pct(a.lo)}, {_pct(a.hi)}], AUC CI [{u.lo:.3f}, {u.hi:.3f}] overlap the chance bounds"


RULES: dict[str, Rule] = {
    "works": Rule(f"reproduced if the test acc (d < 0.5) 95 % CI lower bound ≥ {WORKS_ACC:.0%}; contradicted "
                  f"if its upper bound < {WORKS_ACC:.0%}; else inconclusive (also with n < {MIN_SEEDS} seeds)",
                  _works),
    "chance": Rule(f"reproduced if at chance: test acc CI upper bound ≤ {CHANCE_ACC:.0%} and AUC CI upper "
                   f"≤ {CHANCE_AUC}; contradicted if acc CI lower > {CHANCE_ACC:.0%} or AUC CI lower > "
                   f"{CHANCE_AUC} (it learns); else inconclusive (also with n < {MIN_SEEDS} seeds)", _chance),
}


@dataclass(frozen=True)
class ClaimRow:
    id: str
    claim: str
    source: str  # the source's number and the data it is on
    select: dict[str, Any]  # the cell: head, loss, margin
    rule: str  # key of RULES
    reference: float | None = None  # source's test accuracy, checked on full MNIST only
    tolerance: float = 0.015

    def rule_text(self) -> str:
        text = RULES[self.rule].text
        if self.reference is not None:
            text += (f"; and on full MNIST the mean within {self.tolerance * 100:.1f} points of "
                     f"{self.reference * 100:.2f} % (contradicted if further; inconclusive without a full-MNIST run)")
        return text


M1 = {"loss": "contrastive", "margin": 1}
KERAS_DATA = "full MNIST (60,000 / 10,000 images), Keras mnist_siamese recipe, 20 epochs"

# The claims of ../shared/CLAIMS.md that MNIST grid studies can test. Rows whose cell no study
# ran are left out of the table and listed as not covered.
CLAIMS: list[ClaimRow] = [
    ClaimRow("C1", "euclidean + contrastive (m = 1) works", f"test 97.42 %, train 99.55 %; {KERAS_DATA}",
             {"head": "euclidean", **M1}, "works", reference=0.9742),
    ClaimRow("C2", "subtract + Dense(1, sigmoid), contrastive on 1 − p, does not learn (chance)",
             f"test 48.29 %, train 48.64 %; {KERAS_DATA}", {"head": "subtract-dense", **M1}, "chance"),
    ClaimRow("C3 subtract-mlp", "hidden Dense layers after the subtraction fix C2 (the answer; also the "
             "odd-function account)", "proposed fix, no number", {"head": "subtract-mlp", **M1}, "works"),
    ClaimRow("C3 abs-diff-dense", "|a − b| → Dense(1, sigmoid) fixes C2 (odd-function account: a symmetric "
             "feature)", "predicted, no number", {"head": "abs-diff-dense", **M1}, "works"),
    ClaimRow("C3 square-diff-dense", "(a − b)² → Dense(1, sigmoid) fixes C2 (odd-function account)",
             "predicted, no number", {"head": "square-diff-dense", **M1}, "works"),
    ClaimRow("C3 one-minus-diff-dense", "1 − (a − b) → Dense stays at chance (odd-function account; the answer "
             "proposed it as a fix)", "proposed fix, no number", {"head": "one-minus-diff-dense", **M1}, "chance"),
    ClaimRow("C3 reciprocal-dense", "normalised reciprocal of a − b → Dense stays at chance (odd-function "
             "account; the answer proposed it as a fix)", "proposed fix, no number",
             {"head": "reciprocal-dense", **M1}, "chance"),
]
ALL_CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6", "K1")


@dataclass(frozen=True)
class Finding:
    row: ClaimRow
    evidence: list[Evidence]  # preferred variant first
    decided_on: Evidence | None
    verdict: str
    reason: str
    failed_runs: int

    @property
    def headline(self) -> Evidence | None:
        return self.evidence[0] if self.evidence else None


def gather(studies: list[Study], select: dict[str, Any]) -> tuple[list[Evidence], int]:
    """Per dataset variant, the study and cell with the most seeds; plus failed runs seen."""
    best: dict[str, Evidence] = {}
    failed = 0
    for study in studies:
        failed += len(match(study.runs, select)) - len(match(study.complete, select))
        done = match(study.complete, select)
        for variant, rows in done.groupby("dataset_variant", sort=False):
            cell = best_cell(rows)
            runs = rows[rows["cell"] == cell].sort_values("seed")
            ev = Evidence(study.name, str(variant), cell, int(runs["epochs"].iloc[0]), runs,
                          t_interval(runs["test/acc"]), t_interval(runs["test/auc"]), t_interval(runs["train_eval/acc"]))
            if variant not in best or ev.acc.n > best[variant].acc.n:
                best[variant] = ev
    return sorted(best.values(), key=lambda e: variant_rank(e.variant)), failed


def judge(row: ClaimRow, evidence: list[Evidence]) -> tuple[Evidence | None, str, str]:
    if not evidence:
        return None, INCONCLUSIVE, "no finished run"
    decisive = next((e for e in evidence if e.acc.n >= MIN_SEEDS), evidence[0])
    verdict, why = RULES[row.rule].judge(decisive)
    reason = f"on {decisive.variant} (n={decisive.acc.n}): {why}"
    if row.reference is not None and verdict == REPRODUCED:
        full = next((e for e in evidence if e.variant == FULL_MNIST), None)
        ref = row.reference * 100
        if full is None:
            verdict = INCONCLUSIVE
            reason += f"; {ref:.2f} % is a full-MNIST number and no full-MNIST run exists"
        else:
            gap = (full.acc.mean - row.reference) * 100
            if abs(gap) <= row.tolerance * 100:
                reason += f"; full MNIST {full.acc.mean * 100:.2f} % is within {row.tolerance * 100:.1f} points of {ref:.2f} %"
            else:
                verdict = CONTRADICTED
                reason += (f"; but full MNIST {full.acc.mean * 100:.2f} % is {abs(gap):.2f} points "
                           f"{'below' if gap < 0 else 'above'} {ref:.2f} %")
    return decisive, verdict, reason


def covered(studies: list[Study], row: ClaimRow) -> bool:
    return any(not match(s.runs, row.select).empty for s in studies)


def findings(studies: list[Study], claims: list[ClaimRow] = CLAIMS) -> list[Finding]:
    out = []
    for row in claims:
        if not covered(studies, row):
            continue
        evidence, failed = gather(studies, row.select)
        decided, verdict, reason = judge(row, evidence)
        if failed:
            reason += f" ({failed} failed or unfinished run{'s' if failed > 1 else ''} not counted)"
        out.append(Finding(row, evidence, decided, verdict, reason, failed))
    return out


def not_covered(studies: list[Study], found: list[Finding]) -> list[str]:
    ids = {f.row.id.split()[0] for f in found}
    rows = [r.id for r in CLAIMS if not covered(studies, r) and r.id.split()[0] in ids]
    return rows + [c for c in ALL_CLAIM_IDS if c not in ids]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def findings_table(found: list[Finding], missing: list[str]) -> Table:
    data, view = [], []
    for f in found:
        d = f.decided_on
        data.append({
            "claim_id": f.row.id, "claim": f.row.claim, "source": f.row.source, "cell": d.cell if d else "",
            "study": d.study if d else "", "dataset_variant": d.variant if d else "", "epochs": d.epochs if d else None,
            "n_seeds": d.acc.n if d else 0, "test_acc_mean": _num(d.acc.mean) if d else None,
            "test_acc_ci_low": _num(d.acc.lo) if d else None, "test_acc_ci_high": _num(d.acc.hi) if d else None,
            "test_auc_mean": _num(d.auc.mean) if d else None, "test_auc_ci_low": _num(d.auc.lo) if d else None,
            "test_auc_ci_high": _num(d.auc.hi) if d else None, "train_acc_mean": _num(d.train.mean) if d else None,
            "all_evidence": " | ".join(e.text() for e in f.evidence),
            "verdict": f.verdict, "rule": f.row.rule_text(), "reason": f.reason,
        })
        ours = "\n".join(("▸ " if e is d and len(f.evidence) > 1 else "") + e.text() for e in f.evidence) \
            or "no finished run"
        view.append({"Claim": f"{f.row.id}: {f.row.claim}", "Source reports": f.row.source, "We measure": ours,
                     "Verdict": f.verdict, "Rule, and why": f"Rule: {f.row.rule_text()}.\nWhy: {f.reason}."})
    note = ("Numbers are test accuracy in % at the sources' fixed rule (same when d < 0.5) with a 95 % "
            "t-interval over seeds, and ROC AUC. ▸ marks the evidence the verdict was decided on (the most "
            "preferred dataset variant with at least two seeds: full MNIST, then mnist-5k, then digits).")
    if missing:
        note += f" Not covered by these studies: {', '.join(missing)}."
    return Table("findings", "Findings", pd.DataFrame(data), pd.DataFrame(view),
                 widths={"Claim": 1.5, "Source reports": 1.3, "We measure": 2.6, "Verdict": 0.8, "Rule, and why": 2.6},
                 note=note)
