"""Claim verdicts from studies of hand-made runs: comparison rows (C5, C6), one-shot rows (K1),
reduced setups, failed and diverged seeds, and Holm's correction over a report's rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from siamese_bench.report.rules import CONTRADICTED, INCONCLUSIVE, REPRODUCED

TRIPLET_PARAMS = {"triplet_mining": "random", "encoder": "cnn-small"}


@pytest.fixture
def c6_study(fake_run, fake_studies):
    """`c6_study(triplet_any, contrastive, variant, other)`: C6's cells with these per-seed accuracies."""

    def make(
        triplet_any: list[float],
        contrastive: list[float],
        variant: str = "omniglot-full-35",
        other: list[float] | None = None,
    ):
        runs = [
            fake_run(
                "head=distance-bn-dense,loss=contrastive",
                s,
                v,
                start=s,
                variant=variant,
                params={"triplet_negatives": "other", **TRIPLET_PARAMS},
            )
            for s, v in enumerate(contrastive)
        ]
        runs += [
            fake_run(
                "head=euclidean,loss=triplet,negatives=any",
                s,
                v,
                start=10 + s,
                variant=variant,
                loss="triplet",
                params={"triplet_negatives": "any", **TRIPLET_PARAMS},
            )
            for s, v in enumerate(triplet_any)
        ]
        for s, v in enumerate(other or []):
            runs.append(
                fake_run(
                    "head=euclidean,loss=triplet,negatives=other",
                    s,
                    v,
                    start=20 + s,
                    variant=variant,
                    loss="triplet",
                    params={"triplet_negatives": "other", **TRIPLET_PARAMS},
                )
            )
        return fake_studies({"omniglot-c6": runs}, ["omniglot-c6"])

    return make


@pytest.mark.parametrize(
    ("triplet", "contrastive", "verdict"),
    [
        ([0.66, 0.67, 0.68], [0.53, 0.52, 0.54], REPRODUCED),
        ([0.50, 0.52, 0.51], [0.60, 0.61, 0.62], CONTRADICTED),  # differences must vary: zero spread decides nothing
        ([0.60, 0.50, 0.70], [0.60, 0.60, 0.60], INCONCLUSIVE),
        ([0.66], [0.53], INCONCLUSIVE),  # one paired seed: no interval
    ],
)
def test_c6_is_judged_on_the_seed_paired_difference(triplet, contrastive, verdict, c6_study):
    from siamese_bench.report.findings import findings

    (c6,) = [f for f in findings(c6_study(triplet, contrastive)) if f.row.id == "C6"]
    assert c6.verdict == verdict, c6.reason
    assert c6.paired.n == len(triplet) and "head=distance-bn-dense,loss=contrastive" in c6.reason
    assert c6.paired.diff.mean == pytest.approx(np.mean(triplet) - np.mean(contrastive))


def test_c6_mix_row_reads_the_mix_split_and_runs_without_it_decide_nothing(fake_run, fake_studies):
    """The source's conclusion swaps its test and mix figures: the mix row must read mix/acc_tuned,
    not the test split, and studies recorded before the mix split existed leave it inconclusive."""
    from siamese_bench.report.findings import findings

    def study(mix_triplet, mix_contrastive):
        variant, runs = "omniglot-full-35", []
        for s, (t, c) in enumerate(zip(mix_triplet, mix_contrastive, strict=True)):
            runs.append(
                fake_run(
                    "head=distance-bn-dense,loss=contrastive",
                    s,
                    0.60 + s / 100,
                    start=s,
                    variant=variant,
                    params={"triplet_negatives": "other", **TRIPLET_PARAMS},
                    metrics={} if c is None else {"mix/acc_tuned": c},
                )
            )
            runs.append(
                fake_run(
                    "head=euclidean,loss=triplet,negatives=any",
                    s,
                    0.60 + s / 90,
                    start=10 + s,
                    variant=variant,
                    loss="triplet",
                    params={"triplet_negatives": "any", **TRIPLET_PARAMS},
                    metrics={} if t is None else {"mix/acc_tuned": t},
                )
            )
        return {f.row.id: f for f in findings(fake_studies({"omniglot-c6": runs}, ["omniglot-c6"]))}

    found = study([0.83, 0.85, 0.84], [0.67, 0.66, 0.69])
    assert found["C6 mix"].verdict == REPRODUCED, found["C6 mix"].reason
    assert found["C6 mix"].paired.diff.mean == pytest.approx(0.84 - 0.6733, abs=1e-3)
    assert found["C6"].verdict != REPRODUCED  # test-split differences of under a point: another reading
    assert study([0.60, 0.61, 0.59], [0.70, 0.72, 0.71])["C6 mix"].verdict == CONTRADICTED
    older = study([None] * 3, [None] * 3)["C6 mix"]
    assert older.verdict == INCONCLUSIVE and older.paired.n == 0


