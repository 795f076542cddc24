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
from siamese_bench.report.stats import MIN_SEEDS_TO_TELL, UNIT, Interval, Paired, paired_comparison, t_interval
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
    collapsed: int = 0  # runs whose embeddings collapsed (train.is_collapsed): reported as such
    oneshot: Interval | None = None  # 20-way one-shot accuracy (K1), when logged
    oneshot_pixels: float = math.nan  # the pixel nearest-neighbour baseline on the same runs

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
        text = (f"{self.variant} ({self.study}, {self.epochs} ep.): test acc {self.acc.text(unit=' %')}, "
                f"AUC {auc}; train acc {train}")
        if self.oneshot is not None and self.oneshot.n:
            background = ("the 30 background alphabets" if self.variant.startswith("omniglot-full")
                          else "Lake's two 5-alphabet small sets (fallback)")
            text += (f"; 20-way one-shot {self.oneshot.text(unit=' %')} (pixel nearest neighbour "
                     f"{_pct(self.oneshot_pixels)}; trained on {background})")
        if self.collapsed:
            text += f"; COLLAPSED in {self.collapsed} of {self.acc.n} runs (embeddings shrank to a point)"
        return text


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


def _at_least(iv: Interval, bar: float, name: str) -> tuple[str, str]:
    """Reproduced when the interval clears the bar, contradicted when it stays under it."""
    if not iv.has_interval:
        return INCONCLUSIVE, f"n={iv.n}: no interval" + (f" ({name} {_pct(iv.mean)})" if iv.n else "")
    if iv.lo >= bar:
        return REPRODUCED, f"{name} CI lower bound {_pct(iv.lo)} ≥ {_bar(bar)}"
    if iv.hi < bar:
        return CONTRADICTED, f"{name} CI upper bound {_pct(iv.hi)} < {_bar(bar)}"
    return INCONCLUSIVE, f"{name} CI [{_pct(iv.lo)}, {_pct(iv.hi)}] straddles {_bar(bar)}"


def _works(ev: Evidence) -> tuple[str, str]:
    return _at_least(ev.acc, WORKS_ACC, "acc")


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


ONESHOT_BAR = 0.70  # the low end of the 70-93 % re-implementations of Koch et al. report (K1)


def _above_chance(ev: Evidence) -> tuple[str, str]:
    u = ev.auc
    if not u.has_interval:
        return INCONCLUSIVE, _no_interval(ev)
    if u.lo > CHANCE_AUC:
        return REPRODUCED, f"AUC CI lower bound {u.lo:.3f} > {CHANCE_AUC}"
    if u.hi <= CHANCE_AUC:
        return CONTRADICTED, f"AUC CI upper bound {u.hi:.3f} ≤ {CHANCE_AUC}: at chance"
    return INCONCLUSIVE, f"AUC CI [{u.lo:.3f}, {u.hi:.3f}] straddles {CHANCE_AUC}"


def _oneshot(ev: Evidence) -> tuple[str, str]:
    if ev.oneshot is None or ev.oneshot.n == 0:
        return INCONCLUSIVE, "no one-shot accuracy logged"
    return _at_least(ev.oneshot, ONESHOT_BAR, "one-shot")


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
    "above-chance": Rule(f"reproduced if AUC CI low > {CHANCE_AUC}; contradicted if AUC CI high ≤ {CHANCE_AUC}; "
                         f"else (or n < {MIN_SEEDS}) inconclusive", _above_chance),
    "oneshot": Rule(f"reproduced if the 20-way one-shot accuracy CI low ≥ {_bar(ONESHOT_BAR)} (the low end of "
                    f"re-implementations); contradicted if CI high < {_bar(ONESHOT_BAR)} with Koch's encoder (a "
                    f"smaller one falling short is inconclusive); else (or n < {MIN_SEEDS}) inconclusive", _oneshot),
    # Comparison rows (ClaimRow.versus): judged on seed-paired differences, see judge_comparison.
    "better": Rule("reproduced if the paired difference (claimed better − compared cell) has a 95 % CI above 0; "
                   f"contradicted if below 0; else (or fewer than {MIN_SEEDS_TO_TELL} paired seeds) inconclusive; "
                   "decided on the preferred data variant, inconclusive when another variant gives the opposite "
                   "verdict",
                   lambda ev: (INCONCLUSIVE, "judged on the paired difference")),
}
METRIC_NAMES = {"test/auc": "test ROC AUC", "test/acc_tuned": "test acc at the validation threshold",
                "test/acc": "test acc (d < 0.5)"}


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
    versus: dict[str, Any] | None = None  # comparison rows: the cell `select` is claimed to beat
    metric: str = "test/auc"  # what a comparison row compares
    # What a run needs to be the claim's own setup (e.g. Koch's encoder for K1). Falling short
    # on a reduced setup (smaller net, smaller images) cannot contradict the claim: inconclusive.
    faithful: dict[str, Any] | None = None
    reduced_note: str = ""  # what the reduced setup lacks, for the reason

    def rule_text(self) -> str:
        text = RULES[self.rule].text
        if self.versus is not None:
            text += f", on {METRIC_NAMES.get(self.metric, self.metric)}, seeds paired within one study and data"
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

