"""The verdict rules, as data: each turns an interval over seeds into reproduced, contradicted or
inconclusive, and says why. Every rule is a pair of one-sided tests read off 95 % t-intervals
over seeds (each at ALPHA = 2.5 %): a bound clearing a bar, or an interval inside an
equivalence band (two one-sided tests). Each verdict carries the p-value of the test behind it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from siamese_bench.report.claims import ClaimRow
from siamese_bench.report.evidence import Evidence, pct
from siamese_bench.report.looks import ALPHA, ONE_LOOK, Looks
from siamese_bench.report.stats import LEVEL, MIN_SEEDS_TO_TELL, Interval, Paired, oneshot_interval

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
FULL_MNIST = "mnist-full"
MIN_SEEDS = 2  # a t-interval needs two values


def pval(p: float) -> str:
    """'= 0.012', or '< 0.0001' (to follow 'p ')."""
    return "= –" if not math.isfinite(p) else f"= {p:.2g}" if p >= 1e-4 else "< 0.0001"


def min_p(*ps: float) -> float:
    finite = [p for p in ps if math.isfinite(p)]
    return min(finite) if finite else math.nan


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
            return Judgement(
                INCONCLUSIVE,
                f"n=1 ({name} {pct(iv.mean)}, {side} {_bar(bar)}): one seed cannot reproduce or contradict",
            )
        return Judgement(INCONCLUSIVE, "no run: no interval")
    if iv.no_spread:
        return Judgement(INCONCLUSIVE, zero_spread(f"{name} {pct(iv.mean)}", iv.n))
    up, down = iv.p_above(bar), iv.p_below(bar)
    if iv.lo >= bar:
        return Judgement(REPRODUCED, f"{name} CI lower bound {pct(iv.lo)} ≥ {_bar(bar)}", up)
    if iv.hi < bar:
        return Judgement(CONTRADICTED, f"{name} CI upper bound {pct(iv.hi)} < {_bar(bar)}", down)
    return Judgement(INCONCLUSIVE, f"{name} CI [{pct(iv.lo)}, {pct(iv.hi)}] straddles {_bar(bar)}", min_p(up, down))


def zero_spread(value: str, n: int) -> str:
    return f"zero spread: all {n} seeds gave {value}, an interval of width 0 that says nothing of the next seed"


def _auc_interval(ev: Evidence) -> Judgement | None:
    """Why the AUC interval decides nothing, or None when it can be read."""
    u = ev.auc
    if not u.has_interval:
        return Judgement(INCONCLUSIVE, _no_interval(ev) if u.n else "no AUC logged")
    if u.no_spread:
        return Judgement(INCONCLUSIVE, zero_spread(f"AUC {u.mean:.3f}", u.n))
    return None


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
    ps: dict[str | None, float] = {
        "inside": u.p_within(CHANCE_LOW, CHANCE_HIGH),
        "above": u.p_above(CHANCE_HIGH),
        "below": u.p_below(CHANCE_LOW),
    }
    return {**ps, None: min_p(*ps.values())}


INVERTED = f"an inverted signal, learned backwards: AUC CI wholly below {CHANCE_LOW}"


def _works(ev: Evidence) -> Judgement:
    return _at_least(ev.acc, WORKS_ACC, "acc")


def _by_side(ev: Evidence, learned: str, inside: str) -> Judgement:
    """A claim read off where the AUC interval lies against the chance band: `learned` and
    `inside` are the verdicts for "wholly above" and "inside"; wholly below (an inverted
    signal) contradicts both kinds of claim, and overlapping an edge decides nothing."""
    u = ev.auc
    if (unread := _auc_interval(ev)) is not None:
        return unread
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
    if (unread := _auc_interval(ev)) is not None:
        return unread
    if u.lo >= LEARNS_AUC:
        return Judgement(REPRODUCED, f"AUC CI lower bound {u.lo:.3f} ≥ {LEARNS_AUC}", u.p_above(LEARNS_AUC))
    p = _chance_tests(u)
    if _side_of_chance(u) == "inside":
        return Judgement(CONTRADICTED, f"still at chance: {_band(u)} inside {_BAND}", p["inside"])
    return Judgement(
        INCONCLUSIVE,
        f"{_band(u)} neither ≥ {LEARNS_AUC} nor inside the chance band",
        min_p(u.p_above(LEARNS_AUC), p["inside"]),
    )


def _above_chance(ev: Evidence) -> Judgement:
    return _by_side(ev, learned=REPRODUCED, inside=CONTRADICTED)


def _oneshot(ev: Evidence) -> Judgement:
    """The bar against an interval whose binomial term (the fixed trials' sampling error) is taken
    at the bar itself; a cell picked as the best of m is read at the per-look level for alpha / m
    (Bonferroni for the pick, calibrated for decide's looks), so picking the luckiest of several
    cells at the bar does not pass it more often than alpha. The p stays the look's own: the
    report's family gate multiplies its sequential p-value by m (findings.family_gate)."""
    if ev.oneshot is None or ev.oneshot.n == 0:
        return Judgement(INCONCLUSIVE, "no one-shot accuracy logged")
    m = ev.selected_from
    level = ev.looks.level(ALPHA / m)
    iv = oneshot_interval(ev.runs["oneshot/acc"], ev.trials(), p0=ONESHOT_BAR, level=level)
    j = _at_least(iv, ONESHOT_BAR, "one-shot")
    if m > 1:
        j = replace(
            j, why=f"{j.why} (the best of {m} cells, so a {level * 100:.4g} % interval: Bonferroni for the pick)"
        )
    return j


RULES: dict[str, Rule] = {
    # C1: "works" at the sources' own rule and bar.
    "works": Rule(
        f"reproduced if test acc (d < 0.5) {{ci}} CI low ≥ {_bar(WORKS_ACC)}; contradicted if CI high "
        f"< {_bar(WORKS_ACC)}; else (or n < {MIN_SEEDS}, or zero spread) inconclusive",
        _works,
    ),
    # C2 and the transforms the odd-function account says fail: equivalent to chance, both sides.
    "chance": Rule(
        f"reproduced if the test AUC {{ci}} CI lies inside the chance band {_BAND} (equivalence, two "
        f"one-sided tests); contradicted if it lies wholly above it (it learns) or wholly below it (an "
        f"inverted signal: learned backwards); else (or n < {MIN_SEEDS}, or zero spread) inconclusive",
        _chance,
    ),
    # C3's fixes: the claim is that the head leaves chance and learns, not that it matches C1's
    # number on every data size, so it is judged on threshold-free AUC.
    "learns": Rule(
        f"reproduced if AUC {{ci}} CI low ≥ {LEARNS_AUC}; contradicted if still at chance (AUC CI inside "
        f"{_BAND}); else (or n < {MIN_SEEDS}, or zero spread) inconclusive",
        _learns,
    ),
    "above-chance": Rule(
        f"reproduced if AUC {{ci}} CI low > {CHANCE_HIGH}; contradicted if the CI lies inside the "
        f"chance band {_BAND} or wholly below it; else (or n < {MIN_SEEDS}, or zero spread) "
        "inconclusive",
        _above_chance,
    ),
    "oneshot": Rule(
        f"reproduced if the 20-way one-shot accuracy {{ci}} CI low ≥ {_bar(ONESHOT_BAR)} (the low end "
        f"of re-implementations; the interval adds the binomial error of the 400 fixed trials, taken at "
        f"the bar, to the spread over seeds, with n − 1 degrees of freedom; the best of m cells is tested at "
        f"level α / m); "
        f"contradicted if CI high < {_bar(ONESHOT_BAR)} with Koch's encoder (a smaller one falling short "
        f"is inconclusive); else (or n < {MIN_SEEDS}, or zero spread) inconclusive",
        _oneshot,
    ),
    # Comparison rows (ClaimRow.versus): judged on seed-paired differences, see judge_comparison.
    "better": Rule(
        "reproduced if the paired difference (claimed better − compared cell) has a {ci} CI whose low "
        "end is at least the smallest effect that matters (δ): better by δ or more; contradicted if the "
        "CI lies below 0, or inside (−δ, δ) (no difference that matters); else (or fewer than "
        f"{MIN_SEEDS_TO_TELL} paired seeds, or zero spread) inconclusive; decided on the preferred data "
        "variant, inconclusive when another variant gives the opposite verdict",
        lambda ev: Judgement(INCONCLUSIVE, "judged on the paired difference"),
    ),
}
METRIC_NAMES = {
    "test/auc": "test ROC AUC",
    "test/acc_tuned": "test acc at the validation threshold",
    "test/acc": "test acc (d < 0.5)",
    "mix/acc_tuned": "acc on pairs across training and test alphabets (C6's mix), validation threshold",
}


def paired_judgement(p: Paired, delta: float, scale: float = 1.0, digits: int = 3) -> Judgement:
    """A comparison's verdict from the paired difference d = claimed − compared and the
    smallest effect that matters, delta: reproduced when d's CI lies at or above delta (the
    claimed cell is better by delta or more: p against delta); contradicted when the CI is below
    0, or inside (−delta, delta) (equivalence: no difference that matters, however significant);
    else inconclusive."""
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
        return Judgement(
            CONTRADICTED, f"CI inside the no-difference band {band}: no difference that matters", equivalent
        )
    if d.lo >= delta:
        return Judgement(
            REPRODUCED,
            f"CI low ≥ the smallest effect that matters ({delta * scale:g}): better by at least that",
            d.p_above(delta),
        )
    if d.hi < 0:
        return Judgement(CONTRADICTED, "CI below 0: the compared cell is better", d.p_below(0))
    if d.lo > 0:
        return Judgement(
            INCONCLUSIVE,
            f"CI above 0 but its low end {d.lo * scale:+.{digits}f} is below the smallest "
            f"effect that matters ({delta * scale:g}): better, maybe by less than matters",
            min_p(d.p_above(delta), equivalent),
        )
    return Judgement(INCONCLUSIVE, "CI contains 0", min_p(d.p_above(delta), d.p_below(0), equivalent))


def ci_name(level: float = LEVEL) -> str:
    """'95 %', or '98.78 %' at decide's looks."""
    return f"{level * 100:.4g} %"


def rule_text(row: ClaimRow, looks: Looks = ONE_LOOK) -> str:
    """The rule of a claim row in words, with the row's own parameters and the intervals' level."""
    level = looks.level()
    text = RULES[row.rule].text.replace("{ci}", ci_name(level))
    if looks.sequential:
        text = text.replace(f"n < {MIN_SEEDS}", f"fewer than {looks.min_n} finite values: decide's first look")
    if row.versus is not None:
        text += (
            f", on {METRIC_NAMES.get(row.metric, row.metric)} (δ = {row.delta:g}), seeds "
            "paired within one study and data"
        )
    if row.reference is not None:
        ref, tol = row.reference * 100, row.tolerance * 100
        text += (
            f"; reproduced also needs the full-MNIST {ci_name(level)} CI inside {ref:.2f} ± {tol:.1f} % "
            f"(equivalence to the source's number; else inconclusive, also with fewer than {MIN_SEEDS} "
            "full-MNIST seeds); contradicted (the number is not reproduced: higher or lower) whenever the "
            "full-MNIST CI lies wholly outside that band"
        )
    return text
