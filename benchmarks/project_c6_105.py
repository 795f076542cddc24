"""decide's projection for C6's rows at 105 x 105, from the 3-seed paired differences measured by
`make bench-omniglot-105` at commit 25d1799 (mean and 95 % interval in points, as its README
reported them; about 3 hours of runs not kept in this repository's store). Prints how many seeds
each row would need at decide's per-look level:

    python benchmarks/project_c6_105.py
"""

import math

from scipy import stats

from siamese_bench.decide.projection import seeds_to_decide
from siamese_bench.report.claims import ClaimRow
from siamese_bench.report.findings import Finding
from siamese_bench.report.looks import Looks
from siamese_bench.report.rules import INCONCLUSIVE
from siamese_bench.report.stats import Interval, Paired

rows = {"C6 (test split)": (4.5, -12.1, 21.1), "C6 mix": (0.2, -32.2, 32.6), "C6 negatives": (-0.4, -2.0, 1.1)}
t = stats.t.ppf(0.975, 2)
for max_seeds in (10, 20, 50):
    looks = Looks(max_seeds)
    for name, (mean, lo, hi) in rows.items():
        sd = (hi - lo) / 2 / t * math.sqrt(3) / 100
        diff = Interval(mean / 100, sd, 3, lo / 100, hi / 100, sd / math.sqrt(3), 2)
        row = ClaimRow(
            id=name, claim="c", source="s", select={"h": 1}, versus={"h": 2}, rule="better", metric="test/acc_tuned"
        )
        paired = Paired(3, math.nan, math.nan, diff, math.nan, math.nan)
        found = Finding(row, [], None, INCONCLUSIVE, "", 0, paired)
        n = seeds_to_decide(found, looks, limit=5000)
        needs = n.seeds if n.seeds is not None else n.why
        print(f"--max-seeds {max_seeds}: {name}: mean {mean:+.1f}, sd {sd * 100:.1f} points -> needs {needs} seeds")