# C4: each piece of advice as its cell against the asker's baseline (benchmarks/vectors.yaml),
# on the C4-shaped pairs file (dataset variant "csv"). Cells are named by id: the study varies
# one thing at a time, and the id says which.
C4_DATA = ("csv",)
C4_BASE = {"cell": "head=euclidean"}
C4_SOURCE = "advice to the asker, no number (their data is not public; ours is C4-shaped, see README)"


def _c4(short: str, advice: str, cell: str, source: str = C4_SOURCE) -> ClaimRow:
    return ClaimRow(f"C4 {short}", advice, source, {"cell": cell}, "better", variants=C4_DATA, versus=C4_BASE)


SEQUENCES = ("japanese-vowels", "mnist-full-rows", "mnist-5k-rows")
MINING_DATA = ("mnist-full", "mnist-5k", *SEQUENCES)
OMNIGLOT = ("omniglot-full-*",)
TRIPLET_ANY = {"loss": "triplet", "head": "euclidean", "param.triplet_negatives": "any",
               "param.triplet_mining": "random"}
RANDOM_TRIPLETS = {"loss": "triplet", "param.triplet_mining": "random"}

CLAIMS += [
    _c4("L1", "L1 distance beats L2 in high dimensions", "head=l1"),
    _c4("margin 2", "a margin above 1 helps", "head=euclidean,margin=2"),
    _c4("linear embedding", "a linear (not relu) final embedding helps",
        "head=euclidean,encoder.final_activation=linear"),
    _c4("bigger net", "a bigger network helps", "head=euclidean,encoder.units=512"),
    ClaimRow("C4 dropout 0.5", "dropout 0.5 instead of 0.1 \"looks better\" but predicts worse",
             "observed by the asker, no number", C4_BASE, "better", variants=C4_DATA,
             versus={"cell": "head=euclidean,encoder.dropout=0.5"}),
    ClaimRow("C4 logits+BCE", "a linear output with BCE from logits beats sigmoid + BCE (|a − b| head, Adam)",
             "advice; the asker's sigmoid + BCE variant \"gave poor results\"",
             {"cell": "head=abs-diff-dense,loss=bce,optimizer=adam-keras"}, "better", variants=C4_DATA,
             versus={"cell": "head=abs-diff-dense,loss=bce-sigmoid,optimizer=adam-keras"}),
    ClaimRow("C5 semi-hard", "mined hard triplets beat random ones: semi-hard negatives (FaceNet)",
             "FaceNet's argument, no number in the source",
             {"loss": "triplet", "param.triplet_mining": "semi-hard"}, "better", variants=MINING_DATA,
             versus=RANDOM_TRIPLETS),
    ClaimRow("C5 batch-hard", "mined hard triplets beat random ones: the hardest negative in the batch",
             "the source's advice; FaceNet warns the hardest negatives can collapse the model",
             {"loss": "triplet", "param.triplet_mining": "batch-hard"}, "better", variants=MINING_DATA,
             versus=RANDOM_TRIPLETS),
    ClaimRow("C5 concat-dense", "a shared LSTM, outputs concatenated -> Dense(1, sigmoid), learns same-or-not "
             "on sequences", "the source's sequence example (LSTM(32)), no number",
             {"head": "concat-dense", "loss": "bce", "param.encoder": "lstm"}, "above-chance", variants=SEQUENCES),
    ClaimRow("C6", "triplet loss beats contrastive loss on \"same alphabet?\" (Omniglot)",
             "test 66.80 % vs 53.04 % (or, with the source's swapped figures, 83.25 % vs 53.04 %); "
             "105 x 105 inputs, background vs evaluation alphabets",
             TRIPLET_ANY, "better", variants=OMNIGLOT, metric="test/acc_tuned",
             versus={"loss": "contrastive", "head": "distance-bn-dense"}),
    ClaimRow("C6 negatives", "caveat: triplet negatives guaranteed to differ in alphabet beat C6's, which may "
             "share the anchor's alphabet", "raised as worth testing, no number",
             {**TRIPLET_ANY, "param.triplet_negatives": "other"}, "better", variants=OMNIGLOT,
             metric="test/acc_tuned", versus=TRIPLET_ANY),
    ClaimRow("K1", "Koch et al.'s siamese net (|a − b| -> weighted sigmoid, BCE) classifies 20-way one-shot",
             "about 92 % on Lake's 20 evaluation runs (re-implementations 70-93 %); 105 x 105, 30 background "
             "alphabets, affine distortions", {"head": "abs-diff-dense", "loss": "bce"}, "oneshot",
             variants=OMNIGLOT, faithful={"param.encoder": "koch", "param.encoder.width": "1.0",
                                          "dataset_variant": "omniglot-full-105"},
             reduced_note="not Koch's full-width network on 105 x 105 images"),
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
    paired: Paired | None = None  # comparison rows: claimed-better minus compared cell, by seed
    versus_cell: str = ""

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


def in_variants(column: pd.Series, variants: tuple[str, ...]) -> pd.Series:
    """Exact names, or prefixes written with a trailing * ("omniglot-full-*": any image size)."""
    keep = column.isin([v for v in variants if not v.endswith("*")])
    for prefix in (v[:-1] for v in variants if v.endswith("*")):
        keep |= column.astype(str).str.startswith(prefix)
    return keep


def gather(studies: list[Study], select: dict[str, Any],
           variants: tuple[str, ...] | None = None) -> list[Evidence]:
    """Per dataset variant (only `variants`, when given: a cell of the same head and loss on
    other data, e.g. C4's vector pairs, is no evidence for an MNIST claim), the study and cell
    closest to the recipe, then with the most seeds."""
    best: dict[str, Evidence] = {}
    for study in studies:
        done = match(study.complete, select)
        if variants is not None:
            done = done[in_variants(done["dataset_variant"], variants)] if not done.empty else done
        for variant, rows in done.groupby("dataset_variant", sort=False):
            top = rank_cells(rows).iloc[0]
            cell = str(top["cell"])
            runs = rows[rows["cell"] == cell].sort_values("seed")
            oneshot = runs["oneshot/acc"].dropna() if "oneshot/acc" in runs else pd.Series(dtype=float)
            ev = Evidence(study.name, str(variant), cell, int(runs["epochs"].iloc[0]), runs,
                          t_interval(runs["test/acc"], bounds=UNIT), t_interval(runs["test/auc"], bounds=UNIT),
                          t_interval(runs["train_eval/acc"], bounds=UNIT), score=int(top["score"]),
                          collapsed=int((runs["collapsed"] > 0).sum()) if "collapsed" in runs else 0,
                          oneshot=t_interval(oneshot, bounds=UNIT) if len(oneshot) else None,
                          oneshot_pixels=float(runs["oneshot_pixels/acc"].mean())
                          if "oneshot_pixels/acc" in runs else math.nan)
            if _better(ev, best.get(str(variant))):
                best[str(variant)] = ev
    return sorted(best.values(), key=lambda e: (variant_rank(e.variant), e.variant))


def unfinished(studies: list[Study], ev: Evidence | None, cells: tuple[str, ...]) -> int:
    """Seeds of the row's own cells (the claimed one and the one it is compared with) on the
    deciding study and data that have a run but no finished one: what the verdict is missing."""
    if ev is None:
        return 0
    study = next(s for s in studies if s.name == ev.study)
    count = 0
    for cell in filter(None, cells):
        tried = study.runs[(study.runs["cell"] == cell) & (study.runs["dataset_variant"] == ev.variant)] \
            if not study.runs.empty else study.runs
        done = study.complete
        done = done[(done["cell"] == cell) & (done["dataset_variant"] == ev.variant)] if not done.empty else done
        count += len(_key(tried) - _key(done))
    return count


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


def _paired_on(row: ClaimRow, ev: Evidence, study: Study) -> tuple[Paired, str] | None:
    """The seed-paired comparison of ev's cell against row.versus on ev's data, in ev's study."""
    done = study.complete
    rows = match(done[done["dataset_variant"] == ev.variant], row.versus)
    ranked = rank_cells(rows)
    if ranked.empty:
        return None
    versus_cell = str(ranked["cell"].iloc[0])
    rows = rows[rows["cell"] == versus_cell]
    a = {int(k): float(v) for k, v in zip(rows["seed"], rows[row.metric], strict=True)}
    b = {int(k): float(v) for k, v in zip(ev.runs["seed"], ev.runs[row.metric], strict=True)}
    return paired_comparison(a, b), versus_cell


def _paired_verdict(p: Paired) -> str:
    if not p.enough or not p.diff.has_interval or p.no_spread:
        return INCONCLUSIVE
    return REPRODUCED if p.diff.lo > 0 else CONTRADICTED if p.diff.hi < 0 else INCONCLUSIVE


def judge_comparison(row: ClaimRow, evidence: list[Evidence], studies: list[Study]
                     ) -> tuple[Evidence | None, str, str, Paired | None, str]:
    """A comparison row: on every data variant where both cells ran, the seed-paired difference
    of row.metric between the claimed-better cell and row.versus, within one study. The
    preferred variant decides, unless another gives the opposite verdict: then it depends on
    the data, and the row says so (inconclusive)."""
    by_name = {s.name: s for s in studies}
    name = METRIC_NAMES.get(row.metric, row.metric)
    scale, digits = (1, 3) if row.metric.endswith("auc") else (100, 2)
    judged = []
    for ev in evidence:
        found = _paired_on(row, ev, by_name[ev.study])
        if found is None:
            continue
        p, versus_cell = found
        diff = f"{p.diff.mean * scale:+.{digits}f}"
        if p.diff.has_interval:
            diff += f" [{p.diff.lo * scale:+.{digits}f}, {p.diff.hi * scale:+.{digits}f}]"
        verdict = _paired_verdict(p)
        why = {REPRODUCED: "CI above 0", CONTRADICTED: "CI below 0"}.get(
            verdict, "too few paired seeds" if not p.enough or not p.diff.has_interval
            else "identical runs" if p.identical
            else "every seed differs by the same amount (zero spread: no interval to read)" if p.no_spread
            else "CI contains 0")
        text = (f"on {ev.variant} ({ev.study}), {name}: {p.mean_b * scale:.{digits}f} vs {p.mean_a * scale:.{digits}f} "
                f"({versus_cell}), difference {diff} over {p.n} paired seeds: {why}")
        judged.append((ev, verdict, text, p, versus_cell))
    if not judged:
        return (evidence[0] if evidence else None), INCONCLUSIVE, \
            "the compared cell did not run on the same data", None, ""
    decisive = next((j for j in judged if j[3].enough), judged[0])
    ev, verdict, _, p, versus_cell = decisive
    reason = "; ".join(j[2] for j in judged)
    opposite = {REPRODUCED: CONTRADICTED, CONTRADICTED: REPRODUCED}.get(verdict)
    if opposite and any(j[1] == opposite for j in judged):
        verdict = INCONCLUSIVE
        reason += " — the data variants disagree: it depends on the data"
    return ev, verdict, reason, p, versus_cell


def covered(studies: list[Study], row: ClaimRow) -> bool:
    """A study ran the row's cell on the data the claim is about."""
    for study in studies:
        runs = match(study.runs, row.select)
        if not runs.empty and in_variants(runs["dataset_variant"], row.variants).any():
            return True
    return False


def findings(studies: list[Study], claims: list[ClaimRow] = CLAIMS) -> list[Finding]:
    out = []
    for row in claims:
        if not covered(studies, row):
            continue
        evidence = gather(studies, row.select, row.variants)
        paired, versus_cell = None, ""
        if row.versus is not None:
            decided, verdict, reason, paired, versus_cell = judge_comparison(row, evidence, studies)
        else:
            decided, verdict, reason = judge(row, evidence)
        if verdict == CONTRADICTED and row.faithful and decided is not None \
                and match(decided.runs, row.faithful).shape[0] < len(decided.runs):
            verdict = INCONCLUSIVE
            reason += f"; but on a reduced setup ({row.reduced_note}), which cannot contradict the claim"
        failed = unfinished(studies, decided, (decided.cell if decided else "", versus_cell))
        if failed:
            reason += f" ({failed} cell x seed run{'s' if failed > 1 else ''} of the compared cells failed or " \
                      "unfinished: not counted)"
        out.append(Finding(row, evidence, decided, verdict, reason, failed, paired, versus_cell))
    return out


def not_covered(studies: list[Study], found: list[Finding]) -> list[str]:
    ids = {f.row.id.split()[0] for f in found}
    rows = [r.id for r in CLAIMS if not covered(studies, r) and r.id.split()[0] in ids]
    return rows + [c for c in ALL_CLAIM_IDS if c not in ids]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


FINDINGS_COLUMNS = ["claim_id", "claim", "source", "cell", "study", "dataset_variant", "epochs", "n_seeds",
                    "test_acc_mean", "test_acc_ci_low", "test_acc_ci_high", "test_auc_mean", "test_auc_ci_low",
                    "test_auc_ci_high", "train_acc_mean", "collapsed_runs", "oneshot_acc_mean", "oneshot_pixels_acc",
                    "compared_with", "compared_metric", "diff_mean", "diff_ci_low", "diff_ci_high", "n_paired",
                    "all_evidence", "verdict", "rule", "reason"]


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
            "collapsed_runs": d.collapsed if d else None,
            "oneshot_acc_mean": _num(d.oneshot.mean) if d and d.oneshot else None,
            "oneshot_pixels_acc": _num(d.oneshot_pixels) if d else None,
            "compared_with": f.versus_cell, "compared_metric": f.row.metric if f.row.versus else "",
            "diff_mean": _num(f.paired.diff.mean) if f.paired else None,
            "diff_ci_low": _num(f.paired.diff.lo) if f.paired else None,
            "diff_ci_high": _num(f.paired.diff.hi) if f.paired else None,
            "n_paired": f.paired.n if f.paired else None,
            "all_evidence": " | ".join(e.text() for e in f.evidence),
            "verdict": f.verdict, "rule": f.row.rule_text(), "reason": f.reason,
        })
        ours = "\n".join(("▸ " if e is d and len(f.evidence) > 1 else "") + e.text() for e in f.evidence) \
            or "no finished run"
        view.append({"Claim": f"{f.row.id}: {f.row.claim}", "Source reports": f.row.source, "We measure": ours,
                     "Verdict": f.verdict, "Rule, and why": f"Rule: {f.row.rule_text()}.\nWhy: {f.reason}."})
    note = ("Test accuracy at the fixed rule d < 0.5 with a 95 % t-interval over seeds (clipped to [0, 100]), and "
            "ROC AUC. ▸ marks the evidence that decided the verdict: the preferred data variant with two seeds or "
            "more (full MNIST, else mnist-5k, else digits; Omniglot at the largest image size). Comparison rows "
            "are decided on the seed-paired difference against the compared cell, named in the reason.")
    if missing:
        note += f" Not covered: {', '.join(missing)}."
    view_cols = ["Claim", "Source reports", "We measure", "Verdict", "Rule, and why"]
    return Table("findings", "Findings", pd.DataFrame(data, columns=FINDINGS_COLUMNS),
                 pd.DataFrame(view, columns=view_cols),
                 widths={"Claim": 1.45, "Source reports": 1.15, "We measure": 2.85, "Verdict": 0.72,
                         "Rule, and why": 2.75},
                 note=note)
