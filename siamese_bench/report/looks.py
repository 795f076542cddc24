"""How often a verdict is looked at, and the error control that follows: once (a report of a
finished study), or after every added seed from FIRST_LOOK to max_seeds (decide).

Looking at a t-interval after 3 seeds, then 4, then 5 ... and stopping at the first that clears
a bar inflates false verdicts: each look is another chance. decide uses a group-sequential
design with one constant nominal level per look (Pocock-like boundaries, not alpha spending),
calibrated by Monte Carlo for the t-statistic with unknown variance:

- the looks are at n = first, ..., max_seeds finite values (any may be skipped, which can only
  lower the error);
- a one-sided test at look n rejects when its p (from t with n - 1 degrees of freedom) is at
  most a. The t-statistics of one normal sequence have a joint law free of its mean and spread
  (they are pivotal), so one simulated law of the smallest p over the looks, F, serves every
  rule, bar and scale: it depends on max_seeds only. The simulation's own error is kept on the
  safe side: a is the quantile's lower bound (two standard errors of the count), so its luck
  cannot raise the level above alpha.

F turns a look's p into the sequential p-value F(p): the chance, under the null's boundary, that
some look gives a p this small. A row is decided at overall level alpha exactly when F(p) <=
alpha, that is p <= F^-1(alpha) = per_look(alpha); Holm over a family and the best-of-m pick
are applied to F(p), so a family of m rows gets per_look(alpha / m) at its first step, not
per_look(alpha) / m (which the calibration does not cover: the smallest p's law is not
proportional in its tail). With a single look F(p) = p and everything is the plain 95 % test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

ALPHA = 0.025  # each one-sided test: a 95 % interval's bound clears a bar <=> p <= 0.025
FIRST_LOOK = 3  # decide's first look: this many finite values
CALIBRATION_DRAWS = 1_000_000
CALIBRATION_SEED = 20_261_204
CHUNK = 50_000  # sequences simulated at once (memory: CHUNK x max_seeds doubles)
TAIL = 200  # fewer simulated minima than this below a level: fall back to Bonferroni over the looks


def min_p_values(draws: np.ndarray, first: int = FIRST_LOOK) -> np.ndarray:
    """For each standard-normal sequence of `draws` (S, N), the smallest one-sided p-value of
    "mean > 0" over the looks n = first .. N."""
    n = np.arange(1, draws.shape[1] + 1)
    mean = np.cumsum(draws, axis=1) / n
    var = (np.cumsum(draws**2, axis=1) - n * mean**2) / np.maximum(n - 1, 1)
    t = mean / np.sqrt(np.maximum(var, 1e-300) / n)
    looks = n >= first
    return special.stdtr(n[looks] - 1, -t[:, looks]).min(axis=1)


@lru_cache(maxsize=16)
def _sorted_min_p(max_seeds: int, first: int) -> np.ndarray:
    """The simulated law of the smallest p over the looks, sorted (the same sequences, in the
    same order, for every caller: one fixed seed, drawn in chunks of one stream)."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    parts = []
    for start in range(0, CALIBRATION_DRAWS, CHUNK):
        rows = min(CHUNK, CALIBRATION_DRAWS - start)
        parts.append(min_p_values(rng.standard_normal((rows, max_seeds)), first))
    out = np.sort(np.concatenate(parts))
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Looks:
    """The looks a verdict is read at. `max_seeds` 0 (or at most `first`): a single look, the
    plain test at alpha; more: every n from `first` to `max_seeds`."""

    max_seeds: int = 0
    first: int = FIRST_LOOK

    @property
    def sequential(self) -> bool:
        return self.max_seeds > self.first

    @property
    def count(self) -> int:
        return self.max_seeds - self.first + 1 if self.sequential else 1

    def per_look(self, alpha: float = ALPHA) -> float:
        """The one-sided level a at each look that keeps the chance of a false verdict over all
        looks at `alpha`: F^-1(alpha), the j-th smallest simulated minimum p for the largest j
        whose upper bound j + 2 sqrt(j) stays within alpha of the sequences (two standard errors
        of the simulation's own count, so that its luck does not push the level above alpha)."""
        if not self.sequential:
            return alpha
        budget = alpha * CALIBRATION_DRAWS
        j = math.floor((math.sqrt(1 + budget) - 1) ** 2 + 1e-9)  # the largest j with j + 2 sqrt(j) <= budget
        if j < TAIL:
            return alpha / self.count
        return float(_sorted_min_p(self.max_seeds, self.first)[j - 1])

    def overall(self, p: float) -> float:
        """The sequential p-value F(p): the chance under the null's boundary that some look gives
        a p at most `p` (p itself for a single look), as an upper bound: the simulated count plus
        two of its standard errors, so overall(per_look(alpha)) <= alpha. Where the simulation
        holds fewer than TAIL minima below p, the Bonferroni bound count * p."""
        if not self.sequential or not math.isfinite(p):
            return p
        sample = _sorted_min_p(self.max_seeds, self.first)
        below = int(np.searchsorted(sample, p, side="right"))
        if below < TAIL:
            return min(1.0, self.count * p)
        return min(1.0, (below + 2 * math.sqrt(below)) / CALIBRATION_DRAWS)  # the count's upper bound

    def level(self, alpha: float = ALPHA) -> float:
        """The two-sided confidence level of the intervals read at every look."""
        return 1 - 2 * self.per_look(alpha)

    @property
    def min_n(self) -> int:
        """The fewest finite values a look may read: the calibration starts at `first`; a single
        look needs two values for an interval."""
        return self.first if self.sequential else 2

    def describe(self) -> str:
        if not self.sequential:
            return "one look"
        return f"looks at {self.first} to {self.max_seeds} seeds"


ONE_LOOK = Looks()


def nominal_alpha(max_seeds: int, alpha: float = ALPHA, first: int = FIRST_LOOK) -> float:
    """The per-look one-sided level for looks at n = first .. max_seeds (alpha for one look)."""
    return Looks(max_seeds, first).per_look(alpha)
