"""Error control when seeds are added until a claim is decided (optional stopping).

Looking at a t-interval after 3 seeds, then 4, then 5 ... and stopping at the first that clears
a bar inflates false verdicts: each look is another chance. `decide` instead uses a
group-sequential design with a constant nominal level per look (Pocock's boundaries), calibrated
for the t-statistic with unknown variance:

- the looks are at n = FIRST_LOOK, ..., max_seeds seeds (any subset of them may be skipped,
  which can only lower the error);
- a one-sided test at look n rejects when t_n > t_{1 - a}(n - 1); `nominal_alpha` finds the one
  a for which the probability that ANY look rejects, at the boundary of the null, is exactly
  ALPHA. The t-statistics of one normal sequence have a joint law free of its mean and spread
  (they are pivotal), so one Monte Carlo calibration with a fixed seed serves every rule, bar
  and scale: it depends on max_seeds only.

Every verdict of a rule (an interval clearing a bar, or inside an equivalence band: two one-sided
tests) is then read off intervals at level 1 - 2a instead of 95 %, and keeps its error at ALPHA
across all looks. tests/decide/test_sequential.py checks this by simulating decide runs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import stats

from siamese_bench.report.stats import t_quantile

ALPHA = 0.025  # each one-sided test, as the report's rules (report/stats.py)
FIRST_LOOK = 3  # the first decision looks at this many seeds
CALIBRATION_DRAWS = 400_000
CALIBRATION_SEED = 20_261_204


def min_p_values(draws: np.ndarray, first: int = FIRST_LOOK) -> np.ndarray:
    """For each standard-normal sequence of `draws` (S, N), the smallest one-sided p-value of
    "mean > 0" over the looks n = first .. N: the sequence is rejected at a per-look level a
    exactly when this is at most a."""
    n = np.arange(1, draws.shape[1] + 1)
    mean = np.cumsum(draws, axis=1) / n
    var = (np.cumsum(draws**2, axis=1) - n * mean**2) / np.maximum(n - 1, 1)
    t = mean / np.sqrt(np.maximum(var, 1e-300) / n)
    looks = n >= first
    return stats.t.sf(t[:, looks], n[looks] - 1).min(axis=1)


@lru_cache(maxsize=32)
def nominal_alpha(max_seeds: int, alpha: float = ALPHA, first: int = FIRST_LOOK) -> float:
    """The per-look one-sided level that keeps the overall level at `alpha` over looks at
    n = first .. max_seeds (equal to `alpha` when there is a single look): the `alpha`-quantile
    of the smallest p-value over the looks, under the null's boundary."""
    if max_seeds <= first:
        return alpha
    draws = np.random.default_rng(CALIBRATION_SEED).standard_normal((CALIBRATION_DRAWS, max_seeds))
    return float(np.quantile(min_p_values(draws, first), alpha))


def level(max_seeds: int, alpha: float = ALPHA, first: int = FIRST_LOOK) -> float:
    """The two-sided confidence level of the intervals read at every look."""
    return 1 - 2 * nominal_alpha(max_seeds, alpha, first)


def seeds_needed(gap: float, sd: float, per_look: float, limit: int = 1000, first: int = FIRST_LOOK) -> int | None:
    """The fewest seeds n (>= first) at which an interval of a mean `gap` away from the bar, with
    spread `sd`, would clear it: t_{1-a}(n-1) * sd / sqrt(n) < gap. None beyond `limit`, or
    when the mean sits on the bar."""
    if not math.isfinite(gap) or not math.isfinite(sd) or gap <= 0:
        return None
    if sd <= 0:
        return first
    for n in range(first, limit + 1):
        if t_quantile(1 - per_look, n - 1) * sd / math.sqrt(n) < gap:
            return n
    return None
