"""decide's false verdict rates, simulated through the project's own functions (the cases and the
simulation of tests/simulated_decide.py, with more sequences than the tests run): each case puts
its rows at the boundary of their null; a run counts when a false verdict stands at some look.
Prints, per case, the rate looking at every n from 3 to --max-seeds and in decide's own rounds,
with its Monte Carlo standard error, as a markdown table:

    python benchmarks/decide_error_rates.py --sims 20000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from simulated_decide import CASES, LOOKS, false_rate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sims", type=int, default=20_000, help="sequences per case and mode (default %(default)s)")
    parser.add_argument("--case", action="append", help="only these cases (default: all)")
    args = parser.parse_args()
    print(f"per-look level {LOOKS.per_look():.5f} (looks at 3 to {LOOKS.max_seeds} seeds), {args.sims:,} sequences\n")
    print("| case | every look | decide's rounds |")
    print("|---|---|---|")
    for name in args.case or list(CASES):
        started = time.perf_counter()
        cells = []
        for rounds in (False, True):
            rate = false_rate(CASES[name], LOOKS, rounds, zlib.crc32(name.encode()) + 7 + rounds, sims=args.sims)
            se = math.sqrt(rate * (1 - rate) / args.sims)
            cells.append(f"{rate * 100:.2f} % ± {se * 100:.2f}")
        print(f"| {name} | {cells[0]} | {cells[1]} |  <!-- {time.perf_counter() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
