"""`siamese-bench make-pairs-csv`: a C4-shaped pairs CSV from a registered image dataset."""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = (
    "C4's file is not public: write one of the same shape (1,983 training rows, 1,060 same / 923 "
    "different; 662 test rows, 354 / 308; two 200-d vectors per row and a class column) from a "
    "registered image dataset, encoded by PCA fitted on its training images."
)


def cmd_make_pairs_csv(args: argparse.Namespace) -> int:
    from siamese_bench.data.make_pairs import make_pairs_csv

    train, test = make_pairs_csv(args.source, args.out, args.dims, args.seed)
    print(f"wrote {train} and {test}\nuse: --dataset csv:{train},{test}")
    return 0


def register(sub: Any, full: bool) -> None:
    pairs = sub.add_parser(
        "make-pairs-csv", help="write a C4-shaped pairs CSV (train + test) from a dataset", description=DESCRIPTION
    )
    pairs.add_argument("--from", dest="source", default="mnist-5k", help="image dataset (default %(default)s)")
    pairs.add_argument(
        "--out",
        default="datasets/c4/pairs",
        help="output prefix: writes PREFIX-train.csv and PREFIX-test.csv (default %(default)s)",
    )
    pairs.add_argument("--dims", type=int, default=200, help="vector length per side (default %(default)s)")
    pairs.add_argument("--seed", type=int, default=0, help="PCA and pair sampling seed (default %(default)s)")
    pairs.set_defaults(func=cmd_make_pairs_csv)
