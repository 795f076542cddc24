"""Prediction bounds for the mean of k check seeds from n calibration seeds, and the drop each
bound catches with 90 % power (a noncentral t computation)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize, stats

FALSE_ALARM = 0.01  # a healthy pipeline fails one given check this often
POWER = 0.90  # the minimum detectable drop is caught this often
DIRECTIONS = ("at_least", "at_most", "within")


@dataclass(frozen=True)
class Bound:
    """A prediction bound for the mean of k seeds from n calibration seeds, and what it can see."""

    mean: float
    sd: float
    n: int
    k: int
    direction: str

    @property
    def scale(self) -> float:
        """sd of (mean of k new seeds - mean of n calibration seeds), in units of the seed sd."""
        return math.sqrt(1 / self.k + 1 / self.n)

    @property
    def t(self) -> float:
        tail = FALSE_ALARM / 2 if self.direction == "within" else FALSE_ALARM
        return float(stats.t.ppf(1 - tail, self.n - 1))

    @property
    def margin(self) -> float:
        return self.t * self.sd * self.scale

    def threshold(self) -> float | list[float]:
        if self.direction == "at_least":
            return self.mean - self.margin
        if self.direction == "at_most":
            return self.mean + self.margin
        return [self.mean - self.margin, self.mean + self.margin]

    def power(self, shift: float) -> float:
        """P(the check fails) when the true mean has moved by `shift` the wrong way (either way
        for `within`); the statistic (mean_k - mean_n) / (s * scale) is noncentral t, n-1 df."""
        df, nc = self.n - 1, shift / (self.sd * self.scale)
        far = float(stats.nct.sf(self.t, df, nc))
        if self.direction == "within":
            near = float(stats.nct.cdf(-self.t, df, nc))  # the other side: tiny, and NaN in scipy's far tail
            return far + (near if math.isfinite(near) else 0.0)
        return far

    def detectable(self, power: float = POWER) -> float:
        """The smallest shift caught with `power` (the minimum detectable drop)."""
        if self.sd <= 0:
            return 0.0
        top = (self.t + 8) * self.sd * self.scale  # power is ~1 there; nct gives NaN far beyond
        return float(optimize.brentq(lambda s: self.power(s) - power, 0.0, top))


def run_false_alarm(checks: int, per_check: float = FALSE_ALARM) -> float:
    """How often a healthy pipeline fails at least one of `checks` independent checks: the
    per-check rate compounds (8 checks at 1 % each: 7.7 % of healthy runs fail one)."""
    return 1 - (1 - per_check) ** checks
