"""Pre-encoded vector pairs from CSV (CLAIMS.md, C4): `--dataset csv:TRAIN.csv,TEST.csv`.

Format: columns v0..v(2k-1) hold two k-dimensional vectors side by side (left = first k,
right = last k) and a `class` column holds 1.0 (same) or 0.0 (different). Every problem is
reported as one line naming the file, the line and the column, before anything trains.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import torch

from siamese_bench.core.errors import UserError
from siamese_bench.data.base import DATASETS, PairedData, PairTable

LABEL_COLUMN = "class"
VECTOR_COLUMN = re.compile(r"v(\d+)$")


class CSVFormatError(UserError, ValueError):
    """A pairs CSV that cannot be used; the message names file, line and column."""


def _header(path: Path, header: list[str]) -> tuple[int, int]:
    """Validate the header; return (k, index of the class column)."""
    names = [h.strip() for h in header]
    label_at = [i for i, n in enumerate(names) if n == LABEL_COLUMN]
    if not label_at:
        raise CSVFormatError(f"{path}: line 1: no '{LABEL_COLUMN}' column (expected v0..v(2k-1) and '{LABEL_COLUMN}')")
    if len(label_at) > 1:
        raise CSVFormatError(
            f"{path}: line 1: more than one '{LABEL_COLUMN}' column (columns {label_at[0] + 1} and {label_at[1] + 1})"
        )
    vectors = [(i, n) for i, n in enumerate(names) if i != label_at[0]]
    for expected, (i, n) in enumerate(vectors):
        if not VECTOR_COLUMN.match(n):
            raise CSVFormatError(
                f"{path}: line 1, column {i + 1}: unexpected column {n!r} "
                f"(only v0..v(2k-1) and '{LABEL_COLUMN}' are allowed)"
            )
        if n != f"v{expected}":
            raise CSVFormatError(
                f"{path}: line 1, column {i + 1}: header {n!r} where 'v{expected}' was expected "
                "(vector columns must be v0, v1, ... in order)"
            )
    if not vectors:
        raise CSVFormatError(f"{path}: line 1: no vector columns v0..v(2k-1)")
    if len(vectors) % 2:
        raise CSVFormatError(
            f"{path}: line 1: odd number of vector columns ({len(vectors)}): the left and "
            "right vectors must have the same length"
        )
    return len(vectors) // 2, label_at[0]


def read_pairs_csv(path: str | Path) -> PairTable:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CSVFormatError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CSVFormatError(f"{path}: cannot read: {err}") from None
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if not header or not any(h.strip() for h in header):
        raise CSVFormatError(f"{path}: empty file (expected a header v0..v(2k-1),{LABEL_COLUMN})")
    k, label_col = _header(path, header)
    names = [h.strip() for h in header]
    values: list[list[float]] = []
    labels: list[float] = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue  # blank line
        if len(row) != len(names):
            raise CSVFormatError(f"{path}: line {line}: {len(row)} fields, the header has {len(names)}")
        vec = []
        for col, cell in enumerate(row):
            where = f"{path}: line {line}, column {col + 1} ({names[col]!r})"
            cell = cell.strip()
            if not cell:
                raise CSVFormatError(f"{where}: empty cell")
            try:
                value = float(cell)
            except ValueError:
                raise CSVFormatError(f"{where}: not a number: {cell!r}") from None
            if not math.isfinite(value):
                raise CSVFormatError(f"{where}: {cell} is not a finite number")
            if col == label_col:
                if value not in (0.0, 1.0):
                    raise CSVFormatError(f"{where}: label {cell} is neither 1 (same) nor 0 (different)")
                labels.append(value)
            else:
                vec.append(value)
        values.append(vec)
    if not values:
        raise CSVFormatError(f"{path}: no data rows after the header")
    y = torch.tensor(labels)
    if y.min() == y.max():
        raise CSVFormatError(
            f"{path}: every row has class {int(y[0])}: a verification set needs both same (1) and different (0) pairs"
        )
    x = torch.tensor(values, dtype=torch.float32)  # (N, 2k)
    return PairTable(x[:, :k].contiguous(), x[:, k:].contiguous(), y)


@DATASETS.register("csv")
def load_csv_pairs(argument: str) -> PairedData:
    """`csv:TRAIN.csv,TEST.csv`: C4's format, a training file and a test file."""
    parts = [p for p in argument.split(",") if p]
    if len(parts) != 2:
        raise CSVFormatError(f"dataset 'csv:{argument}': expected csv:TRAIN.csv,TEST.csv")
    train, test = (read_pairs_csv(p) for p in parts)
    if train.left.shape[1] != test.left.shape[1]:
        raise CSVFormatError(
            f"{parts[1]}: vectors of {test.left.shape[1]} values, but {parts[0]} has {train.left.shape[1]}"
        )
    return PairedData(f"csv:{argument}", "csv", train, test, f"{parts[0]} + {parts[1]}")


load_csv_pairs.argument = "TRAIN.csv,TEST.csv"  # type: ignore[attr-defined]  # read by config validation
load_csv_pairs.paired = True  # type: ignore[attr-defined]
