"""Intervals over seeds and paired comparisons of cells.

Seeds are the replicates: one seed fixes the validation split, the pairs, the initialisation
and the batch order, so two cells run with the same seed saw the same data and pairs, and
their difference per seed is a paired observation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

LEVEL = 0.95
ALPHA = (1 - LEVEL) / 2  # each one-sided test: a 95 % interval's bound clears a bar <=> p <= 0.025
UNIT = (0.0, 1.0)  # accuracy and AUC live here: their intervals are clipped to it
MIN_SEEDS_TO_TELL = 3  # fewer paired seeds than this: a comparison is reported but not read


@dataclass(frozen=True)
class Interval:
    """Mean over seeds with a two-sided t-interval (lo, hi are NaN when n < 2), and the
    standard error and degrees of freedom behind it, so one-sided tests read the same numbers."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float
    se: float = math.nan
    df: float = 0  # n - 1, also where a known variance is added (t_interval)

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.lo)

    @property
    def no_spread(self) -> bool:
        """Every seed gave the same value: a zero-width interval that says nothing about the
        next seed, so no verdict is read from it."""
        return self.n >= 2 and math.isfinite(self.sd) and self.sd <= 1e-12 * max(1.0, abs(self.mean))

    def p_above(self, bar: float) -> float:
        """One-sided p of "the mean exceeds bar" (H0: mean <= bar); NaN without an interval.
        p <= ALPHA exactly when the 95 % interval's lower bound clears the bar."""
        if not self.has_interval:
            return math.nan
        if self.se <= 0:
            return 0.0 if self.mean > bar else 1.0
        return float(special.stdtr(self.df, -(self.mean - bar) / self.se))  # t's survival function, fast

    def p_below(self, bar: float) -> float:
        """One-sided p of "the mean is below bar" (H0: mean >= bar)."""
        if not self.has_interval:
            return math.nan
        if self.se <= 0:
            return 0.0 if self.mean < bar else 1.0
        return float(special.stdtr(self.df, (self.mean - bar) / self.se))

    def p_within(self, low: float, high: float) -> float:
        """Equivalence (two one-sided tests, TOST): p of "the mean lies inside (low, high)" is
        the larger of the two one-sided p's; p <= ALPHA when the 95 % interval lies inside."""
        return max(self.p_above(low), self.p_below(high))

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


@lru_cache(maxsize=4096)
def t_quantile(q: float, df: float) -> float:
    """t's quantile: the ufunc behind `stats.t.ppf` (the same bits, ~4 us instead of ~340 us a
    call), cached: decide's simulations ask for the same few thousands of times."""
    return float(special.stdtrit(df, q))


def t_interval(
    values: Iterable[float],
    level: float = LEVEL,
    bounds: tuple[float, float] | None = None,
    extra_variance: float = 0.0,
) -> Interval:
    """Mean, sd and t-interval over seeds; `bounds` clips the interval to a metric's range
    (e.g. 0..1). `extra_variance` adds a variance of the mean that more seeds do not shrink,
    e.g. the sampling error of a fixed test set every seed shares (see oneshot_interval)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, math.nan)
    # x.mean() and x.std(ddof=1), step by step as numpy takes them (the same bits), at a third of
    # the cost: decide's error-rate simulation calls this some 10^5 times on a few seeds each
    mean = float(np.add.reduce(x) / n)
    if n == 1:
        return Interval(mean, math.nan, 1, math.nan, math.nan)
    deviations = x - mean
    sd = math.sqrt(float(np.add.reduce(deviations * deviations)) / (n - 1))
    se = math.sqrt(sd * sd / n + max(0.0, extra_variance))
    # t with n - 1 degrees of freedom also where a known variance is added: the statistic
    # (mean - mu) / se is then Z / sqrt(W), W between the seeds' chi2_{n-1} / (n - 1) and 1, and
    # its tail is at most t_{n-1}'s (the tail is convex in W), whatever the ratio of the two
    # variances; Welch-Satterthwaite's larger df would not be (docs/claims.md, "oneshot").
    df = float(n - 1)
    half = t_quantile(0.5 + level / 2, df) * se
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Interval(mean, sd, n, lo, hi, se, df)


def oneshot_interval(values: Iterable[float], trials: int, p0: float | None = None, level: float = LEVEL) -> Interval:
    """One-shot accuracy over seeds, each scored on the same `trials` fixed trials (K1: Lake's
    20 runs x 20 = 400). The spread over seeds misses that those trials are themselves a
    sample: add the binomial variance of a proportion over `trials`, p(1 - p) / trials, which
    the seeds share and so does not shrink with more of them. `p0` is the proportion that
    variance is taken at: the bar under test (a test of "p >= bar" needs the variance at the
    bar; the observed p, the default, understates it when p is high), else the observed mean."""
    x = [v for v in values if v is not None and math.isfinite(v)]
    p = p0 if p0 is not None else (float(np.mean(x)) if x else math.nan)
    extra = p * (1 - p) / trials if x and trials > 0 else 0.0
    return t_interval(x, level=level, bounds=UNIT, extra_variance=extra)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), NaN entries left out of the family and
    returned as NaN. adjusted_(i) = max over j <= i of min(1, (m - j + 1) p_(j)), p sorted."""
    finite = [(p, i) for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    out = [math.nan] * len(pvalues)
    m, running = len(finite), 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


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


def paired_comparison(a: Mapping[int, float], b: Mapping[int, float], level: float = LEVEL) -> Paired:
    """Compare two cells' per-seed values; only seeds present (and finite) in both count."""
    seeds = sorted(s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]))
    xa = np.array([a[s] for s in seeds], dtype=float)
    xb = np.array([b[s] for s in seeds], dtype=float)
    diff = t_interval(xb - xa, level=level)
    d_z = p = math.nan
    if diff.n >= 2 and diff.sd > 0:
        d_z = diff.mean / diff.sd
        p = 2 * float(special.stdtr(diff.df, -abs(diff.mean) / diff.se))  # the paired t-test, two-sided
    return Paired(
        len(seeds), float(xa.mean()) if seeds else math.nan, float(xb.mean()) if seeds else math.nan, diff, d_z, p
    )
