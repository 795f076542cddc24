"""Claim verdicts: each claim row's evidence judged by its rule, then the rows of one report
corrected together (Holm): a verdict stands only while its Holm-adjusted p is at most ALPHA.
Under decide's repeated looks (report/looks.py) each p is first made the sequential p-value of
those looks, and a cell picked as the best of m is counted m times, before Holm.

A claim row names a cell (head, loss, margin), the source's number and data, and a rule.
Evidence comes from the most preferred dataset variant that has at least two seeds (full
MNIST, else the mnist-5k subset, else digits); every variant measured is shown beside it.
The rule text goes into the table, so a reader sees what decided each verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from siamese_bench.report.claims import CLAIMS, ClaimRow
from siamese_bench.report.evidence import Evidence, gather, in_variants, lever_note, unfinished
from siamese_bench.report.load import Study
from siamese_bench.report.looks import ALPHA, ONE_LOOK, Looks
from siamese_bench.report.rules import (
    CONTRADICTED,
    FULL_MNIST,
    INCONCLUSIVE,
    METRIC_NAMES,
    MIN_SEEDS,
    REPRODUCED,
    RULES,
    Judgement,
    min_p,
    paired_judgement,
    pct,
    pval,
)
from siamese_bench.report.select import RECIPE, match, match_columns, rank_cells
from siamese_bench.report.stats import Interval, Paired, holm, paired_comparison

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
    p_holm: float = math.nan  # Holm-adjusted over the row's family (of the sequential p, times the pick's m)
    diverged: int = 0  # seeds of the row's claimed cell that diverged, on the deciding data

    @property
    def headline(self) -> Evidence | None:
        return self.evidence[0] if self.evidence else None

    @property
    def picked_from(self) -> int:
        """How many cells this row's cell was chosen from: the row's own `chosen_from` (an
        earlier study's choice) times a best-one-shot pick's cells; its p counts that many times."""
        pick = self.decided_on.selected_from if self.decided_on is not None and self.row.pick == "best-oneshot" else 1
        return self.row.chosen_from * max(1, pick)


def _reference(row: ClaimRow, evidence: list[Evidence], j: Judgement) -> Judgement:
    """C1's absolute number: the full-MNIST interval against ref ± tolerance, an equivalence
    test. Wholly outside the band contradicts whatever the first verdict; inside it keeps a
    "reproduced" (p: the larger of the two tests, both must hold); anything else, including a
    single full-MNIST seed, cannot let "reproduced" stand."""
    ref, tol = row.reference, row.tolerance
    assert ref is not None, "called for rows with a reference only"
    low, high = ref - tol, ref + tol
    band = f"{ref * 100:.2f} ± {tol * 100:.1f} %"
    full = next((e for e in evidence if e.variant == FULL_MNIST and e.acc.n > 0), None)
    demote = j.verdict == REPRODUCED
    if full is None:
        why = f"; {ref * 100:.2f} % is a full-MNIST number and no full-MNIST run exists"
        return Judgement(INCONCLUSIVE if demote else j.verdict, j.why + why, j.p)
    a = full.acc
    if a.no_spread:
        return Judgement(
            INCONCLUSIVE if demote else j.verdict,
            j.why + "; the full-MNIST seeds have zero spread: no interval to hold against the number",
            j.p,
        )
    if not a.has_interval:
        inside = low <= a.mean <= high
        why = (
            f"; one full-MNIST seed ({pct(a.mean)}) is {'consistent with' if inside else 'outside'} {band}, "
            "but one seed cannot decide"
        )
        return Judgement(INCONCLUSIVE if demote else j.verdict, j.why + why, j.p)
    if a.hi < low or a.lo > high:
        side = "lower" if a.hi < low else "higher"
        p = a.p_below(low) if a.hi < low else a.p_above(high)
        return Judgement(
            CONTRADICTED,
            j.why + f"; but the number is not reproduced ({side}): the full-MNIST acc CI "
            f"[{pct(a.lo)}, {pct(a.hi)}] lies wholly {'below' if a.hi < low else 'above'} {band}",
            p,
        )
    p_eq = a.p_within(low, high)
    if a.lo >= low and a.hi <= high:
        return Judgement(
            j.verdict,
            j.why + f"; full-MNIST acc CI [{pct(a.lo)}, {pct(a.hi)}] inside {band}",
            max(j.p, p_eq) if j.verdict == REPRODUCED else j.p,
        )
    return Judgement(
        INCONCLUSIVE if demote else j.verdict,
        j.why + f"; full-MNIST acc CI [{pct(a.lo)}, {pct(a.hi)}] overlaps an edge of {band}",
        min_p(j.p, p_eq) if demote else j.p,
    )


def judge(row: ClaimRow, evidence: list[Evidence]) -> tuple[Evidence | None, str, str]:
    decided, j = judge_row(row, evidence)
    return decided, j.verdict, j.why


RULE_METRIC = {
    "works": "test/acc",
    "chance": "test/auc",
    "learns": "test/auc",
    "above-chance": "test/auc",
    "oneshot": "oneshot/acc",
}  # what each single-cell rule reads


def _interval(ev: Evidence, metric: str) -> Interval:
    if metric == "oneshot/acc":
        return ev.oneshot or Interval(math.nan, math.nan, 0, math.nan, math.nan)
    return ev.auc if metric == "test/auc" else ev.acc


def _dropped(ev: Evidence, metric: str) -> str:
    """'; 1 of 3 runs (seed 2) logged no finite test/auc, left out', or ''."""
    finite, runs = ev.logged(metric)
    if finite == runs:
        return ""
    bad = ev.not_finite(metric)
    which = f"seed{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))}"
    return f"; {runs - finite} of {runs} runs ({which}) logged no finite {metric}, left out"


def judge_row(row: ClaimRow, evidence: list[Evidence], looks: Looks = ONE_LOOK) -> tuple[Evidence | None, Judgement]:
    """An absolute row: its rule on the preferred variant with two seeds or more of the metric
    the rule reads; runs whose metric is not finite (NaN) are left out, and the reason names their
    seeds. Under decide's looks a verdict needs the calibration's first look in finite values."""
    if not evidence:
        return None, Judgement(INCONCLUSIVE, "no finished run")
    metric = RULE_METRIC[row.rule]
    decisive = next((e for e in evidence if _interval(e, metric).n >= MIN_SEEDS), evidence[0])
    j = RULES[row.rule].judge(decisive)
    n = _interval(decisive, metric).n
    if j.verdict != INCONCLUSIVE and n < looks.min_n:
        j = Judgement(
            INCONCLUSIVE,
            f"{n} finite values: decide's looks are calibrated from {looks.min_n} on, so no verdict "
            f"is read from fewer (the interval would have said: {j.why})",
            j.p,
        )
    j = replace(j, why=f"on {decisive.variant} (n={n}{_dropped(decisive, metric)}): {j.why}")
    if row.reference is not None:
        j = _reference(row, evidence, j)
    return decisive, j


def _paired_on(row: ClaimRow, ev: Evidence, study: Study, level: float) -> tuple[Paired, str] | None:
    """The seed-paired comparison of ev's cell against row.versus on ev's data, in ev's study."""
    assert row.versus is not None, "called for comparison rows only"
    done = study.complete
    columns = match_columns(done, row.versus, *RECIPE, "cell", "seed", row.metric)  # what rank_cells and by_seed read
    rows = match(done.loc[done["dataset_variant"] == ev.variant, columns], row.versus)
    ranked = rank_cells(rows)
    if ranked.empty:
        return None
    versus_cell = str(ranked["cell"].iloc[0])
    rows = rows[rows["cell"] == versus_cell]

    def by_seed(runs: pd.DataFrame) -> dict[int, float]:  # runs that did not log the metric (older) pair with none
        values = runs[row.metric] if row.metric in runs else pd.Series(math.nan, index=runs.index)
        return {int(k): float(v) for k, v in zip(runs["seed"], values, strict=True) if math.isfinite(v)}

    return paired_comparison(by_seed(rows), by_seed(ev.runs), level=level), versus_cell


def judge_comparison(
    row: ClaimRow, evidence: list[Evidence], studies: list[Study], looks: Looks = ONE_LOOK
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
        found = _paired_on(row, ev, by_name[ev.study], looks.level())
        if found is None:
            continue
        p, versus_cell = found
        diff = f"{p.diff.mean * scale:+.{digits}f}"
        if p.diff.has_interval:
            diff += f" [{p.diff.lo * scale:+.{digits}f}, {p.diff.hi * scale:+.{digits}f}]"
        j = paired_judgement(p, row.delta, scale, digits)
        text = (
            f"on {ev.variant} ({ev.study}), {name}: {p.mean_b * scale:.{digits}f} vs {p.mean_a * scale:.{digits}f} "
            f"({versus_cell}), difference {diff} over {p.n} paired seeds: {j.why}"
        )
        judged.append((ev, replace(j, why=text), p, versus_cell))
    if not judged:
        return (
            (evidence[0] if evidence else None),
            Judgement(INCONCLUSIVE, "the compared cell did not run on the same data"),
            None,
            "",
        )
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
        runs = match(study.runs[match_columns(study.runs, row.select, "dataset_variant", "oneshot/acc")], row.select)
        if row.pick == "best-oneshot":  # only studies that scored one-shot runs
            runs = runs[runs["oneshot/acc"].notna()] if "oneshot/acc" in runs else runs.iloc[0:0]
        if not runs.empty and in_variants(runs["dataset_variant"], row.variants).any():
            return True
    return False


def family_gate(
    found: list[Finding], claims: list[ClaimRow], looks: Looks = ONE_LOOK, alpha: float = ALPHA
) -> list[Finding]:
    """Families fixed by the claims file, never by what a report happens to cover: the rows of one
    family (a row's `family`, by default its id's first word: C3's five heads are one family) are
    Holm-adjusted together over all of that family's rows in the file, a row without a test
    counting as p = 1. What is adjusted is each row's sequential p-value over `looks` (its own p
    for a single look), times the cells it was picked from; a verdict whose adjusted p is above
    `alpha` falls back to inconclusive. So the family's first step rejects at looks.per_look(alpha
    / m): the per-look level calibrated for alpha / m.

    Reproduced and contradicted verdicts are corrected apart, each over all m rows (a row of the
    other kind counting as p = 1): they test opposite nulls, and a row contradicted must not
    loosen the bar for the family's reproduced rows (at a family on its boundary, where both
    kinds of verdict are false, it would: 2.67 % instead of 2.5 % for five rows under decide).
    An inconclusive row's adjusted p, shown only, is over all the family's p's. The p's go into
    every row's reason."""
    size: dict[str, int] = {}
    for row in claims:
        size[row.holm_family] = size.get(row.holm_family, 0) + 1
    sequential = [min(1.0, f.picked_from * looks.overall(f.p)) if math.isfinite(f.p) else 1.0 for f in found]
    adjusted: dict[int, float] = {}
    for family, m in size.items():
        members = [i for i, f in enumerate(found) if f.row.holm_family == family]
        pad = [1.0] * max(0, m - len(members))
        for kind in (REPRODUCED, CONTRADICTED, None):
            tested = [sequential[i] if kind in (None, found[i].verdict) else 1.0 for i in members]
            own = [
                i for i in members if found[i].verdict == kind or (kind is None and found[i].verdict == INCONCLUSIVE)
            ]
            adjusted.update({i: q for i, q in zip(members, holm(tested + pad), strict=False) if i in own})
    out = []
    for i, f in enumerate(found):
        adj, m = adjusted[i], size.get(f.row.holm_family, 1)
        verdict, reason = f.verdict, f.reason
        if math.isfinite(f.p):
            family = "no other row" if m == 1 else f"the {m} rows of family {f.row.holm_family}"
            reason += f"; p {pval(f.p)}"
            if looks.sequential:
                reason += f", over decide's {looks.describe()} p {pval(looks.overall(f.p))}"
            if f.picked_from > 1:
                reason += f", times {f.picked_from} for the pick (the best of {f.picked_from} cells)"
            reason += f", Holm-adjusted over {family} p {pval(adj)}"
            if verdict != INCONCLUSIVE and adj > alpha:
                reason += f" > {alpha:.2g}: not {verdict} once the family's rows are corrected together"
                verdict = INCONCLUSIVE
        out.append(replace(f, verdict=verdict, reason=reason, p_holm=adj if math.isfinite(f.p) else math.nan))
    return out


def findings(studies: list[Study], claims: list[ClaimRow] = CLAIMS, looks: Looks = ONE_LOOK) -> list[Finding]:
    """Every covered row judged with intervals at looks.level() (each one-sided test at the
    per-look level), then Holm-corrected within its family over the rows of `claims`
    (see family_gate)."""
    out = []
    for row in claims:
        if not covered(studies, row):
            continue
        evidence = gather(studies, row.select, row.variants, row.pick, looks=looks)
        paired, versus_cell = None, ""
        if row.versus is not None:
            decided, j, paired, versus_cell = judge_comparison(row, evidence, studies, looks)
        else:
            decided, j = judge_row(row, evidence, looks)
        verdict, reason = j.verdict, j.why
        if row.pick == "best-oneshot" and decided is not None:
            reason += f"; best cell {decided.cell} of {decided.study}; " + lever_note(
                next(s for s in studies if s.name == decided.study), decided
            )
        if (
            verdict == CONTRADICTED
            and row.faithful
            and decided is not None
            and match(decided.runs, row.faithful).shape[0] < len(decided.runs)
        ):
            verdict = INCONCLUSIVE
            reason += f"; but on a reduced setup ({row.reduced_note}), which cannot contradict the claim"
        bad = decided.diverged if decided is not None else 0
        if decided is not None and bad:
            reason += f"; the cell diverged in {bad} of {decided.seeds_tried} seeds (NaN loss), counted against it"
            if verdict == REPRODUCED and row.rule != "chance":
                verdict = INCONCLUSIVE
                reason += ": a design that diverges cannot be reproduced as working"
        failed = unfinished(studies, decided, (decided.cell if decided else "", versus_cell))
        if failed:
            reason += (
                f" ({failed} cell x seed run{'s' if failed > 1 else ''} of the compared cells failed or "
                "unfinished (killed, lost): not counted, the sweep re-runs them)"
            )
        out.append(Finding(row, evidence, decided, verdict, reason, failed, paired, versus_cell, j.p, diverged=bad))
    return family_gate(out, claims, looks)


def not_covered(studies: list[Study], found: list[Finding], claims: list[ClaimRow] = CLAIMS) -> list[str]:
    ids = {f.row.id.split()[0] for f in found}
    rows = [r.id for r in claims if not covered(studies, r) and r.id.split()[0] in ids]
    if claims is not CLAIMS:
        return rows
    return rows + [c for c in ALL_CLAIM_IDS if c not in ids]
