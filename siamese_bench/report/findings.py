"""Claim verdicts: the rules, as data, that turn measured intervals into
reproduced / contradicted / inconclusive for the claims of CLAIMS.md.

A claim row names a cell (head, loss, margin), the source's number and data, and a rule.
Evidence comes from the most preferred dataset variant that has at least two seeds (full
MNIST, else the mnist-5k subset, else digits); every variant measured is shown beside it.
The rule text goes into the table, so a reader sees what decided each verdict.

Every rule is a pair of one-sided tests read off 95 % t-intervals over seeds (each at
ALPHA = 2.5 %): a bound clearing a bar, or an interval inside an equivalence band (two
one-sided tests). Each row carries the p-value of the test behind its verdict, and the
rows of one report are one family: a verdict stands only while its Holm-adjusted p is at
most ALPHA (see `findings`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from siamese_bench.errors import ConfigError
from siamese_bench.report.load import Study, diverged, match, parse_cell, rank_cells, variant_rank
from siamese_bench.report.stats import (
    ALPHA,
    MIN_SEEDS_TO_TELL,
    UNIT,
    Interval,
    Paired,
    holm,
    oneshot_interval,
    paired_comparison,
    t_interval,
)
from siamese_bench.report.tables import Table
from siamese_bench.yamlfile import check_keys, load_yaml

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)

WORKS_ACC = 0.90  # "it works": test accuracy at the fixed rule, CI lower bound at least this
# "At chance": ROC AUC equivalent to 0.5 within +-0.05, on both sides. Why 0.05: the heads that
# learn reach >= 0.90, so the band is a tenth of the way from chance to working; a chance cell's
# seeds spread by sd ~0.006 (C2's calibration, 10 seeds), so three seeds' 95 % interval
# (+-0.015) fits inside it; and an AUC of 0.45 or 0.55 is already a signal a user would act on.
CHANCE_AUC, CHANCE_MARGIN = 0.5, 0.05
CHANCE_LOW, CHANCE_HIGH = CHANCE_AUC - CHANCE_MARGIN, CHANCE_AUC + CHANCE_MARGIN
_BAND = f"[{CHANCE_LOW:g}, {CHANCE_HIGH:g}]"
LEARNS_AUC = 0.90  # "it learns" (C3's fixes): ROC AUC CI lower bound at least this
ONESHOT_BAR = 0.70  # the low end of the 70-93 % re-implementations of Koch et al. report (K1)
PICKS = ("recipe", "best-oneshot")  # how ClaimRow.pick chooses the evidence cell
ONESHOT_TRIALS = 400  # Lake's 20 runs x 20 test images, when a run did not log oneshot/trials
# The smallest difference that matters in an "A beats B" row, per metric: smaller effects are
# "no difference that matters" however many seeds make them significant.
SMALLEST_EFFECT = {"test/auc": 0.01, "test/acc": 0.01, "test/acc_tuned": 0.01, "mix/acc_tuned": 0.01,
                   "oneshot/acc": 0.02}
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
    diverged: int = 0  # seeds whose training diverged (NaN loss): outcomes of the method, not missing data
    retrieval: dict[str, Interval] | None = None  # retrieval/* metrics (precision@1, R-precision, MAP@R)

    @property
    def rank(self) -> tuple[int, int]:
        """Closer to the recipe first, then more seeds (the key load.best_cell ranks cells by)."""
        return self.score, self.acc.n

    @property
    def seeds_tried(self) -> int:
        return self.acc.n + self.diverged

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
        if self.retrieval:
            parts = [f"{RETRIEVAL_NAMES[k]} {iv.mean:.3f}" for k, iv in self.retrieval.items() if iv.n]
            if parts:
                text += "; retrieval " + ", ".join(parts)
        if self.oneshot is not None and self.oneshot.n:
            background = ("the 30 background alphabets" if self.variant.startswith("omniglot-full")
                          else "Lake's two 5-alphabet small sets (fallback)")
            text += (f"; 20-way one-shot {self.oneshot.text(unit=' %')} (interval includes the 400 trials' "
                     f"binomial error; pixel nearest neighbour {_pct(self.oneshot_pixels)}; trained on {background})")
        if self.collapsed:
            text += f"; COLLAPSED in {self.collapsed} of {self.acc.n} runs (embeddings shrank to a point)"
        if self.diverged:
            text += f"; DIVERGED in {self.diverged} of {self.seeds_tried} seeds (NaN loss)"
        return text


RETRIEVAL_NAMES = {"retrieval/precision_at_1": "P@1", "retrieval/r_precision": "R-prec",
                   "retrieval/map_at_r": "MAP@R"}


@dataclass(frozen=True)
class Judgement:
    """A verdict, why, and the p-value of the one-sided (or equivalence) test behind it; for an
    inconclusive verdict, the smaller p of the tests that could have decided (NaN: no test)."""

    verdict: str
    why: str
    p: float = math.nan


@dataclass(frozen=True)
class Rule:
    text: str
    judge: Callable[[Evidence], Judgement]


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %" if math.isfinite(x) else "–"


def _num3(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "–"


def _pval(p: float) -> str:
    """'= 0.012', or '< 0.0001' (to follow 'p ')."""
    return "= –" if not math.isfinite(p) else f"= {p:.2g}" if p >= 1e-4 else "< 0.0001"


def _min(*ps: float) -> float:
    finite = [p for p in ps if math.isfinite(p)]
    return min(finite) if finite else math.nan


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


def _at_least(iv: Interval, bar: float, name: str) -> Judgement:
    """Reproduced when the interval clears the bar, contradicted when it stays under it; one
    seed can be consistent with the bar but decides nothing."""
    if not iv.has_interval:
        if iv.n == 1:
            side = "consistent with" if iv.mean >= bar else "below"
            return Judgement(INCONCLUSIVE, f"n=1 ({name} {_pct(iv.mean)}, {side} {_bar(bar)}): one seed "
                             "cannot reproduce or contradict")
        return Judgement(INCONCLUSIVE, "no run: no interval")
    up, down = iv.p_above(bar), iv.p_below(bar)
    if iv.lo >= bar:
        return Judgement(REPRODUCED, f"{name} CI lower bound {_pct(iv.lo)} ≥ {_bar(bar)}", up)
    if iv.hi < bar:
        return Judgement(CONTRADICTED, f"{name} CI upper bound {_pct(iv.hi)} < {_bar(bar)}", down)
    return Judgement(INCONCLUSIVE, f"{name} CI [{_pct(iv.lo)}, {_pct(iv.hi)}] straddles {_bar(bar)}", _min(up, down))


def _band(u: Interval) -> str:
    return f"AUC CI [{u.lo:.3f}, {u.hi:.3f}]"


def _side_of_chance(u: Interval) -> str | None:
    """Where an AUC interval lies against the chance band: "inside" (equivalent to chance),
    "above" (learns), "below" (an inverted signal: learned backwards), or None (overlaps an edge)."""
    if u.lo >= CHANCE_LOW and u.hi <= CHANCE_HIGH:
        return "inside"
    if u.lo > CHANCE_HIGH:
        return "above"
    if u.hi < CHANCE_LOW:
        return "below"
    return None


def _chance_tests(u: Interval) -> dict[str | None, float]:
    """The p-value behind each side (None: the smallest of the three, for an undecided row)."""
    ps = {"inside": u.p_within(CHANCE_LOW, CHANCE_HIGH), "above": u.p_above(CHANCE_HIGH),
          "below": u.p_below(CHANCE_LOW)}
    return {**ps, None: _min(*ps.values())}


INVERTED = f"an inverted signal, learned backwards: AUC CI wholly below {CHANCE_LOW}"


def _works(ev: Evidence) -> Judgement:
    return _at_least(ev.acc, WORKS_ACC, "acc")


def _by_side(ev: Evidence, learned: str, inside: str) -> Judgement:
    """A claim read off where the AUC interval lies against the chance band: `learned` and
    `inside` are the verdicts for "wholly above" and "inside"; wholly below (an inverted
    signal) contradicts both kinds of claim, and overlapping an edge decides nothing."""
    u = ev.auc
    if not u.has_interval:
        return Judgement(INCONCLUSIVE, _no_interval(ev) if u.n else "no AUC logged")
    side, p = _side_of_chance(u), _chance_tests(u)
    verdict, why = {
        "inside": (inside, f"at chance: {_band(u)} inside the chance band {_BAND}"),
        "above": (learned, f"it learns: {_band(u)} wholly above {CHANCE_HIGH}"),
        "below": (CONTRADICTED, f"{INVERTED} ({_band(u)})"),
        None: (INCONCLUSIVE, f"{_band(u)} overlaps an edge of the chance band {_BAND}"),
    }[side]
    return Judgement(verdict, why, p[side])


def _chance(ev: Evidence) -> Judgement:
    return _by_side(ev, learned=CONTRADICTED, inside=REPRODUCED)


def _learns(ev: Evidence) -> Judgement:
    u = ev.auc
    if not u.has_interval:
        return Judgement(INCONCLUSIVE, _no_interval(ev) if u.n else "no AUC logged")
    if u.lo >= LEARNS_AUC:
        return Judgement(REPRODUCED, f"AUC CI lower bound {u.lo:.3f} ≥ {LEARNS_AUC}", u.p_above(LEARNS_AUC))
    p = _chance_tests(u)
    if _side_of_chance(u) == "inside":
        return Judgement(CONTRADICTED, f"still at chance: {_band(u)} inside {_BAND}", p["inside"])
    return Judgement(INCONCLUSIVE, f"{_band(u)} neither ≥ {LEARNS_AUC} nor inside the chance band",
                     _min(u.p_above(LEARNS_AUC), p["inside"]))


def _above_chance(ev: Evidence) -> Judgement:
    return _by_side(ev, learned=REPRODUCED, inside=CONTRADICTED)


def _oneshot(ev: Evidence) -> Judgement:
    if ev.oneshot is None or ev.oneshot.n == 0:
        return Judgement(INCONCLUSIVE, "no one-shot accuracy logged")
    return _at_least(ev.oneshot, ONESHOT_BAR, "one-shot")


RULES: dict[str, Rule] = {
    # C1: "works" at the sources' own rule and bar.
    "works": Rule(f"reproduced if test acc (d < 0.5) 95 % CI low ≥ {_bar(WORKS_ACC)}; contradicted if CI high "
                  f"< {_bar(WORKS_ACC)}; else (or n < {MIN_SEEDS}) inconclusive", _works),
    # C2 and the transforms the odd-function account says fail: equivalent to chance, both sides.
    "chance": Rule(f"reproduced if the test AUC 95 % CI lies inside the chance band {_BAND} (equivalence, two "
                   f"one-sided tests); contradicted if it lies wholly above it (it learns) or wholly below it (an "
                   f"inverted signal: learned backwards); else (or n < {MIN_SEEDS}) inconclusive", _chance),
    # C3's fixes: the claim is that the head leaves chance and learns, not that it matches C1's
    # number on every data size, so it is judged on threshold-free AUC.
    "learns": Rule(f"reproduced if AUC 95 % CI low ≥ {LEARNS_AUC}; contradicted if still at chance (AUC CI inside "
                   f"{_BAND}); else (or n < {MIN_SEEDS}) inconclusive", _learns),
    "above-chance": Rule(f"reproduced if AUC 95 % CI low > {CHANCE_HIGH}; contradicted if the CI lies inside the "
                         f"chance band {_BAND} or wholly below it; else (or n < {MIN_SEEDS}) inconclusive",
                         _above_chance),
    "oneshot": Rule(f"reproduced if the 20-way one-shot accuracy 95 % CI low ≥ {_bar(ONESHOT_BAR)} (the low end "
                    f"of re-implementations; the interval adds the binomial error of the 400 fixed trials to the "
                    f"spread over seeds); contradicted if CI high < {_bar(ONESHOT_BAR)} with Koch's encoder (a "
                    f"smaller one falling short is inconclusive); else (or n < {MIN_SEEDS}) inconclusive", _oneshot),
    # Comparison rows (ClaimRow.versus): judged on seed-paired differences, see judge_comparison.
    "better": Rule("reproduced if the paired difference (claimed better − compared cell) has a 95 % CI above 0 "
                   "and a mean of at least the smallest effect that matters (δ); contradicted if the CI lies "
                   "below 0, or inside (−δ, δ) (no difference that matters); else (or fewer than "
                   f"{MIN_SEEDS_TO_TELL} paired seeds, or zero spread) inconclusive; decided on the preferred data "
                   "variant, inconclusive when another variant gives the opposite verdict",
                   lambda ev: Judgement(INCONCLUSIVE, "judged on the paired difference")),
}
METRIC_NAMES = {"test/auc": "test ROC AUC", "test/acc_tuned": "test acc at the validation threshold",
                "test/acc": "test acc (d < 0.5)",
                "mix/acc_tuned": "acc on pairs across training and test alphabets (C6's mix), validation threshold"}


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
    # Which matching cell is the evidence: "recipe" (closest to the recipe, then most seeds) or
    # "best-oneshot" (the highest mean one-shot accuracy: the best design a study found, K1's bar)
    pick: str = "recipe"

    def rule_text(self) -> str:
        text = RULES[self.rule].text
        if self.versus is not None:
            text += (f", on {METRIC_NAMES.get(self.metric, self.metric)} (δ = {self.smallest_effect:g}), seeds "
                     "paired within one study and data")
        if self.reference is not None:
            ref, tol = self.reference * 100, self.tolerance * 100
            text += (f"; reproduced also needs the full-MNIST 95 % CI inside {ref:.2f} ± {tol:.1f} % "
                     f"(equivalence to the source's number; else inconclusive, also with fewer than {MIN_SEEDS} "
                     "full-MNIST seeds); contradicted whenever the full-MNIST CI lies wholly outside that band")
        return text

    @property
    def smallest_effect(self) -> float:
        return SMALLEST_EFFECT.get(self.metric, 0.01)


CLAIM_ROWS = Path(__file__).with_name("claim_rows.yaml")


def load_claim_rows(path: Path = CLAIM_ROWS) -> list[ClaimRow]:
    """The report's claim rows, from their data file: each a claim of CLAIMS.md with the cell
    that tests it, the rule that decides it and the data it is about. Rows whose cell no study
    ran are left out of the table and listed as not covered."""
    raw = check_keys(load_yaml(path, "claim rows file"), {"notes", "rows"}, str(path))
    fields = {f.name for f in dataclasses.fields(ClaimRow)}
    rows = []
    for i, item in enumerate(raw.get("rows") or []):
        where = f"{path}: rows[{i}]"
        check_keys(item, fields, where)
        missing = sorted({"id", "claim", "source", "select", "rule"} - set(item))
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        if item["rule"] not in RULES:
            raise ConfigError(f"{where}: unknown rule {item['rule']!r}; valid: {', '.join(RULES)}")
        if item.get("pick", "recipe") not in PICKS:
            raise ConfigError(f"{where}: unknown pick {item['pick']!r}; valid: {', '.join(PICKS)}")
        if "variants" in item:
            item = {**item, "variants": tuple(item["variants"])}
        rows.append(ClaimRow(**item))
    return rows


CLAIMS: list[ClaimRow] = load_claim_rows()
ALL_CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6", "K1", "H1")


@dataclass(frozen=True)
class Finding:
    row: ClaimRow
    evidence: list[Evidence]  # preferred variant first
    decided_on: Evidence | None
    verdict: str
    reason: str
    failed_runs: int  # infrastructure failures (killed, lost, errors) of the row's cells: re-run, not counted
    paired: Paired | None = None  # comparison rows: claimed-better minus compared cell, by seed
    versus_cell: str = ""
    p: float = math.nan  # p-value of the test behind the verdict, before correction
    p_holm: float = math.nan  # Holm-adjusted over the report's rows
    diverged: int = 0  # seeds of the row's claimed cell that diverged, on the deciding data

    @property
    def headline(self) -> Evidence | None:
        return self.evidence[0] if self.evidence else None


def _better(ev: Evidence, than: Evidence | None, pick: str = "recipe") -> bool:
    """Across studies, the same ranking as load.best_cell within one (or by mean one-shot
    accuracy); ties go to the study name first in sort order, so the order studies are listed
    in never decides."""
    if than is None:
        return True
    key = (lambda e: (e.oneshot.mean,)) if pick == "best-oneshot" else (lambda e: e.rank)
    return key(ev) > key(than) or (key(ev) == key(than) and (ev.study, ev.cell) < (than.study, than.cell))


def lever_note(study: Study, ev: Evidence) -> str:
    """Each cell's one-shot mean against the study's base cell (the one with the fewest keys:
    in a one-lever-at-a-time spec, the cell the others change one lever of; else the best
    cell), what each changes from it, and the change that moved accuracy most: which lever
    mattered most."""
    done = study.complete
    here = done[(done["dataset_variant"] == ev.variant) & done["oneshot/acc"].notna()]
    means = {str(cell): (float(v.mean()), len(v)) for cell, v in here.groupby("cell")["oneshot/acc"]}
    fewest = min(len(parse_cell(c)) for c in means)
    bases = [c for c in means if len(parse_cell(c)) == fewest]
    ref = bases[0] if len(bases) == 1 else ev.cell
    base, (base_mean, base_n) = parse_cell(ref), means[ref]
    others = []
    for cell, (mean, n) in means.items():
        if cell == ref:
            continue
        own = parse_cell(cell)
        changed = [f"{k}={v}" for k, v in own.items() if base.get(k) != v]
        changed += [f"{k} as {ref}" for k in base if k not in own]
        others.append((mean - base_mean, ", ".join(changed) or cell, n))
    if not others:
        return "no other cell to compare"
    others.sort(reverse=True)
    listed = "; ".join(f"{what} {100 * (base_mean + d):.1f} % ({100 * d:+.1f}, n = {n})" for d, what, n in others)
    top = max(others, key=lambda o: abs(o[0]))  # the first of a tie: the larger gain
    return (f"against the base cell {ref} ({100 * base_mean:.1f} %, n = {base_n}), each lever changed: {listed}; "
            f"the lever that mattered most: {top[1]} ({100 * top[0]:+.1f} points)")


def in_variants(column: pd.Series, variants: tuple[str, ...]) -> pd.Series:
    """Exact names, or prefixes written with a trailing * ("omniglot-full-*": any image size)."""
    keep = column.isin([v for v in variants if not v.endswith("*")])
    for prefix in (v[:-1] for v in variants if v.endswith("*")):
        keep |= column.astype(str).str.startswith(prefix)
    return keep


def _unfinished_seeds(study: Study, cell: str, variant: str) -> tuple[set[int], set[int]]:
    """Seeds of a cell on one data variant that have a run but no finished one, split into
    (diverged: the training's NaN loss, an outcome of the method; lost: killed, lost or
    failed otherwise, which the sweep re-runs)."""
    runs, done = study.runs, study.complete
    if runs.empty:
        return set(), set()
    mine = runs[(runs["cell"] == cell) & (runs["dataset_variant"] == variant)]
    finished = set(done.loc[(done["cell"] == cell) & (done["dataset_variant"] == variant), "seed"]) \
        if not done.empty else set()
    open_seeds = set(mine["seed"]) - finished
    bad = set(mine.loc[diverged(mine), "seed"]) & open_seeds
    return bad, open_seeds - bad


def _oneshot_interval(runs: pd.DataFrame) -> Interval | None:
    values = runs["oneshot/acc"].dropna() if "oneshot/acc" in runs else pd.Series(dtype=float)
    if values.empty:
        return None
    trials = runs["oneshot/trials"].dropna() if "oneshot/trials" in runs else pd.Series(dtype=float)
    return oneshot_interval(values, int(trials.iloc[0]) if len(trials) else ONESHOT_TRIALS)


def _best_oneshot_cell(rows: pd.DataFrame) -> str | None:
    if "oneshot/acc" not in rows or rows["oneshot/acc"].isna().all():
        return None
    means = rows.groupby("cell")["oneshot/acc"].mean()
    return str(means.sort_index().idxmax())  # sorted first: a tie goes to the first cell id


def gather(studies: list[Study], select: dict[str, Any],
           variants: tuple[str, ...] | None = None, pick: str = "recipe") -> list[Evidence]:
    """Per dataset variant (only `variants`, when given: a cell of the same head and loss on
    other data, e.g. C4's vector pairs, is no evidence for an MNIST claim), the study and cell
    closest to the recipe, then with the most seeds; with pick="best-oneshot", the cell of
    highest mean one-shot accuracy."""
    best: dict[str, Evidence] = {}
    for study in studies:
        done = match(study.complete, select)
        if variants is not None:
            done = done[in_variants(done["dataset_variant"], variants)] if not done.empty else done
        for variant, rows in done.groupby("dataset_variant", sort=False):
            top = rank_cells(rows).iloc[0]
            cell = str(top["cell"])
            if pick == "best-oneshot":
                cell = _best_oneshot_cell(rows)
                if cell is None:
                    continue
                top = rank_cells(rows[rows["cell"] == cell]).iloc[0]
            runs = rows[rows["cell"] == cell].sort_values("seed")
            retrieval = {k: t_interval(runs[k], bounds=UNIT) for k in RETRIEVAL_NAMES if k in runs}
            ev = Evidence(study.name, str(variant), cell, int(runs["epochs"].iloc[0]), runs,
                          t_interval(runs["test/acc"], bounds=UNIT), t_interval(runs["test/auc"], bounds=UNIT),
                          t_interval(runs["train_eval/acc"], bounds=UNIT), score=int(top["score"]),
                          collapsed=int((runs["collapsed"] > 0).sum()) if "collapsed" in runs else 0,
                          oneshot=_oneshot_interval(runs),
                          oneshot_pixels=float(runs["oneshot_pixels/acc"].mean())
                          if "oneshot_pixels/acc" in runs else math.nan,
                          diverged=len(_unfinished_seeds(study, cell, str(variant))[0]),
                          retrieval={k: iv for k, iv in retrieval.items() if iv.n} or None)
            if _better(ev, best.get(str(variant)), pick):
                best[str(variant)] = ev
    return sorted(best.values(), key=lambda e: (variant_rank(e.variant), e.variant))


def unfinished(studies: list[Study], ev: Evidence | None, cells: tuple[str, ...]) -> int:
    """Seeds of the row's own cells (the claimed one and the one it is compared with) on the
    deciding study and data that have a run but no finished one, not counting divergence (an
    outcome, see Evidence.diverged): what the infrastructure lost and the verdict is missing."""
    if ev is None:
        return 0
    study = next(s for s in studies if s.name == ev.study)
    return sum(len(_unfinished_seeds(study, cell, ev.variant)[1]) for cell in filter(None, cells))


def _reference(row: ClaimRow, evidence: list[Evidence], j: Judgement) -> Judgement:
    """C1's absolute number: the full-MNIST interval against ref ± tolerance, an equivalence
    test. Wholly outside the band contradicts whatever the first verdict; inside it keeps a
    "reproduced" (p: the larger of the two tests, both must hold); anything else, including a
    single full-MNIST seed, cannot let "reproduced" stand."""
    ref, tol = row.reference, row.tolerance
    low, high = ref - tol, ref + tol
    band = f"{ref * 100:.2f} ± {tol * 100:.1f} %"
    full = next((e for e in evidence if e.variant == FULL_MNIST and e.acc.n > 0), None)
    demote = j.verdict == REPRODUCED
    if full is None:
        why = f"; {ref * 100:.2f} % is a full-MNIST number and no full-MNIST run exists"
        return Judgement(INCONCLUSIVE if demote else j.verdict, j.why + why, j.p)
    a = full.acc
    if not a.has_interval:
        inside = low <= a.mean <= high
        why = (f"; one full-MNIST seed ({_pct(a.mean)}) is {'consistent with' if inside else 'outside'} {band}, "
               "but one seed cannot decide")
        return Judgement(INCONCLUSIVE if demote else j.verdict, j.why + why, j.p)
    if a.hi < low or a.lo > high:
        p = a.p_below(low) if a.hi < low else a.p_above(high)
        return Judgement(CONTRADICTED, j.why + f"; but the full-MNIST acc CI [{_pct(a.lo)}, {_pct(a.hi)}] lies "
                         f"wholly {'below' if a.hi < low else 'above'} {band}", p)
    p_eq = a.p_within(low, high)
    if a.lo >= low and a.hi <= high:
        return Judgement(j.verdict, j.why + f"; full-MNIST acc CI [{_pct(a.lo)}, {_pct(a.hi)}] inside {band}",
                         max(j.p, p_eq) if j.verdict == REPRODUCED else j.p)
    return Judgement(INCONCLUSIVE if demote else j.verdict,
                     j.why + f"; full-MNIST acc CI [{_pct(a.lo)}, {_pct(a.hi)}] overlaps an edge of {band}",
                     _min(j.p, p_eq) if demote else j.p)


def judge(row: ClaimRow, evidence: list[Evidence]) -> tuple[Evidence | None, str, str]:
    decided, j = judge_row(row, evidence)
    return decided, j.verdict, j.why


def judge_row(row: ClaimRow, evidence: list[Evidence]) -> tuple[Evidence | None, Judgement]:
    """An absolute row: its rule on the preferred variant with two seeds or more."""
    if not evidence:
        return None, Judgement(INCONCLUSIVE, "no finished run")
    decisive = next((e for e in evidence if e.acc.n >= MIN_SEEDS), evidence[0])
    j = RULES[row.rule].judge(decisive)
    j = replace(j, why=f"on {decisive.variant} (n={decisive.acc.n}): {j.why}")
    if row.reference is not None:
        j = _reference(row, evidence, j)
    return decisive, j


def _paired_on(row: ClaimRow, ev: Evidence, study: Study) -> tuple[Paired, str] | None:
    """The seed-paired comparison of ev's cell against row.versus on ev's data, in ev's study."""
    done = study.complete
    rows = match(done[done["dataset_variant"] == ev.variant], row.versus)
    ranked = rank_cells(rows)
    if ranked.empty:
        return None
    versus_cell = str(ranked["cell"].iloc[0])
    rows = rows[rows["cell"] == versus_cell]

    def by_seed(runs: pd.DataFrame) -> dict[int, float]:  # runs that did not log the metric (older) pair with none
        values = runs[row.metric] if row.metric in runs else pd.Series(math.nan, index=runs.index)
        return {int(k): float(v) for k, v in zip(runs["seed"], values, strict=True) if math.isfinite(v)}

    return paired_comparison(by_seed(rows), by_seed(ev.runs)), versus_cell


def paired_judgement(p: Paired, delta: float, scale: float = 1.0, digits: int = 3) -> Judgement:
    """A comparison's verdict from the paired difference d = claimed − compared and the
    smallest effect that matters, delta: reproduced when d's CI is above 0 and its mean at least
    delta; contradicted when the CI is below 0, or inside (−delta, delta) (equivalence: no
    difference that matters, however significant); else inconclusive."""
    d = p.diff
    if not p.enough or not d.has_interval:
        return Judgement(INCONCLUSIVE, "too few paired seeds")
    if p.identical:
        return Judgement(INCONCLUSIVE, "identical runs")
    if p.no_spread:
        return Judgement(INCONCLUSIVE, "every seed differs by the same amount (zero spread: no interval to read)")
    band = f"±{delta * scale:g}{' points' if scale == 100 else ''}"
    equivalent = d.p_within(-delta, delta)
    if d.lo > -delta and d.hi < delta:
        return Judgement(CONTRADICTED, f"CI inside the no-difference band {band}: no difference that matters",
                         equivalent)
    if d.lo > 0 and d.mean >= delta:
        return Judgement(REPRODUCED, "CI above 0, mean ≥ the smallest effect that matters", d.p_above(0))
    if d.hi < 0:
        return Judgement(CONTRADICTED, "CI below 0: the compared cell is better", d.p_below(0))
    if d.lo > 0:
        return Judgement(INCONCLUSIVE, f"CI above 0, but the mean {d.mean * scale:+.{digits}f} is below the "
                         f"smallest effect that matters ({delta * scale:g})", _min(d.p_above(0), equivalent))
    return Judgement(INCONCLUSIVE, "CI contains 0", _min(d.p_above(0), d.p_below(0), equivalent))


def judge_comparison(row: ClaimRow, evidence: list[Evidence], studies: list[Study]
                     ) -> tuple[Evidence | None, Judgement, Paired | None, str]:
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
        j = paired_judgement(p, row.smallest_effect, scale, digits)
        text = (f"on {ev.variant} ({ev.study}), {name}: {p.mean_b * scale:.{digits}f} vs {p.mean_a * scale:.{digits}f} "
                f"({versus_cell}), difference {diff} over {p.n} paired seeds: {j.why}")
        judged.append((ev, replace(j, why=text), p, versus_cell))
    if not judged:
        return (evidence[0] if evidence else None), Judgement(
            INCONCLUSIVE, "the compared cell did not run on the same data"), None, ""
    ev, j, p, versus_cell = next((x for x in judged if x[2].enough), judged[0])
    reason = "; ".join(x[1].why for x in judged)
    verdict = j.verdict
    opposite = {REPRODUCED: CONTRADICTED, CONTRADICTED: REPRODUCED}.get(verdict)
    if opposite and any(x[1].verdict == opposite for x in judged):
        verdict = INCONCLUSIVE
        reason += " — the data variants disagree: it depends on the data"
    return ev, Judgement(verdict, reason, j.p), p, versus_cell


def covered(studies: list[Study], row: ClaimRow) -> bool:
    """A study ran the row's cell on the data the claim is about."""
    for study in studies:
        runs = match(study.runs, row.select)
        if row.pick == "best-oneshot":  # only studies that scored one-shot runs
            runs = runs[runs["oneshot/acc"].notna()] if "oneshot/acc" in runs else runs.iloc[0:0]
        if not runs.empty and in_variants(runs["dataset_variant"], row.variants).any():
            return True
    return False


def _holm_gate(found: list[Finding]) -> list[Finding]:
    """One family per report: Holm-adjust the rows' p-values; a verdict whose adjusted p is
    above ALPHA falls back to inconclusive. Raw and adjusted p go into every row's reason."""
    adjusted = holm([f.p for f in found])
    m = sum(math.isfinite(p) for p in adjusted)
    out = []
    for f, adj in zip(found, adjusted, strict=True):
        verdict, reason = f.verdict, f.reason
        if math.isfinite(f.p):
            reason += f"; p {_pval(f.p)}, Holm-adjusted over {m} rows p {_pval(adj)}"
            if verdict != INCONCLUSIVE and adj > ALPHA:
                reason += f" > {ALPHA:g}: not {verdict} once the report's rows are corrected together"
                verdict = INCONCLUSIVE
        out.append(replace(f, verdict=verdict, reason=reason, p_holm=adj))
    return out


def findings(studies: list[Study], claims: list[ClaimRow] = CLAIMS) -> list[Finding]:
    out = []
    for row in claims:
        if not covered(studies, row):
            continue
        evidence = gather(studies, row.select, row.variants, row.pick)
        paired, versus_cell = None, ""
        if row.versus is not None:
            decided, j, paired, versus_cell = judge_comparison(row, evidence, studies)
        else:
            decided, j = judge_row(row, evidence)
        verdict, reason = j.verdict, j.why
        if row.pick == "best-oneshot" and decided is not None:
            reason += f"; best cell {decided.cell} of {decided.study}; " + lever_note(
                next(s for s in studies if s.name == decided.study), decided)
        if verdict == CONTRADICTED and row.faithful and decided is not None \
                and match(decided.runs, row.faithful).shape[0] < len(decided.runs):
            verdict = INCONCLUSIVE
            reason += f"; but on a reduced setup ({row.reduced_note}), which cannot contradict the claim"
        bad = decided.diverged if decided is not None else 0
        if bad:
            reason += f"; the cell diverged in {bad} of {decided.seeds_tried} seeds (NaN loss), counted against it"
            if verdict == REPRODUCED and row.rule != "chance":
                verdict = INCONCLUSIVE
                reason += ": a design that diverges cannot be reproduced as working"
        failed = unfinished(studies, decided, (decided.cell if decided else "", versus_cell))
        if failed:
            reason += f" ({failed} cell x seed run{'s' if failed > 1 else ''} of the compared cells failed or " \
                      "unfinished (killed, lost): not counted, the sweep re-runs them)"
        out.append(Finding(row, evidence, decided, verdict, reason, failed, paired, versus_cell, j.p, diverged=bad))
    return _holm_gate(out)


def not_covered(studies: list[Study], found: list[Finding]) -> list[str]:
    ids = {f.row.id.split()[0] for f in found}
    rows = [r.id for r in CLAIMS if not covered(studies, r) and r.id.split()[0] in ids]
    return rows + [c for c in ALL_CLAIM_IDS if c not in ids]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


FINDINGS_COLUMNS = ["claim_id", "claim", "source", "cell", "study", "dataset_variant", "epochs", "n_seeds",
                    "test_acc_mean", "test_acc_ci_low", "test_acc_ci_high", "test_auc_mean", "test_auc_ci_low",
                    "test_auc_ci_high", "train_acc_mean", "collapsed_runs", "oneshot_acc_mean", "oneshot_pixels_acc",
                    "oneshot_acc_ci_low", "oneshot_acc_ci_high", "diverged_seeds", "retrieval_precision_at_1",
                    "retrieval_r_precision", "retrieval_map_at_r",
                    "compared_with", "compared_metric", "smallest_effect", "diff_mean", "diff_ci_low", "diff_ci_high",
                    "n_paired", "p_value", "p_holm", "all_evidence", "verdict", "rule", "reason"]


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
            "oneshot_acc_ci_low": _num(d.oneshot.lo) if d and d.oneshot else None,
            "oneshot_acc_ci_high": _num(d.oneshot.hi) if d and d.oneshot else None,
            "diverged_seeds": f.diverged,
            **{f"retrieval_{k.split('/')[1]}": _num(d.retrieval[k].mean) if d and d.retrieval and k in d.retrieval
               else None for k in RETRIEVAL_NAMES},
            "smallest_effect": f.row.smallest_effect if f.row.versus else None,
            "p_value": _num(f.p), "p_holm": _num(f.p_holm),
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
            "are decided on the seed-paired difference against the compared cell, named in the reason, with the "
            "smallest effect that matters (δ) per metric. Every row's verdict rests on one-sided tests at 2.5 % "
            "(equivalently, 95 % intervals); the rows of this report are one family: each reason gives the raw "
            "p-value and the Holm-adjusted one, and a verdict whose adjusted p exceeds 0.025 is shown as "
            "inconclusive.")
    if missing:
        note += f" Not covered: {', '.join(missing)}."
    view_cols = ["Claim", "Source reports", "We measure", "Verdict", "Rule, and why"]
    return Table("findings", "Findings", pd.DataFrame(data, columns=FINDINGS_COLUMNS),
                 pd.DataFrame(view, columns=view_cols),
                 widths={"Claim": 1.45, "Source reports": 1.15, "We measure": 2.85, "Verdict": 0.72,
                         "Rule, and why": 2.75},
                 note=note)