def test_c6_rows_need_omniglot_data_and_the_caveat_row_compares_negative_policies(c6_study):
    from siamese_bench.report.findings import findings

    assert not [f for f in findings(c6_study([0.7, 0.7], [0.5, 0.5], variant="mnist-5k")) if "C6" in f.row.id]
    found = {f.row.id: f for f in findings(c6_study([0.66, 0.67, 0.68], [0.5, 0.5, 0.5], other=[0.70, 0.712, 0.719]))}
    caveat = found["C6 negatives"]
    assert caveat.verdict == REPRODUCED and caveat.versus_cell == "head=euclidean,loss=triplet,negatives=any"
    assert caveat.decided_on.cell == "head=euclidean,loss=triplet,negatives=other"


def test_a_comparison_that_flips_between_data_variants_is_inconclusive(fake_run, fake_studies):
    from siamese_bench.report.findings import findings

    def runs(variant, semi, rand, start):
        out = [
            fake_run(
                "head=euclidean,loss=triplet,mining=semi-hard",
                s,
                v,
                start=start + s,
                variant=variant,
                loss="triplet",
                params={"triplet_mining": "semi-hard"},
            )
            for s, v in enumerate(semi)
        ]
        return out + [
            fake_run(
                "head=euclidean,loss=triplet,mining=random",
                s,
                v,
                start=start + 10 + s,
                variant=variant,
                loss="triplet",
                params={"triplet_mining": "random"},
            )
            for s, v in enumerate(rand)
        ]

    # differences of 3 points, well above δ = 1: decided even within C5's family of three rows
    agree = {
        "m": runs("mnist-5k", [0.99, 0.985, 0.99], [0.96, 0.955, 0.962], 0)
        + runs("japanese-vowels", [0.99, 0.98, 0.985], [0.90, 0.89, 0.896], 100)
    }
    (semi,) = [f for f in findings(fake_studies(agree, ["m"])) if f.row.id == "C5 semi-hard"]
    assert semi.verdict == REPRODUCED and semi.decided_on.variant == "mnist-5k"
    assert "on japanese-vowels" in semi.reason  # every variant is shown
    flip = {
        "m": runs("mnist-5k", [0.99, 0.985, 0.99], [0.96, 0.955, 0.962], 0)
        + runs("japanese-vowels", [0.80, 0.82, 0.79], [0.90, 0.91, 0.9], 100)
    }
    (semi,) = [f for f in findings(fake_studies(flip, ["m"])) if f.row.id == "C5 semi-hard"]
    assert semi.verdict == INCONCLUSIVE and "depends on the data" in semi.reason


def test_k1_below_the_bar_on_a_reduced_setup_is_not_a_contradiction(fake_run, fake_studies):
    from siamese_bench.report.findings import findings

    def k1(encoder, acc, variant="omniglot-full-28", width="1.0"):
        return [
            fake_run(
                "head=abs-diff-dense,loss=bce",
                s,
                0.8,
                start=s,
                loss="bce",
                variant=variant,
                params={"encoder": encoder, "encoder.width": width},
                metrics={"oneshot/acc": acc + s / 100},
            )
            for s in (0, 1, 2)
        ]

    (small,) = [f for f in findings(fake_studies({"k": k1("cnn-small", 0.28)}, ["k"])) if f.row.id == "K1"]
    assert small.verdict == INCONCLUSIVE and "reduced setup" in small.reason
    narrow = k1("koch", 0.28, variant="omniglot-full-105", width="0.25")  # Koch's layers, a quarter wide
    (koch,) = [f for f in findings(fake_studies({"k": narrow}, ["k"])) if f.row.id == "K1"]
    assert koch.verdict == INCONCLUSIVE
    full = k1("koch", 0.28, variant="omniglot-full-105")
    (koch,) = [f for f in findings(fake_studies({"k": full}, ["k"])) if f.row.id == "K1"]
    assert koch.verdict == CONTRADICTED
    (good,) = [f for f in findings(fake_studies({"k": k1("cnn-small", 0.85)}, ["k"])) if f.row.id == "K1"]
    assert good.verdict == REPRODUCED  # reaching the bar with less is still a reproduction


def test_failed_runs_counted_are_the_compared_cells_on_the_deciding_data(fake_run, fake_studies):
    """Issue 11: the count named only the claimed cell's failures on every variant, and never the
    compared ('versus') cell's."""
    from siamese_bench.report.findings import findings

    def run(cell, mining, seed, value, start, variant="mnist-5k", **kw):
        return fake_run(
            cell, seed, value, start=start, variant=variant, loss="triplet", params={"triplet_mining": mining}, **kw
        )

    semi, rand = "head=euclidean,loss=triplet,mining=semi-hard", "head=euclidean,loss=triplet,mining=random"
    runs = [run(semi, "semi-hard", s, v, s) for s, v in enumerate([0.99, 0.98, 0.985])]
    runs += [run(rand, "random", s, v, 10 + s) for s, v in enumerate([0.95, 0.96, 0.94])]
    runs += [run(rand, "random", 3, 0.5, 20, status="FAILED", state="FAIL")]  # the compared cell: counts
    runs += [
        run(semi, "semi-hard", s, 0.5, 30 + s, variant="mnist-rows", status="FAILED", state="FAIL") for s in (0, 1)
    ]  # other data, never finished there: not this verdict's business
    (row,) = [f for f in findings(fake_studies({"m": runs}, ["m"])) if f.row.id == "C5 semi-hard"]
    assert row.decided_on.variant == "mnist-5k" and row.versus_cell == rand
    assert row.failed_runs == 1 and "1 cell x seed run of the compared cells failed" in row.reason


