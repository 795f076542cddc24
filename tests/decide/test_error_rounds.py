"""decide's error under optional stopping, looking only where decide's own rounds look (3 seeds,
then towards each open row's projection, at most doubling: decide.loop.next_targets): the same
cases as test_error_every_look.py, the same bound."""

from __future__ import annotations

import zlib

import pytest
from simulated_decide import CASES, LOOKS, bound, false_rate

pytestmark = pytest.mark.slow  # about 40 s in all


@pytest.mark.parametrize("name", list(CASES))
def test_a_false_verdict_stays_at_alpha_in_decides_rounds(name):
    case = CASES[name]
    rate = false_rate(case, LOOKS, True, zlib.crc32(name.encode()) + 1)
    assert rate <= bound(case.sims), f"{name}: {rate:.4f}"
