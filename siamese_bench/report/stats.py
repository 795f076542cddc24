"""Intervals over seeds and paired comparisons of cells.

Seeds are the replicates: one seed fixes the validation split, the pairs, the initialisation
and the batch order, so two cells run with the same seed saw the same data and pairs, and
their difference per seed is a paired observation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
UNIT = (0.0, 1.0)  # accuracy and AUC live here: their intervals are clipped to it
MIN_SEEDS_TO_TELL = 3  # fewer paired seeds than this: a comparison is reported but not read


@dataclass(frozen=True)
class Interval:
    """Mean over seeds with a two-sided t-interval (lo, hi are NaN when n < 2)."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.lo)

    def text(self, scale: float = 100.0, digits: int = 2, unit: str = "") -> str:
        """'97.35 % [96.90, 97.80] (n=3)', or '97.35 % (n=1, no interval)'."""
        if self.n == 0:
            return "no finished run"
        m = f"{self.mean * scale:.{digits}f}{unit}"
        if not self.has_interval:
            return f"{m} (n={self.n}, no interval)"
        return f"{m} [{self.lo * scale:.{digits}f}, {self.hi * scale:.{digits}f}] (n={self.n})"

    def mean_sd(self, scale: float = 100.0, digits: int = 2) -> str:
        if self.n == 0:
            return "–"
        if self.n == 1:
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.sd * scale:.{digits}f}"


def t_interval(values: Iterable[float], level: float = LEVEL,
               bounds: tuple[float, float] | None = None) -> Interval:
    """Mean, sd and t-interval; `bounds` clips the interval to a metric's range (e.g. 0..1)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, 1, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Interval(mean, sd, n, lo, hi)


@dataclass(frozen=True)
class Paired:
    """B - A over the seeds both cells finished."""

    n: int
    mean_a: float
    mean_b: float
    diff: Interval  # of the per-seed differences B - A
    d_z: float  # standardised mean difference of paired data: mean(diff) / sd(diff)
    p: float  # paired t-test, two-sided

    @property
    def enough(self) -> bool:
        return self.n >= MIN_SEEDS_TO_TELL

    @property
    def no_spread(self) -> bool:
        """Every seed differs by the same amount (float noise aside): the t-interval has zero
        width and says nothing, so no verdict can be read from it."""
        return self.n >= 2 and math.isfinite(self.diff.sd) and self.diff.sd <= 1e-12 * max(1.0, abs(self.diff.mean))

    @property
    def identical(self) -> bool:
        return self.no_spread and abs(self.diff.mean) <= 1e-12

    def reading(self, name_a: str, name_b: str) -> str:
        if self.n == 0:
            return "no seed finished in both cells"
        if not self.enough:
            return f"too few seeds to tell (n={self.n} < {MIN_SEEDS_TO_TELL})"
        if self.identical:
            return "identical runs: every paired seed gave the same value"
        if self.no_spread:
            return "every seed differs by the same amount: zero spread, no interval to read"
        if self.diff.lo > 0:
            return f"{name_b} higher (95 % CI excludes 0)"
        if self.diff.hi < 0:
            return f"{name_a} higher (95 % CI excludes 0)"
        return "no clear difference (95 % CI includes 0)"


def paired_comparison(a: Mapping[int, float], b: Mapping[int, float]) -> Paired:
    """Compare two cells' per-seed values; only seeds present (and finite) in both count."""
    seeds = sorted(s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]))
    xa = np.array([a[s] for s in seeds], dtype=float)
    xb = np.array([b[s] for s in seeds], dtype=float)
    diff = t_interval(xb - xa)
    d_z = p = math.nan
    if diff.n >= 2 and diff.sd > 0:
        d_z = diff.mean / diff.sd
        p = float(stats.ttest_rel(xb, xa).pvalue)
    return Paired(len(seeds), float(xa.mean()) if seeds else math.nan,
                  float(xb.mean()) if seeds else math.nan, diff, d_z, p)