def test_diverged_seeds_count_against_the_cell_and_block_reproduced(fake_run, fake_studies):
    """Issue 11: a NaN loss is an outcome of the design under test, not missing data."""
    from siamese_bench.report.findings import findings

    def run(cell, mining, seed, value, start, **kw):
        return fake_run(cell, seed, value, start=start, loss="triplet", params={"triplet_mining": mining}, **kw)

    semi, rand = "head=euclidean,loss=triplet,mining=semi-hard", "head=euclidean,loss=triplet,mining=random"
    runs = [run(semi, "semi-hard", s, v, s, metrics={"test/auc": v}) for s, v in enumerate([0.99, 0.985, 0.99])]
    runs += [run(rand, "random", s, v, 10 + s, metrics={"test/auc": v}) for s, v in enumerate([0.95, 0.944, 0.951])]
    clean = [f for f in findings(fake_studies({"m": runs}, ["m"])) if f.row.id == "C5 semi-hard"][0]
    assert clean.verdict == REPRODUCED and clean.diverged == 0
    runs += [
        run(
            semi,
            "semi-hard",
            3,
            math.nan,
            20,
            status="FAILED",
            state="FAIL",
            tags={"fail_reason": "DivergedError: training loss is nan at epoch 2"},
        )
    ]
    (row,) = [f for f in findings(fake_studies({"m": runs}, ["m"])) if f.row.id == "C5 semi-hard"]
    assert row.diverged == 1 and row.failed_runs == 0  # an outcome, not a lost run
    assert row.verdict == INCONCLUSIVE and "diverged in 1 of 4 seeds" in row.reason
    assert "DIVERGED in 1 of 4 seeds" in row.decided_on.text()


def test_holm_turns_a_marginal_row_inconclusive_and_shows_raw_and_adjusted_p():
    from siamese_bench.report.claims import ClaimRow
    from siamese_bench.report.findings import Finding, family_gate

    def row(id_: str) -> ClaimRow:
        return ClaimRow(id=id_, claim="c", source="s", select={"head": "l1"}, rule="works")

    claims = [row("A one"), row("A two"), row("A three"), row("B")]
    rows = [
        Finding(claims[0], [], None, REPRODUCED, "r", 0, p=0.02),
        Finding(claims[1], [], None, REPRODUCED, "r", 0, p=0.001),
        Finding(claims[2], [], None, INCONCLUSIVE, "r", 0, p=0.3),
        Finding(claims[3], [], None, REPRODUCED, "r", 0, p=0.02),
    ]
    marginal, strong, undecided, alone = family_gate(rows, claims)
    assert strong.verdict == REPRODUCED and strong.p_holm == pytest.approx(0.003)
    assert marginal.verdict == INCONCLUSIVE and marginal.p_holm == pytest.approx(0.04)
    assert "p = 0.02, Holm-adjusted over the 3 rows of family A p = 0.04 > 0.025" in marginal.reason
    assert undecided.verdict == INCONCLUSIVE and undecided.p_holm == pytest.approx(0.3)  # (3 - 2) * 0.3
    assert alone.verdict == REPRODUCED and alone.p_holm == pytest.approx(0.02)  # a family of its own


def test_a_family_is_fixed_by_the_claims_file_not_by_what_a_report_covers():
    """Issue 21: C3 one-minus-diff-dense was reproduced in one report and inconclusive in another,
    because the family was whatever the report held. A row not covered still counts (p = 1)."""
    from siamese_bench.report.claims import ClaimRow
    from siamese_bench.report.findings import Finding, family_gate

    claims = [ClaimRow(id=f"C3 {h}", claim="c", source="s", select={"head": h}, rule="learns") for h in "abcde"]
    covered = [Finding(claims[0], [], None, REPRODUCED, "r", 0, p=0.006)]
    (only,) = family_gate(covered, claims)
    assert only.p_holm == pytest.approx(0.03) and only.verdict == INCONCLUSIVE  # 5 x 0.006, whatever was covered
    both = family_gate(covered + [Finding(claims[1], [], None, REPRODUCED, "r", 0, p=0.5)], claims)
    assert both[0].p_holm == pytest.approx(0.03)
