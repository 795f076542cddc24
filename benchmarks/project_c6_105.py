"""decide's projection for C6's rows at 105 x 105, from the 3-seed paired differences measured by
`make bench-omniglot-105` at commit 25d1799 (mean and 95 % interval in points, as its README
reported them; about 3 hours of runs not kept in this repository's store). Prints how many seeds
each row would need at decide's per-look level:

    python benchmarks/project_c6_105.py
"""

import math
from types import SimpleNamespace

from scipy import stats

from siamese_bench.decide.projection import seeds_to_decide
from siamese_bench.decide.sequential import nominal_alpha
from siamese_bench.report.claims import ClaimRow
from siamese_bench.report.stats import Interval

rows = {"C6 (test split)": (4.5, -12.1, 21.1), "C6 mix": (0.2, -32.2, 32.6), "C6 negatives": (-0.4, -2.0, 1.1)}
t = stats.t.ppf(0.975, 2)
for max_seeds in (10, 20, 50):
    per_look = nominal_alpha(max_seeds)
    for name, (mean, lo, hi) in rows.items():
        sd = (hi - lo) / 2 / t * math.sqrt(3) / 100
        diff = Interval(mean / 100, sd, 3, lo / 100, hi / 100, sd / math.sqrt(3), 2)
        row = ClaimRow(
            id=name, claim="c", source="s", select={"h": 1}, versus={"h": 2}, rule="better", metric="test/acc_tuned"
        )
        found = SimpleNamespace(row=row, paired=SimpleNamespace(diff=diff), decided_on=None)
        n = seeds_to_decide(found, per_look, limit=5000)  # type: ignore[arg-type]
        print(f"--max-seeds {max_seeds}: {name}: mean {mean:+.1f}, sd {sd * 100:.1f} points -> needs {n} seeds")
