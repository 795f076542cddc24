"""decide's error under optional stopping, looking after every added seed from 3 to --max-seeds:
each case (tests/simulated_decide.py) puts its rows at the boundary of their null, and the false
verdict rate stays at 2.5 % plus three Monte Carlo errors. Looking at 95 % intervals every time
is caught by the same simulation."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pytest
from simulated_decide import CASES, LOOKS, MAX_SEEDS, bound, false_rate

from siamese_bench.report.looks import ALPHA, Looks

pytestmark = pytest.mark.slow  # about 80 s in all


@pytest.mark.parametrize("name", list(CASES))
def test_a_false_verdict_stays_at_alpha_across_all_looks(name):
    case = CASES[name]
    rate = false_rate(case, LOOKS, False, zlib.crc32(name.encode()))
    assert rate <= bound(case.sims), f"{name}: {rate:.4f}"


def test_looking_at_95_percent_intervals_every_time_inflates_false_verdicts():
    """The test above can fail: the naive procedure (95 % at every look) is caught."""

    @dataclass(frozen=True)
    class Naive(Looks):
        def per_look(self, alpha: float = ALPHA) -> float:
            return alpha

        def overall(self, p: float) -> float:
            return p

    case = CASES["works: acc exactly at the 90 % bar"]
    naive = false_rate(case, Naive(MAX_SEEDS), False, 1)
    assert naive > bound(case.sims) and naive > 2 * ALPHA
