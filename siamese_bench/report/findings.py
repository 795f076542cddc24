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

from siamese_bench.report.load import Study, match, rank_cells, variant_rank
from siamese_bench.report.stats import UNIT, Interval, t_interval
from siamese_bench.report.tables import Table

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)

WORKS_ACC = 0.90  # "it works": test accuracy at the fixed rule, CI lower bound at least this
CHANCE_ACC = 0.55  # "chance": accuracy CI upper bound at most this ...
CHANCE_AUC = 0.60  # ... and ROC AUC CI upper bound at most this
LEARNS_AUC = 0.90  # "it learns" (C3's fixes): ROC AUC CI lower bound at least this
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
    score: int = 0  # recipe values the cell keeps (see load.RECIPE): ranks cells across studies

    @property
    def rank(self) -> tuple[int, int]:
        """Closer to the recipe first, then more seeds (the key load.best_cell ranks cells by)."""
        return self.score, self.acc.n

    def text(self) -> str:
        if self.auc.n == 0:
            auc = "– (not logged)"
        elif self.auc.has_interval:
            auc = self.auc.text(scale=1, digits=3)
        else:
            auc = _num3(self.auc.mean)
        train = f"{self.train.mean * 100:.2f} %" if math.isfinite(self.train.mean) else "–"
        return (f"{self.variant} ({self.study}, {self.epochs} ep.): test acc {self.acc.text(unit=' %')}, "
                f"AUC {auc}; train acc {train}")


@dataclass(frozen=True)
class Rule:
    text: str
    judge: Callable[[Evidence], tuple[str, str]]


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %" if math.isfinite(x) else "–"


