"""The verdict rules on hand-made evidence: absolute rows (works, chance, learns, one-shot), C1's
reference band, and comparison rows read off paired differences."""

from __future__ import annotations

import pandas as pd
import pytest

from siamese_bench.report.evidence import Evidence
from siamese_bench.report.findings import judge
from siamese_bench.report.rules import CONTRADICTED, INCONCLUSIVE, REPRODUCED, rule_text
from siamese_bench.report.stats import paired_comparison, t_interval

FIVE_K_WORKS = [0.93, 0.94, 0.935]


@pytest.mark.parametrize(
    ("claim", "evidence", "verdict"),
    [
        (
            "C1",
            [("mnist-full", [0.972, 0.975, 0.974], [0.99] * 3), ("mnist-5k", FIVE_K_WORKS, [0.98] * 3)],
            REPRODUCED,
        ),  # full MNIST CI inside 97.42 +- 1.5
        (
            "C1",
            [("mnist-full", [0.973], [0.99]), ("mnist-5k", FIVE_K_WORKS, [0.98] * 3)],
            INCONCLUSIVE,
        ),  # one full-MNIST seed is consistent, but cannot reproduce
        (
            "C1",
            [("mnist-full", [0.95, 0.951, 0.949], [0.99] * 3), ("mnist-5k", FIVE_K_WORKS, [0.98] * 3)],
            CONTRADICTED,
        ),  # works; full MNIST wholly below
        (
            "C1",
            [("mnist-full", [0.95], [0.99]), ("mnist-5k", FIVE_K_WORKS, [0.98] * 3)],
            INCONCLUSIVE,
        ),  # one far seed cannot contradict either
        ("C1", [("mnist-5k", FIVE_K_WORKS, [0.98] * 3)], INCONCLUSIVE),  # no full-MNIST run
        ("C1", [("mnist-full", [0.974], [0.99])], INCONCLUSIVE),  # one seed: no interval
        ("C1", [("mnist-5k", [0.60, 0.62, 0.61], [0.7] * 3)], CONTRADICTED),
        ("C2", [("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], REPRODUCED),
        ("C2", [("mnist-5k", [0.80, 0.82, 0.81], [0.90, 0.91, 0.92])], CONTRADICTED),
        ("C2", [("mnist-5k", [0.20, 0.22, 0.21], [0.30, 0.31, 0.29])], CONTRADICTED),  # inverted, not chance
        ("C2", [("mnist-5k", [0.40, 0.60], [0.40, 0.60])], INCONCLUSIVE),  # interval too wide
        ("C2", [("mnist-5k", [0.5] * 3, [0.46, 0.47, 0.45])], INCONCLUSIVE),  # overlaps the band's edge
        ("C3 abs-diff-dense", [("mnist-5k", [0.89, 0.90, 0.91], [0.97, 0.972, 0.974])], REPRODUCED),
        ("C3 abs-diff-dense", [("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], CONTRADICTED),
        ("C3 one-minus-diff-dense", [("mnist-5k", [0.50, 0.51, 0.49], [0.50, 0.51, 0.49])], REPRODUCED),
        ("C3 one-minus-diff-dense", [("mnist-5k", [0.3] * 3, [0.30, 0.31, 0.29])], CONTRADICTED),
    ],
)
def test_verdict_rules(claim, evidence, verdict, fake_evidence, rule_of):
    evidence = [fake_evidence(*e) for e in evidence]  # (variant, acc, auc) per data variant
    decided, got, reason = judge(rule_of[claim], evidence)
    assert got == verdict, reason
    preferred = next((e for e in evidence if e.acc.n >= 2), evidence[0])
    assert decided is preferred and f"on {preferred.variant}" in reason


def test_at_chance_is_two_sided_and_an_inverted_signal_is_named(fake_evidence, rule_of):
    """Issue 11: an AUC interval far below 0.5 used to count as 'at chance'."""
    _, verdict, reason = judge(rule_of["C2"], [fake_evidence("mnist-5k", [0.2] * 3, [0.30, 0.31, 0.29])])
    assert verdict == CONTRADICTED and "inverted signal" in reason
    assert "chance band [0.45, 0.55]" in rule_text(rule_of["C2"])


def test_c1_full_mnist_gap_contradicts_whatever_the_first_verdict(fake_evidence, rule_of):
    # inconclusive on 5k (CI straddles 90 %), but the full-MNIST CI is 10 points from 97.42 %: contradicted
    ev = [fake_evidence("mnist-full", [0.87, 0.871], [0.95] * 2), fake_evidence("mnist-5k", [0.85, 0.95], [0.95, 0.96])]
    decided, verdict, reason = judge(rule_of["C1"], ev)
    assert decided is ev[0] and verdict == CONTRADICTED and "wholly below 97.42 ± 1.5 %" in reason
    assert "whenever the full-MNIST CI lies wholly outside that band" in rule_text(rule_of["C1"])
    # inside the band, an inconclusive first verdict stays inconclusive
    ev = [fake_evidence("mnist-full", [0.85, 0.99], [0.99] * 2), fake_evidence("mnist-5k", [0.85, 0.95], [0.95, 0.96])]
    assert judge(rule_of["C1"], ev)[1] == INCONCLUSIVE


def test_missing_values_show_a_dash_and_a_missing_auc_is_named(fake_evidence, rule_of):
    ev = fake_evidence("mnist-5k", [0.50, 0.51, 0.49], [])
    assert "nan" not in ev.text() and "AUC – (not logged)" in ev.text()
    _, verdict, reason = judge(rule_of["C2"], [ev])
    assert verdict == INCONCLUSIVE and "no AUC logged" in reason and "no interval" not in reason
    blank = Evidence(
        "s", "digits", "c", 2, pd.DataFrame({"seed": [0]}), t_interval([0.5]), t_interval([0.6]), t_interval([])
    )
    assert "nan" not in blank.text() and "train acc –" in blank.text()


def test_k1_rule_on_oneshot_accuracy_and_collapse_is_named(rule_of):
    k1 = rule_of["K1"]

    def ev(oneshot):
        runs = pd.DataFrame({"seed": range(len(oneshot)), "oneshot/acc": oneshot})
        return Evidence(
            "s",
            "omniglot-full-35",
            "c",
            6,
            runs,
            t_interval([0.9] * 2),
            t_interval([0.95] * 2),
            t_interval([0.9] * 2),
            oneshot=t_interval(oneshot),
            oneshot_pixels=0.2075,
        )

    assert judge(k1, [ev([0.85, 0.87, 0.86])])[1] == REPRODUCED
    assert judge(k1, [ev([0.40, 0.42, 0.41])])[1] == CONTRADICTED
    assert judge(k1, [ev([0.85, 0.87])])[1] == INCONCLUSIVE  # t(1) on the 400 trials' known error: too wide
    assert judge(k1, [ev([0.60, 0.80])])[1] == INCONCLUSIVE
    assert judge(k1, [ev([0.86])])[1] == INCONCLUSIVE
    assert "pixel nearest neighbour 20.75 %; trained on the 30 background alphabets" in ev([0.4, 0.42]).text()
    collapsed = Evidence(
        "s",
        "mnist-5k",
        "c",
        6,
        pd.DataFrame({"seed": [0, 1]}),
        t_interval([0.5] * 2),
        t_interval([0.5] * 2),
        t_interval([0.5] * 2),
        collapsed=2,
    )
    assert "COLLAPSED in 2 of 2 runs" in collapsed.text()


def test_a_paired_difference_with_zero_spread_decides_nothing():
    """Every seed 0.1 apart: a zero-width interval 'excludes 0', but nothing varies to read
    (issue 11); the row says so instead of 'reproduced'."""
    from siamese_bench.report.rules import INCONCLUSIVE, paired_judgement

    shifted = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.6, 1: 0.7, 2: 0.8})
    assert shifted.no_spread and not shifted.identical
    assert paired_judgement(shifted, 0.01).verdict == INCONCLUSIVE and "zero spread" in shifted.reading("a", "b")
    same = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.5, 1: 0.6, 2: 0.7})
    assert same.identical and paired_judgement(same, 0.01).verdict == INCONCLUSIVE
    assert "identical" in same.reading("a", "b")
    varied = paired_comparison({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.61, 1: 0.7, 2: 0.82})
    assert not varied.no_spread and paired_judgement(varied, 0.01).verdict != INCONCLUSIVE


def test_a_tiny_significant_difference_is_not_reproduced_and_within_the_band_contradicts():
    """Issue 11: with a smallest effect that matters (0.01 AUC), ten seeds of +0.002 AUC are 'no
    difference that matters' (contradicted), not 'reproduced'."""
    from siamese_bench.report.rules import paired_judgement

    a = {s: 0.90 + 0.01 * (s % 3) for s in range(10)}
    tiny = paired_comparison(a, {s: v + 0.002 + 0.0005 * (s % 2) for s, v in a.items()})
    assert tiny.diff.lo > 0  # significant ...
    j = paired_judgement(tiny, 0.01)
    assert j.verdict == CONTRADICTED and "no difference that matters" in j.why and j.p < 0.025
    big = paired_comparison(a, {s: v + 0.03 + 0.005 * (s % 2) for s, v in a.items()})
    assert paired_judgement(big, 0.01).verdict == REPRODUCED
    # significant, above 0, mean below delta, CI reaching past delta: undecided
    mid = paired_comparison(a, {s: v + 0.008 + 0.006 * (s % 2) - 0.003 * (s % 3) for s, v in a.items()})
    assert mid.diff.lo > 0 and mid.diff.mean < 0.01 < mid.diff.hi
    assert paired_judgement(mid, 0.01).verdict == INCONCLUSIVE