def _num3(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "–"


def _no_interval(ev: Evidence) -> str:
    """Why acc and AUC together give no interval: name the metric that is missing."""
    a, u = ev.acc, ev.auc
    if a.n == 0:
        return "no test accuracy logged"
    if u.n == 0:
        return f"no AUC logged (test acc n={a.n})"
    if not a.has_interval:
        return f"n={a.n}: no interval"
    return f"AUC n={u.n}: no interval"


def _bar(x: float) -> str:
    return f"{x * 100:g} %"


def _works(ev: Evidence) -> tuple[str, str]:
    a = ev.acc
    if not a.has_interval:
        return INCONCLUSIVE, f"n={a.n}: no interval"
    if a.lo >= WORKS_ACC:
        return REPRODUCED, f"acc CI lower bound {_pct(a.lo)} ≥ {_bar(WORKS_ACC)}"
    if a.hi < WORKS_ACC:
        return CONTRADICTED, f"acc CI upper bound {_pct(a.hi)} < {_bar(WORKS_ACC)}"
    return INCONCLUSIVE, f"acc CI [{_pct(a.lo)}, {_pct(a.hi)}] straddles {_bar(WORKS_ACC)}"


def _chance(ev: Evidence) -> tuple[str, str]:
    a, u = ev.acc, ev.auc
    if not (a.has_interval and u.has_interval):
        return INCONCLUSIVE, _no_interval(ev)
    if a.hi <= CHANCE_ACC and u.hi <= CHANCE_AUC:
        return REPRODUCED, f"acc CI upper {_pct(a.hi)} ≤ {_bar(CHANCE_ACC)} and AUC CI upper {u.hi:.3f} ≤ {CHANCE_AUC}"
    if a.lo > CHANCE_ACC or u.lo > CHANCE_AUC:
        return CONTRADICTED, (f"it learns: acc CI lower {_pct(a.lo)}, AUC CI lower {u.lo:.3f} "
                              f"(above {_bar(CHANCE_ACC)} or {CHANCE_AUC})")
    return INCONCLUSIVE, (f"acc CI [{_pct(a.lo)}, {_pct(a.hi)}], AUC CI [{u.lo:.3f}, {u.hi:.3f}] overlap the "
                          "chance bounds")


def _learns(ev: Evidence) -> tuple[str, str]:
    a, u = ev.acc, ev.auc
    if not (a.has_interval and u.has_interval):
        return INCONCLUSIVE, _no_interval(ev)
    if u.lo >= LEARNS_AUC:
        return REPRODUCED, f"AUC CI lower bound {u.lo:.3f} ≥ {LEARNS_AUC}"
    if a.hi <= CHANCE_ACC and u.hi <= CHANCE_AUC:
        return CONTRADICTED, f"still at chance: acc CI upper {_pct(a.hi)}, AUC CI upper {u.hi:.3f}"
    return INCONCLUSIVE, f"AUC CI [{u.lo:.3f}, {u.hi:.3f}] neither ≥ {LEARNS_AUC} nor at chance"


RULES: dict[str, Rule] = {
    # C1: "works" at the sources' own rule and bar.
    "works": Rule(f"reproduced if test acc (d < 0.5) CI low ≥ {_bar(WORKS_ACC)}; contradicted if CI high "
                  f"< {_bar(WORKS_ACC)}; else (or n < {MIN_SEEDS}) inconclusive", _works),
    # C2 and the transforms the odd-function account says fail: indistinguishable from chance.
    "chance": Rule(f"reproduced if acc CI high ≤ {_bar(CHANCE_ACC)} and AUC CI high ≤ {CHANCE_AUC}; contradicted "
                   f"if acc CI low > {_bar(CHANCE_ACC)} or AUC CI low > {CHANCE_AUC}; else (or n < {MIN_SEEDS}) "
                   "inconclusive", _chance),
    # C3's fixes: the claim is that the head leaves chance and learns, not that it matches C1's
    # number on every data size, so it is judged on threshold-free AUC.
    "learns": Rule(f"reproduced if AUC CI low ≥ {LEARNS_AUC}; contradicted if still at chance (acc CI high ≤ "
                   f"{_bar(CHANCE_ACC)} and AUC CI high ≤ {CHANCE_AUC}); else (or n < {MIN_SEEDS}) inconclusive",
                   _learns),
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
    variants: tuple[str, ...] = ("mnist-full", "mnist-5k", "digits")  # the data the claim is about

    def rule_text(self) -> str:
        text = RULES[self.rule].text
        if self.reference is not None:
            text += (f"; reproduced also needs the full-MNIST mean within {self.tolerance * 100:.1f} points of "
                     f"{self.reference * 100:.2f} % (else inconclusive with no full-MNIST run); contradicted "
                     "whenever a full-MNIST mean is further")
        return text


M1 = {"loss": "contrastive", "margin": 1}
KERAS_DATA = "full MNIST (60k / 10k images), Keras recipe, 20 epochs"

# The claims of ../shared/CLAIMS.md that MNIST grid studies can test. Rows whose cell no study
# ran are left out of the table and listed as not covered.
CLAIMS: list[ClaimRow] = [
    ClaimRow("C1", "euclidean + contrastive (m = 1) works", f"test 97.42 %, train 99.55 %; {KERAS_DATA}",
             {"head": "euclidean", **M1}, "works", reference=0.9742),
    ClaimRow("C2", "subtract + Dense(1, sigmoid), contrastive on 1 − p, does not learn (chance)",
             f"test 48.29 %, train 48.64 %; {KERAS_DATA}", {"head": "subtract-dense", **M1}, "chance"),
    ClaimRow("C3 subtract-mlp", "hidden Dense layers after the subtraction fix C2 (the answer; also the "
             "odd-function account)", "proposed fix, no number", {"head": "subtract-mlp", **M1}, "learns"),
    ClaimRow("C3 abs-diff-dense", "|a − b| → Dense(1, sigmoid) fixes C2 (odd-function account: a symmetric "
             "feature)", "predicted, no number", {"head": "abs-diff-dense", **M1}, "learns"),
    ClaimRow("C3 square-diff-dense", "(a − b)² → Dense(1, sigmoid) fixes C2 (odd-function account)",
             "predicted, no number", {"head": "square-diff-dense", **M1}, "learns"),
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


def _key(frame: pd.DataFrame) -> set[tuple[str, int, str]]:
    if frame.empty:
        return set()
    return set(zip(frame["cell"], frame["seed"], frame["dataset_variant"], strict=True))


def _better(ev: Evidence, than: Evidence | None) -> bool:
    """Across studies, the same ranking as load.best_cell within one; ties go to the study name
    first in sort order, so the order studies are listed in never decides."""
    if than is None:
        return True
    return ev.rank > than.rank or (ev.rank == than.rank and (ev.study, ev.cell) < (than.study, than.cell))


def gather(studies: list[Study], select: dict[str, Any],
           variants: tuple[str, ...] | None = None) -> tuple[list[Evidence], int]:
    """Per dataset variant (only `variants`, when given: a cell of the same head and loss on
    other data, e.g. C4's vector pairs, is no evidence for an MNIST claim), the study and cell
    closest to the recipe, then with the most seeds; plus failed runs seen."""
    best: dict[str, Evidence] = {}
    failed = 0
    for study in studies:
        done = match(study.complete, select)
        tried = match(study.runs, select)
        if variants is not None:
            done = done[done["dataset_variant"].isin(variants)] if not done.empty else done
            tried = tried[tried["dataset_variant"].isin(variants)] if not tried.empty else tried
        failed += len(_key(tried) - _key(done))
        for variant, rows in done.groupby("dataset_variant", sort=False):
            top = rank_cells(rows).iloc[0]
            cell = str(top["cell"])
            runs = rows[rows["cell"] == cell].sort_values("seed")
            ev = Evidence(study.name, str(variant), cell, int(runs["epochs"].iloc[0]), runs,
                          t_interval(runs["test/acc"], bounds=UNIT), t_interval(runs["test/auc"], bounds=UNIT),
                          t_interval(runs["train_eval/acc"], bounds=UNIT), score=int(top["score"]))
            if _better(ev, best.get(str(variant))):
                best[str(variant)] = ev
    return sorted(best.values(), key=lambda e: (variant_rank(e.variant), e.variant)), failed


def judge(row: ClaimRow, evidence: list[Evidence]) -> tuple[Evidence | None, str, str]:
    if not evidence:
        return None, INCONCLUSIVE, "no finished run"
    decisive = next((e for e in evidence if e.acc.n >= MIN_SEEDS), evidence[0])
    verdict, why = RULES[row.rule].judge(decisive)
    reason = f"on {decisive.variant} (n={decisive.acc.n}): {why}"
    if row.reference is not None:
        # The full-MNIST gap applies whatever the first verdict: further than the tolerance
        # contradicts; no full-MNIST run keeps a "reproduced" from being claimed.
        full = next((e for e in evidence if e.variant == FULL_MNIST and e.acc.n > 0), None)
        ref = row.reference * 100
        if full is None:
            if verdict == REPRODUCED:
                verdict = INCONCLUSIVE
                reason += f"; {ref:.2f} % is a full-MNIST number and no full-MNIST run exists"
        else:
            gap = (full.acc.mean - row.reference) * 100
            if abs(gap) <= row.tolerance * 100:
                reason += (f"; full MNIST {full.acc.mean * 100:.2f} % is within {row.tolerance * 100:.1f} points "
                           f"of {ref:.2f} %")
            else:
                verdict = CONTRADICTED
                reason += (f"; but full MNIST {full.acc.mean * 100:.2f} % is {abs(gap):.2f} points "
                           f"{'below' if gap < 0 else 'above'} {ref:.2f} %")
    return decisive, verdict, reason


def covered(studies: list[Study], row: ClaimRow) -> bool:
    """A study ran the row's cell on the data the claim is about."""
    for study in studies:
        runs = match(study.runs, row.select)
        if not runs.empty and runs["dataset_variant"].isin(row.variants).any():
            return True
    return False


def findings(studies: list[Study], claims: list[ClaimRow] = CLAIMS) -> list[Finding]:
    out = []
    for row in claims:
        if not covered(studies, row):
            continue
        evidence, failed = gather(studies, row.select, row.variants)
        decided, verdict, reason = judge(row, evidence)
        if failed:
            reason += f" ({failed} cell x seed run{'s' if failed > 1 else ''} failed or unfinished: not counted)"
        out.append(Finding(row, evidence, decided, verdict, reason, failed))
    return out


def not_covered(studies: list[Study], found: list[Finding]) -> list[str]:
    ids = {f.row.id.split()[0] for f in found}
    rows = [r.id for r in CLAIMS if not covered(studies, r) and r.id.split()[0] in ids]
    return rows + [c for c in ALL_CLAIM_IDS if c not in ids]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


FINDINGS_COLUMNS = ["claim_id", "claim", "source", "cell", "study", "dataset_variant", "epochs", "n_seeds",
                    "test_acc_mean", "test_acc_ci_low", "test_acc_ci_high", "test_auc_mean", "test_auc_ci_low",
                    "test_auc_ci_high", "train_acc_mean", "all_evidence", "verdict", "rule", "reason"]


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
    note = ("Test accuracy at the fixed rule d < 0.5 with a 95 % t-interval over seeds (clipped to [0, 100]), and "
            "ROC AUC. ▸ marks the evidence that decided the verdict: full MNIST if it has two seeds or more, "
            "else mnist-5k, else digits.")
    if missing:
        note += f" Not covered: {', '.join(missing)}."
    view_cols = ["Claim", "Source reports", "We measure", "Verdict", "Rule, and why"]
    return Table("findings", "Findings", pd.DataFrame(data, columns=FINDINGS_COLUMNS),
                 pd.DataFrame(view, columns=view_cols),
                 widths={"Claim": 1.45, "Source reports": 1.15, "We measure": 2.85, "Verdict": 0.72,
                         "Rule, and why": 2.75},
                 note=note)
